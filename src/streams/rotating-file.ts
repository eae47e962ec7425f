// The on-disk half of the `file` stream (docs/configuration.md#file-settings): frames of one bucket appended to files
// named by `fileNameTemplate` under `path` (grammar: file-name-template.ts), rotated by
// size, the oldest deleted past `maxFiles`. A file is a plain concatenation of whole frames
// (docs/protocol.md#data-frames) so it can be replayed, which is why a buffer is never split across files and a
// file that saw a failed write is never written again.
//
// Files are created with O_EXCL (a name that exists gets `.1`, `.2`…), so nothing is ever
// overwritten, and a file left by an earlier run is never appended to: it may end in a torn
// frame. The one file kahets appends to is one it closed itself after a whole write (to stay
// under `maxOpenFiles`, or idle): it ends in a whole frame, and it is reopened only if it is
// still the same inode with the size kahets left it at; otherwise a new file is started.
//
// Issue 10: no symlink below `path` is followed (files are opened with O_NOFOLLOW, every
// folder between `path` and the file is checked with lstat after it is created); a file
// whose path no longer leads to it (unlinked, its folder deleted, replaced) is noticed
// before and after each write and recreated at its path; a write that fails part-way is cut
// back to where the call started, so a caller that sends the whole call elsewhere writes
// nothing twice.
import { constants as fsc, promises as fsp } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { customAlphabet } from 'nanoid'
import { ErrorCodes, KahetsError, type FaultScope } from '../errors.ts'
import { RAND_ALPHABET, RAND_LENGTH, errorCode, findBucketFiles, insideRoot, renderFileName } from './file-name-template.ts'
import type { FileHolder, OpenFiles } from './open-files.ts'

/** The operations RotatingFile needs from an open file; fs.promises' FileHandle has them. */
export interface WritableFile {
  writev (buffers: readonly Buffer[]): Promise<{ bytesWritten: number }>
  sync (): Promise<void>
  truncate (len: number): Promise<void>
  stat (): Promise<{ dev: number, ino: number, size: number }>
  close (): Promise<void>
}

/** Something a caller should count or log; the writer has handled it. */
export type RotatingFileEvent =
  /** The file's path no longer led to it (`unlinked`: nothing there; `replaced`: another file or a symlink): recreated at its path. */
  | { readonly kind: 'reopened', readonly file: string, readonly reason: 'unlinked' | 'replaced' }
  /** A write failed part-way; the `bytes` of that call already in `file` were cut off again. */
  | { readonly kind: 'undone', readonly file: string, readonly bytes: number }

export interface RotatingFileOptions {
  /** settings.path: every file must resolve inside it. */
  root: string
  /** fileNameTemplate: `{bucket} {PS} {hostname} {rand} {ts}`. */
  template: string
  /** Already validated: [A-Za-z0-9._-]{1,255}, not "." or "..". */
  bucket: string
  hostname: string
  /** Bytes; a file is rotated before a write would take it past this. A single larger frame goes alone into its own file. */
  sizeRotate: number
  /** 0 = unlimited; counts the file being written. Past it the oldest files of this bucket are deleted. */
  maxFiles: number
  /** fsync every file written to (and the directory of every file created) before write() resolves. */
  fsync: boolean
  /** Milliseconds since the epoch, for `{ts}`; Date.now by default. */
  now?: () => number
  /**
   * Opens a file: `create` must fail with EEXIST when the path exists, `append` with ENOENT
   * when it does not; neither may follow a symlink in the last component. Default:
   * fs.promises.open with O_CREAT|O_EXCL or O_APPEND, and O_NOFOLLOW.
   */
  open?: (file: string, mode: 'create' | 'append') => Promise<WritableFile>
  /** The stream's bound on open files (maxOpenFiles); none: unbounded. */
  openFiles?: OpenFiles
  /**
   * An old file past maxFiles could not be deleted (other than already gone). It stays
   * counted and is tried again at the next rotation; writing goes on.
   */
  onDeleteError?: (file: string, err: unknown) => void
  onEvent?: (event: RotatingFileEvent) => void
  /**
   * Written once at the start of every file this creates (a spool file's magic and version,
   * protocol/spool.ts); counted in the file's size and kept when a torn file is cut back.
   */
  header?: Buffer
}

