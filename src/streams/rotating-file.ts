// The on-disk half of the `file` stream (SPEC §2): frames of one bucket appended to files
// named by `fileNameTemplate` under `path` (grammar: file-name-template.ts), rotated by
// size, the oldest deleted past `maxFiles`. A file is a plain concatenation of whole frames
// (SPEC §1) so it can be replayed, which is why a buffer is never split across files and a
// file that saw a failed write is never written again.
//
// Files are created with O_EXCL (a name that exists gets `.1`, `.2`…) and nothing is ever
// overwritten or appended to, because a file left by an earlier run may end in a torn frame.
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { customAlphabet } from 'nanoid'
import { ErrorCodes, KahetsError, type FaultScope } from '../errors.ts'
import { RAND_ALPHABET, RAND_LENGTH, errorCode, findBucketFiles, renderFileName } from './file-name-template.ts'

const randomName = customAlphabet(RAND_ALPHABET, RAND_LENGTH)
// A bound on collision suffixes only so that a file system answering EEXIST to everything
// cannot spin us forever; a real run needs one suffix per rotation within one second.
const MAX_SUFFIX = 100_000

/** The operations RotatingFile needs from an open file; fs.promises' FileHandle has them. */
export interface WritableFile {
  writev (buffers: readonly Buffer[]): Promise<{ bytesWritten: number }>
  sync (): Promise<void>
  truncate (len: number): Promise<void>
  close (): Promise<void>
}

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
  /** Creates a new file; it must fail with code EEXIST when the path exists. Default: fs.promises.open(file, 'wx'). */
  open?: (file: string) => Promise<WritableFile>
  /**
   * An old file past maxFiles could not be deleted (other than already gone). It stays
   * counted and is tried again at the next rotation; writing goes on.
   */
  onDeleteError?: (file: string, err: unknown) => void
}

// What a file system error is about (errors.ts). A name the file system will never take is
// one bucket's destination, for good; something in the way of one bucket's path (a file
// where a folder should be, a symlink, a folder kahets may not write) is that bucket's until
// an operator fixes it; anything else (ENOSPC, EIO, EROFS…) is the whole stream's.
const DESTINATION_PERMANENT = new Set(['ENAMETOOLONG', 'EINVAL'])
const DESTINATION_RETRIABLE = new Set(['ENOTDIR', 'EISDIR', 'ELOOP', 'EACCES', 'EPERM'])

export function fileFault (code: string | undefined): { scope: FaultScope, retriable: boolean } {
  if (code !== undefined && DESTINATION_PERMANENT.has(code)) return { scope: 'destination', retriable: false }
  if (code !== undefined && DESTINATION_RETRIABLE.has(code)) return { scope: 'destination', retriable: true }
  return { scope: 'stream', retriable: true }
}

function writeFailed (what: string, cause: unknown): KahetsError {
  if (cause instanceof KahetsError) return cause
  const reason = cause instanceof Error ? cause.message : String(cause)
  const { scope, retriable } = fileFault(errorCode(cause))
  return new KahetsError(scope === 'destination' ? ErrorCodes.DESTINATION_REJECTED : ErrorCodes.STREAM_WRITE_FAILED, `${what}: ${reason}`, { cause, retriable, scope })
}