const randomName = customAlphabet(RAND_ALPHABET, RAND_LENGTH)
// A bound on collision suffixes only so that a file system answering EEXIST to everything
// cannot spin us forever; a real run needs one suffix per rotation within one second.
const MAX_SUFFIX = 100_000
// A file found gone after a write is recreated and the write repeated; a path that keeps
// vanishing this often in one call is a stream failure, not something to chase.
const MAX_REWRITES = 3

// Out of descriptors with none of this stream's files to close: retried every FD_RETRY_MS
// for up to FD_WAIT_MS before the write fails with FILES_EXHAUSTED.
const FD_WAIT_MS = 5000
const FD_RETRY_MS = 50

const CREATE_FLAGS = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW
const APPEND_FLAGS = fsc.O_WRONLY | fsc.O_APPEND | fsc.O_NOFOLLOW

function defaultOpen (file: string, mode: 'create' | 'append'): Promise<WritableFile> {
  return fsp.open(file, mode === 'create' ? CREATE_FLAGS : APPEND_FLAGS, 0o666)
}

// What a file system error is about (errors.ts). A name the file system will never take is
// one bucket's destination, for good; something in the way of one bucket's path (a file
// where a folder should be, a symlink, a folder kahets may not write) is that bucket's until
// an operator fixes it; running out of descriptors is pressure (FILES_EXHAUSTED, raised by
// the writer once closing files did not help); anything else (ENOSPC, EIO, EROFS…) is the
// whole stream's.
const DESTINATION_PERMANENT = new Set(['ENAMETOOLONG', 'EINVAL'])
const DESTINATION_RETRIABLE = new Set(['ENOTDIR', 'EISDIR', 'ELOOP', 'EACCES', 'EPERM'])
const OUT_OF_FDS = new Set(['EMFILE', 'ENFILE'])

export function fileFault (code: string | undefined): { scope: FaultScope, retriable: boolean } {
  if (code !== undefined && DESTINATION_PERMANENT.has(code)) return { scope: 'destination', retriable: false }
  if (code !== undefined && DESTINATION_RETRIABLE.has(code)) return { scope: 'destination', retriable: true }
  return { scope: 'stream', retriable: true }
}

function writeFailed (what: string, cause: unknown): KahetsError {
  if (cause instanceof KahetsError) return cause
  const reason = cause instanceof Error ? cause.message : String(cause)
  const code = errorCode(cause)
  if (code !== undefined && OUT_OF_FDS.has(code)) {
    return new KahetsError(ErrorCodes.FILES_EXHAUSTED, `${what}: ${reason}`, { cause, retriable: true, scope: 'stream' })
  }
  const { scope, retriable } = fileFault(code)
  return new KahetsError(scope === 'destination' ? ErrorCodes.DESTINATION_REJECTED : ErrorCodes.STREAM_WRITE_FAILED, `${what}: ${reason}`, { cause, retriable, scope })
}

/** A folder between `path` and a bucket's file is a symlink or no folder at all: that bucket's destination, until an operator fixes it. */
function notAFolder (dir: string, what: string): KahetsError {
  return new KahetsError(ErrorCodes.DESTINATION_REJECTED, `${dir} is ${what}, not a folder: kahets follows no symlink below path`, { retriable: true, scope: 'destination' })
}

/** After a partial writev: the buffers still to write, the first one cut where the kernel stopped. */
function remainder (buffers: readonly Buffer[], bytesWritten: number): Buffer[] {
  let skip = bytesWritten
  let i = 0
  while (i < buffers.length && skip >= buffers[i]!.length) skip -= buffers[i++]!.length
  const rest = buffers.slice(i)
  if (skip > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(skip)
  return rest
}

function sameFile (a: { dev: number, ino: number }, b: { dev: number, ino: number }): boolean {
  return a.dev === b.dev && a.ino === b.ino
}

/** Errors of a failed fsync: the write that hit one cuts nothing back. */
const syncFailures = new WeakSet<object>()

/** A file this call wrote to, and its size before the call: what a failure cuts it back to. */
interface Touched {
  file: string
  sizeBefore: number
}

/**
 * One bucket's rotating files. Calls are serialized: a write() starts after the previous
 * one settled, so callers may fire them without waiting.
 *
 * A write() that fails adds nothing to any file, as far as the writer can make it so: every
 * byte the call had written is cut off again (a file it created and left empty is removed),
 * the file being written is closed and never written again, and the next write() creates a
 * new file. So a caller that sends the whole failed call to a backup writes nothing twice.
 * If cutting back fails too (the disk is failing), the file keeps those bytes, maybe with a
 * torn last frame, which a reader counts and skips like a connection cut mid-frame (see
 * docs/protocol.md#what-happens-to-bad-input). After a failed fsync nothing is cut: what reached the disk is unknown, so the file is
 * only abandoned.
 */
export class RotatingFile implements FileHolder {
  readonly #opts: RotatingFileOptions
  readonly #now: () => number
  readonly #open: (file: string, mode: 'create' | 'append') => Promise<WritableFile>
  readonly #root: string
  readonly #slots: OpenFiles | null
  /** This bucket's files, oldest first, the current one last; null until the first write. */
  #files: string[] | null = null
  #handle: WritableFile | null = null
  /** The file being written; kept while suspend() has it closed, to append to it again. */
  #current: string | null = null
  /** A file being created (it exists before it is current: header, fsync): also being written. */
  #creating: string | null = null
  #identity: { dev: number, ino: number } | null = null
  #size = 0
  #unsynced = false
  #closed = false
  #pending = 0
  #queue: Promise<unknown> = Promise.resolve()
  readonly #headerBytes: number

  constructor (opts: RotatingFileOptions) {
    this.#opts = { ...opts }
    this.#headerBytes = opts.header?.length ?? 0
    this.#now = opts.now ?? Date.now
    this.#open = opts.open ?? defaultOpen
    this.#root = path.resolve(opts.root)
    this.#slots = opts.openFiles ?? null
  }

  /** The file being written (open, or closed by suspend() and appended to at the next write). */
  get currentPath (): string | null {
    return this.#current ?? this.#creating
  }

  /** Whether a file of this bucket is open now. */
  get isOpen (): boolean {
    return this.#handle !== null
  }

  get idle (): boolean {
    return this.#pending === 0
  }

  /**
   * Appends the buffers, each one or more whole frames, with one writev per file touched,
   * rotating as needed; with `fsync`, resolves once they are on disk. The buffers must not
   * change until the promise settles. Rejects with a KahetsError: STREAM_WRITE_FAILED,
   * DESTINATION_REJECTED (scope destination: this bucket's name or folder, see fileFault),
   * FILES_EXHAUSTED (out of descriptors although idle files were closed), or PATH_ESCAPE if
   * the template renders outside root.
   */
  write (buffers: readonly Buffer[]): Promise<void> {
    return this.#enqueue(() => this.#write(buffers))
  }

  /** Flushes (fsync if enabled) and closes the current file; later writes reject. */
  close (): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#closed) return
      this.#closed = true
      if (this.#handle !== null) await this.#retire()
      this.#current = null
    })
  }

  /**
   * Closes the current file after the writes queued before this call, keeping it as the
   * file to append to: what maxOpenFiles and the idle sweep ask of a bucket.
   */
  suspend (): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#handle === null) return
      if (this.#opts.fsync && this.#unsynced) await this.#sync()
      const file = this.#current
      const handle = this.#dropHandle()
      try {
        await handle.close()
      } catch (err) {
        // Not appended to again: whether all of it reached the file is unknown.
        this.#forget()
        throw writeFailed(`closing ${file} failed`, err)
      }
    })
  }

  /**
   * Files this bucket's template produced, found on disk now, oldest first (by `{ts}`,
   * then modification time, then collision suffix, then name). Includes the file being
   * written, if any. Files another bucket's name could also have produced are left out.
   */
  async existingFiles (): Promise<string[]> {
    try {
      return (await this.#scan()).map((f) => f.file)
    } catch (err) {
      throw writeFailed(`listing files of bucket ${this.#opts.bucket} under ${this.#root} failed`, err)
    }
  }

  #enqueue<T> (fn: () => Promise<T>): Promise<T> {
    this.#pending++
    const result = this.#queue.then(fn).finally(() => {
      if (--this.#pending === 0) this.#slots?.idle()
    })
    this.#queue = result.catch(() => undefined)
    return result
  }

  async #write (buffers: readonly Buffer[]): Promise<void> {
    if (this.#closed) throw new KahetsError(ErrorCodes.STREAM_WRITE_FAILED, `file stream of bucket ${this.#opts.bucket} is closed`)
    const touched: Touched[] = []
    try {
      // Checked before writing, so that nothing goes into a file nobody can reach any more…
      if (this.#handle !== null) {
        const gone = await this.#vanished()
        if (gone !== null) await this.#reopen(gone, touched)
      }
      let start = 0
      for (let rewrites = 0; ; rewrites++) {
        start = await this.#place(buffers, start, touched)
        if (this.#handle === null) return
        if (this.#opts.fsync && this.#unsynced) await this.#sync()
        // …and after, so that nothing counted written is in such a file: if the path was
        // deleted or replaced meanwhile, this call's part of it is written again.
        const gone = await this.#vanished()
        if (gone === null) return
        if (rewrites >= MAX_REWRITES) throw new KahetsError(ErrorCodes.STREAM_WRITE_FAILED, `${this.#current} keeps disappearing while written`, { retriable: true })
        await this.#reopen(gone, touched)
      }
    } catch (err) {
      const file = this.#current
      // After a failed fsync nothing is cut: what reached the disk is unknown.
      if (!(err instanceof Object && syncFailures.has(err))) await this.#undo(touched)
      throw writeFailed(`writing to ${file ?? `a file of bucket ${this.#opts.bucket}`} failed`, err)
    }
  }

  /**
   * Writes buffers[from…] into the current file and, rotating, the next ones. Returns the
   * index of the first buffer in the file that is current at the end.
   */
  async #place (buffers: readonly Buffer[], from: number, touched: Touched[]): Promise<number> {
    const limit = this.#opts.sizeRotate
    let start = from
    let i = from
    while (i < buffers.length) {
      if (buffers[i]!.length === 0) {
        i++
        continue
      }
      if (this.#handle === null) {
        await this.#ensureOpen(touched)
        start = i
      }
      let end = i
      let bytes = 0
      while (end < buffers.length) {
        const len = buffers[end]!.length
        if (this.#size + bytes > this.#headerBytes && this.#size + bytes + len > limit) break
        bytes += len
        end++
      }
      if (end === i) {
        await this.#retire()
        continue
      }
      if (!touched.some((t) => t.file === this.#current)) touched.push({ file: this.#current!, sizeBefore: this.#size })
      await this.#append(buffers.slice(i, end), bytes)
      this.#slots?.touch(this)
      i = end
    }
    return start
  }

  async #append (buffers: Buffer[], bytes: number): Promise<void> {
    const handle = this.#handle!
    let written = 0
    let pending = buffers
    while (written < bytes) {
      const { bytesWritten } = await handle.writev(pending)
      // A regular file only writes nothing when it cannot make progress; looping would spin.
      if (!(bytesWritten > 0)) throw new Error(`writev wrote ${bytesWritten} of ${bytes - written} bytes`)
      written += bytesWritten
      this.#unsynced = true
      if (written < bytes) pending = remainder(pending, bytesWritten)
    }
    this.#size += bytes
  }

  async #sync (): Promise<void> {
    try {
      await this.#handle!.sync()
      this.#unsynced = false
    } catch (err) {
      const file = this.#current
      await this.#abandon(null)
      const failure = writeFailed(`fsync of ${file} failed`, err)
      syncFailures.add(failure)
      throw failure
    }
  }

  /** The handle leaves this writer (its slot is given back); the caller closes it. */
  #dropHandle (): WritableFile {
    const handle = this.#handle!
    this.#handle = null
    this.#slots?.release(this)
    return handle
  }

  /** No current file: the next write starts a new one. */
  #forget (): void {
    this.#current = null
    this.#identity = null
    this.#size = 0
    this.#unsynced = false
  }

  /** Closes the current file for good, as rotation does. */
  async #retire (): Promise<void> {
    if (this.#opts.fsync && this.#unsynced) await this.#sync()
    const file = this.#current
    const handle = this.#dropHandle()
    this.#forget()
    try {
      await handle.close()
    } catch (err) {
      throw writeFailed(`closing ${file} failed`, err)
    }
  }

  /** Drops the current file after a failure; `keepBytes` is where this call's bytes start (null: leave it as is). */
  async #abandon (keepBytes: number | null): Promise<number> {
    const file = this.#current!
    const handle = this.#dropHandle()
    this.#forget()
    // Best effort: the caller is about to hear about the original error, which matters more.
    let cut = 0
    let emptied = false
    if (keepBytes !== null) {
      try {
        const { size } = await handle.stat()
        if (size > keepBytes) {
          await handle.truncate(keepBytes)
          cut = size - keepBytes
        }
        emptied = keepBytes <= this.#headerBytes
      } catch {
        // The bytes stay; see the class comment.
      }
    }
    await handle.close().catch(() => undefined)
    if (emptied) await this.#removeEmpty(file)
    return cut
  }

  async #removeEmpty (file: string): Promise<void> {
    try {
      await fsp.unlink(file)
      this.#files = this.#files?.filter((f) => f !== file) ?? null
    } catch {
      // An empty file left behind is harmless: it replays as nothing.
    }
  }

  /** After a failure: every file this call wrote to is cut back to its size before the call. */
  async #undo (touched: readonly Touched[]): Promise<void> {
    for (const t of touched) {
      const cut = t.file === this.#current && this.#handle !== null ? await this.#abandon(t.sizeBefore) : await this.#cutBack(t)
      if (cut > 0) this.#opts.onEvent?.({ kind: 'undone', file: t.file, bytes: cut })
    }
    if (this.#handle !== null) await this.#abandon(null)
  }

  /** A file rotated out earlier in the failed call: closed already, cut by path if it is still a regular file. */
  async #cutBack (t: Touched): Promise<number> {
    try {
      const st = await fsp.lstat(t.file)
      if (!st.isFile() || st.size <= t.sizeBefore) return 0
      if (t.sizeBefore === 0) await this.#removeEmpty(t.file)
      else await fsp.truncate(t.file, t.sizeBefore)
      return st.size - t.sizeBefore
    } catch {
      return 0
    }
  }

  /** Whether the current file's path still leads to it: null, or why not. */
  async #vanished (): Promise<'unlinked' | 'replaced' | null> {
    try {
      const st = await fsp.lstat(this.#current!)
      return st.isFile() && sameFile(st, this.#identity!) ? null : 'replaced'
    } catch (err) {
      const code = errorCode(err)
      if (code === 'ENOENT' || code === 'ENOTDIR') return 'unlinked'
      throw err
    }
  }

  /** The current file is gone from its path: a new one is created there (folders too). */
  async #reopen (reason: 'unlinked' | 'replaced', touched: Touched[]): Promise<void> {
    const file = this.#current!
    if (this.#handle !== null) await this.#dropHandle().close().catch(() => undefined)
    this.#forget()
    // What this call wrote to the old inode is out of reach: nothing to cut back there.
    for (let i = touched.length - 1; i >= 0; i--) if (touched[i]!.file === file) touched.splice(i, 1)
    this.#opts.onEvent?.({ kind: 'reopened', file, reason })
    await this.#create(file, 0)
  }

  async #ensureOpen (touched: Touched[]): Promise<void> {
    if (this.#current === null) {
      await this.#openNext()
      return
    }
    // Closed by suspend(): append to it if it is still the file kahets left.
    const file = this.#current
    await this.#slots?.acquire(this)
    let handle: WritableFile | null = null
    try {
      handle = await this.#fds(() => this.#open(file, 'append'))
      this.#slots?.opened(this)
      const st = await handle.stat()
      if (sameFile(st, this.#identity!) && st.size === this.#size) {
        this.#handle = handle
        return
      }
    } catch (err) {
      const code = errorCode(err)
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ELOOP') {
        this.#slots?.release(this)
        if (handle !== null) await handle.close().catch(() => undefined)
        throw err
      }
    }
    this.#slots?.release(this)
    if (handle !== null) await handle.close().catch(() => undefined)
    await this.#reopen(handle === null ? 'unlinked' : 'replaced', touched)
  }

  async #openNext (): Promise<void> {
    try {
      if (this.#files === null) this.#files = (await this.#fds(() => this.#scan())).map((f) => f.file)
    } catch (err) {
      throw writeFailed(`listing existing files of bucket ${this.#opts.bucket} under ${this.#root} failed`, err)
    }
    const base = renderFileName(this.#root, this.#opts.template, {
      bucket: this.#opts.bucket,
      hostname: this.#opts.hostname,
      ts: Math.floor(this.#now() / 1000),
      rand: randomName(),
    })
    // Names of files deleted past maxFiles are not reused within the second: a replayer
    // that saw a name go must not see it come back with other frames.
    await this.#create(base, nextSuffix(this.#files, base))
  }

  /** Creates `base` (or `base.n`, the first free suffix from n) and makes it current. */
  async #create (base: string, n: number): Promise<void> {
    const dir = path.dirname(base)
    let file = n === 0 ? base : `${base}.${n}`
    const wait = { deadline: null as number | null }
    let raced = 0
    for (;;) {
      await this.#slots?.acquire(this)
      let handle: WritableFile | null = null
      try {
        const created = await makeFolders(this.#root, dir)
        for (;;) {
          try {
            this.#creating = file
            handle = await this.#fds(() => this.#open(file, 'create'))
            break
          } catch (err) {
            if (errorCode(err) !== 'EEXIST' || ++n > MAX_SUFFIX) throw err
            file = `${base}.${n}`
          }
        }
        this.#slots?.opened(this)
        const st = await handle.stat()
        this.#identity = { dev: st.dev, ino: st.ino }
        await this.#writeHeader(handle)
        if (this.#opts.fsync) for (const d of directoriesToSync(dir, created)) await syncDirectory(d)
      } catch (err) {
        this.#creating = null
        this.#slots?.release(this)
        this.#identity = null
        // Never leave a file behind that was created and then could not be used.
        if (handle !== null) {
          await handle.close().catch(() => undefined)
          await fsp.unlink(file).catch(() => undefined)
        }
        // Out of descriptors for the folder's fsync while holding the file's: let go of both
        // and wait for a descriptor like any opener (holding one while waiting could deadlock).
        if (handle !== null && await this.#outOfFds(err, wait)) continue
        // A folder deleted between creating it and the file in it (rm -rf while writing):
        // made again.
        if (handle === null && errorCode(err) === 'ENOENT' && ++raced <= MAX_REWRITES) continue
        throw writeFailed(`creating ${file} failed`, err)
      }
      this.#handle = handle
      break
    }
    this.#current = file
    this.#creating = null
    this.#size = this.#headerBytes
    this.#unsynced = this.#headerBytes > 0
    if (!this.#files!.includes(file)) this.#files!.push(file)
    await this.#prune()
  }

  /** A new file's header (a spool's magic); a file without its whole header is removed by the caller. */
  async #writeHeader (handle: WritableFile): Promise<void> {
    const header = this.#opts.header
    if (header === undefined) return
    let written = 0
    while (written < header.length) {
      const { bytesWritten } = await handle.writev([header.subarray(written)])
      if (!(bytesWritten > 0)) throw new Error(`writev wrote ${bytesWritten} bytes of the file header`)
      written += bytesWritten
    }
  }

  /**
   * Runs an operation that needs a descriptor; EMFILE/ENFILE is pressure: idle files of
   * this stream are closed and it is tried again, failing only if closing did not help.
   */
  async #fds<T> (op: () => Promise<T>): Promise<T> {
    const wait = { deadline: null as number | null }
    for (;;) {
      try {
        return await op()
      } catch (err) {
        if (!await this.#outOfFds(err, wait)) throw err
      }
    }
  }

  /**
   * After an error: true if it was EMFILE/ENFILE and the operation is worth trying again
   * now. Each pressure() that returns true freed a descriptor of this stream, so retrying
   * on it ends; with none of this stream's files to close the descriptors are held
   * elsewhere, often for a moment (folders being fsynced or listed): retried for a while.
   */
  async #outOfFds (err: unknown, wait: { deadline: number | null }): Promise<boolean> {
    const code = errorCode(err)
    if (code === undefined || !OUT_OF_FDS.has(code) || this.#slots === null) return false
    if (await this.#slots.pressure(this)) {
      wait.deadline = null
      return true
    }
    wait.deadline ??= Date.now() + FD_WAIT_MS
    if (Date.now() >= wait.deadline) return false
    await sleep(FD_RETRY_MS)
    return true
  }

  async #prune (): Promise<void> {
    const max = this.#opts.maxFiles
    const files = this.#files!
    if (!(max > 0) || files.length <= max) return
    const excess = files.slice(0, files.length - max)
    const kept: string[] = []
    for (const file of excess) {
      try {
        // Only a regular file this template named, never a symlink or what it points to.
        if (!insideRoot(this.#root, file)) continue
        if (!(await fsp.lstat(file)).isFile()) {
          this.#opts.onDeleteError?.(file, new Error(`${file} is no longer a regular file: left alone and no longer counted`))
          continue
        }
        await fsp.unlink(file)
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') {
          kept.push(file)
          this.#opts.onDeleteError?.(file, err)
        }
      }
    }
    this.#files = [...kept, ...files.slice(excess.length)]
  }

  async #scan (): ReturnType<typeof findBucketFiles> {
    return await findBucketFiles(this.#root, this.#opts.template, this.#opts.bucket, this.#opts.hostname)
  }
}

async function syncDirectory (dir: string): Promise<void> {
  const handle = await fsp.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW)
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** The first collision suffix not used by a known file of this name (0: the bare name). */
function nextSuffix (files: readonly string[], base: string): number {
  let next = 0
  for (const f of files) {
    if (f === base) next = Math.max(next, 1)
    else if (f.startsWith(`${base}.`) && /^[1-9]\d*$/.test(f.slice(base.length + 1))) next = Math.max(next, Number(f.slice(base.length + 1)) + 1)
  }
  return next
}

/**
 * mkdir -p for `path` itself, returning the first directory it created. Not fs.mkdir's
 * `recursive`: that one spins forever when a parent exists but cannot hold children (a
 * dangling symlink to an unmounted disk, a path under /proc), answering ENOENT to the child
 * every time. `path` and what is above it are the operator's: symlinks there are followed.
 */
async function makeDirectory (dir: string): Promise<string | undefined> {
  try {
    await fsp.mkdir(dir)
    return dir
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return undefined
    if (errorCode(err) !== 'ENOENT' || path.dirname(dir) === dir) throw err
  }
  const first = await makeDirectory(path.dirname(dir))
  try {
    await fsp.mkdir(dir)
  } catch (err) {
    if (errorCode(err) !== 'EEXIST') throw err
  }
  return first ?? dir
}

/**
 * Creates the folders from root down to dir, returning the first one it created. Below
 * root every folder is taken only if lstat finds a real folder there, top down before
 * anything is created under it: a symlink planted as a bucket's folder never leads kahets
 * outside root (DESTINATION_REJECTED for that bucket). Root that is not a folder is the
 * whole stream's failure.
 */
async function makeFolders (root: string, dir: string): Promise<string | undefined> {
  let first = await makeDirectory(root)
  if (!(await fsp.stat(root)).isDirectory()) {
    throw new KahetsError(ErrorCodes.STREAM_WRITE_FAILED, `path ${root} is not a folder`, { retriable: true, scope: 'stream' })
  }
  const rel = path.relative(root, dir)
  if (rel === '') return first
  let d = root
  for (const part of rel.split(path.sep)) {
    d = path.join(d, part)
    let st = await fsp.lstat(d).catch((err: unknown) => {
      if (errorCode(err) === 'ENOENT') return null
      throw err
    })
    if (st === null) {
      try {
        await fsp.mkdir(d)
        first ??= d
        continue
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw err
      }
      st = await fsp.lstat(d)
    }
    if (st.isSymbolicLink()) throw notAFolder(d, 'a symlink')
    if (!st.isDirectory()) throw notAFolder(d, 'a file')
  }
  return first
}

/**
 * A new file's name is durable once its directory is synced, and a directory mkdir just
 * created is durable once its parent is: so every directory from the parent of the first
 * one created down to the file's own.
 */
function directoriesToSync (dir: string, firstCreated: string | undefined): string[] {
  const dirs = [dir]
  if (firstCreated === undefined) return dirs
  const stop = path.dirname(firstCreated)
  for (let d = dir; d !== stop && path.dirname(d) !== d;) {
    d = path.dirname(d)
    dirs.push(d)
  }
  return dirs
}