async function syncDirectory (dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
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

/**
 * One bucket's rotating files. Calls are serialized: a write() starts after the previous
 * one settled, so callers may fire them without waiting.
 *
 * After a rejected write() the file being written is abandoned: it is cut back to the last
 * whole frame (removed if that leaves it empty), closed, and never written again; the next
 * write() creates a new file, so a torn tail can never precede newer frames. Frames of the
 * failed call that reached a file (this one, or one rotated out earlier in the same call)
 * stay there: a caller that re-sends the whole call elsewhere delivers them at least once.
 * If cutting back fails too (the disk is failing), the file keeps a torn last frame, which
 * a reader counts and skips like a connection cut mid-frame (SPEC §1). After a failed
 * fsync nothing is cut: what reached the disk is unknown, so the file is only abandoned.
 */
export class RotatingFile {
  readonly #opts: RotatingFileOptions
  readonly #now: () => number
  readonly #open: (file: string) => Promise<WritableFile>
  readonly #root: string
  /** This bucket's files, oldest first, the current one last; null until the first write. */
  #files: string[] | null = null
  #handle: WritableFile | null = null
  #current: string | null = null
  #size = 0
  #unsynced = false
  #closed = false
  #queue: Promise<unknown> = Promise.resolve()

  constructor (opts: RotatingFileOptions) {
    this.#opts = { ...opts }
    this.#now = opts.now ?? Date.now
    this.#open = opts.open ?? ((file) => fsp.open(file, 'wx'))
    this.#root = path.resolve(opts.root)
  }

  get currentPath (): string | null {
    return this.#current
  }

  /**
   * Appends the buffers, each one whole frame, with one writev per file touched, rotating
   * as needed; with `fsync`, resolves once they are on disk. The buffers must not change
   * until the promise settles. Rejects with KahetsError STREAM_WRITE_FAILED (cause = the
   * system error, retriable false), or PATH_ESCAPE if the template renders outside root.
   */
  write (buffers: readonly Buffer[]): Promise<void> {
    const result = this.#queue.then(() => this.#write(buffers))
    this.#queue = result.catch(() => undefined)
    return result
  }

  /** Flushes (fsync if enabled) and closes the current file; later writes reject. */
  close (): Promise<void> {
    const result = this.#queue.then(async () => {
      if (this.#closed) return
      this.#closed = true
      if (this.#handle !== null) await this.#retire()
    })
    this.#queue = result.catch(() => undefined)
    return result
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

  async #write (buffers: readonly Buffer[]): Promise<void> {
    if (this.#closed) throw new KahetsError(ErrorCodes.STREAM_WRITE_FAILED, `file stream of bucket ${this.#opts.bucket} is closed`)
    const limit = this.#opts.sizeRotate
    let i = 0
    while (i < buffers.length) {
      if (buffers[i]!.length === 0) {
        i++
        continue
      }
      if (this.#handle === null) await this.#openNext()
      let end = i
      let bytes = 0
      while (end < buffers.length) {
        const len = buffers[end]!.length
        if (this.#size + bytes > 0 && this.#size + bytes + len > limit) break
        bytes += len
        end++
      }
      if (end === i) {
        await this.#retire()
        continue
      }
      await this.#append(buffers.slice(i, end), bytes)
      i = end
    }
    if (this.#opts.fsync && this.#unsynced) await this.#sync()
  }

  async #append (buffers: Buffer[], bytes: number): Promise<void> {
    const handle = this.#handle!
    let written = 0
    let pending = buffers
    try {
      while (written < bytes) {
        const { bytesWritten } = await handle.writev(pending)
        // A regular file only writes nothing when it cannot make progress; looping would spin.
        if (!(bytesWritten > 0)) throw new Error(`writev wrote ${bytesWritten} of ${bytes - written} bytes`)
        written += bytesWritten
        this.#unsynced = true
        if (written < bytes) pending = remainder(pending, bytesWritten)
      }
    } catch (err) {
      const file = this.#current
      await this.#abandon(this.#size + wholeFrameBytes(buffers, written))
      throw writeFailed(`writing ${bytes} bytes to ${file} failed after ${written}`, err)
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
      throw writeFailed(`fsync of ${file} failed`, err)
    }
  }

  /** Closes the current file for good, as rotation does. */
  async #retire (): Promise<void> {
    if (this.#opts.fsync && this.#unsynced) await this.#sync()
    const handle = this.#handle!
    const file = this.#current
    this.#handle = null
    this.#current = null
    this.#size = 0
    try {
      await handle.close()
    } catch (err) {
      throw writeFailed(`closing ${file} failed`, err)
    }
  }

  /** Drops the current file after a failure; `keepBytes` is where its last whole frame ends (null: leave it as is). */
  async #abandon (keepBytes: number | null): Promise<void> {
    const handle = this.#handle!
    const file = this.#current!
    this.#handle = null
    this.#current = null
    this.#size = 0
    this.#unsynced = false
    // Best effort: the caller is about to hear about the original error, which matters more.
    let emptied = false
    if (keepBytes !== null) {
      try {
        await handle.truncate(keepBytes)
        emptied = keepBytes === 0
      } catch {
        // The torn tail stays; see the class comment.
      }
    }
    await handle.close().catch(() => undefined)
    if (emptied) {
      try {
        await fsp.unlink(file)
        this.#files = this.#files!.filter((f) => f !== file)
      } catch {
        // An empty file left behind is harmless: it replays as nothing.
      }
    }
  }

  async #openNext (): Promise<void> {
    try {
      if (this.#files === null) this.#files = (await this.#scan()).map((f) => f.file)
    } catch (err) {
      throw writeFailed(`listing existing files of bucket ${this.#opts.bucket} under ${this.#root} failed`, err)
    }
    const base = renderFileName(this.#root, this.#opts.template, {
      bucket: this.#opts.bucket,
      hostname: this.#opts.hostname,
      ts: Math.floor(this.#now() / 1000),
      rand: randomName(),
    })
    const dir = path.dirname(base)
    // Names of files deleted past maxFiles are not reused within the second: a replayer
    // that saw a name go must not see it come back with other frames.
    let n = nextSuffix(this.#files, base)
    let file = n === 0 ? base : `${base}.${n}`
    let handle: WritableFile
    try {
      const created = await makeDirectory(dir)
      for (;;) {
        try {
          handle = await this.#open(file)
          break
        } catch (err) {
          if (errorCode(err) !== 'EEXIST' || ++n > MAX_SUFFIX) throw err
          file = `${base}.${n}`
        }
      }
      if (this.#opts.fsync) {
        try {
          for (const d of directoriesToSync(dir, created)) await syncDirectory(d)
        } catch (err) {
          await handle.close().catch(() => undefined)
          throw err
        }
      }
    } catch (err) {
      throw writeFailed(`creating ${file} failed`, err)
    }
    this.#handle = handle
    this.#current = file
    this.#size = 0
    this.#unsynced = false
    this.#files.push(file)
    await this.#prune()
  }

  async #prune (): Promise<void> {
    const max = this.#opts.maxFiles
    const files = this.#files!
    if (!(max > 0) || files.length <= max) return
    const excess = files.slice(0, files.length - max)
    const kept: string[] = []
    for (const file of excess) {
      try {
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
 * mkdir -p, returning the first directory it created. Not fs.mkdir's `recursive`: that
 * one spins forever when a parent exists but cannot hold children (a dangling symlink to
 * an unmounted disk, a path under /proc), answering ENOENT to the child every time.
 */
async function makeDirectory (dir: string): Promise<string | undefined> {
  try {
    await fsp.mkdir(dir)
    return dir
  } catch (err) {
    // EEXIST for a file in the way too: opening the file under it then fails with ENOTDIR.
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

/** Bytes of the leading buffers that `written` covers completely. */
function wholeFrameBytes (buffers: readonly Buffer[], written: number): number {
  let whole = 0
  for (const b of buffers) {
    if (whole + b.length > written) break
    whole += b.length
  }
  return whole
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

