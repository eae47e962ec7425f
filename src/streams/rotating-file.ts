// The on-disk half of the `file` stream (SPEC §2): frames of one bucket appended to files
// named by `fileNameTemplate` under `path`, rotated by size, the oldest deleted past
// `maxFiles`. A file is a plain concatenation of whole frames (SPEC §1) so it can be
// replayed, which is why a buffer is never split across files and a file that saw a failed
// write is never written again.
//
// File names: `{bucket}` `{hostname}` `{rand}` `{ts}` (seconds since the epoch) and `{PS}`
// (path.sep); a literal `/` separates directories too. When a name already exists (same
// second, no `{rand}`) `.1`, `.2`… is appended: files are created with O_EXCL and nothing
// is ever overwritten or appended to, because a file left by an earlier run may end in a
// torn frame.
//
// Finding a bucket's files again after a restart goes by name alone. A name is taken as
// this bucket's only if no other bucket name could have produced it under the same
// template (e.g. with `{bucket}.{ts}`, `a.1700000000.1` is bucket `a` with a collision
// suffix or bucket `a.1700000000` at ts 1): such a file is neither counted nor deleted,
// since deleting another bucket's backup file would lose data. checkFileNameTemplate
// rejects templates where this happens in normal use.
import { promises as fsp } from 'node:fs'
import type { Dirent } from 'node:fs'
import path from 'node:path'
import { customAlphabet } from 'nanoid'
import { ErrorCodes, KahetsError, type FaultScope } from '../errors.ts'

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
  // --- spool header (issue 10, spool helper) ---
  /**
   * Written once at the start of every file this creates (a spool file's magic and version,
   * protocol/spool.ts); counted in the file's size and kept when a torn file is cut back.
   */
  header?: Buffer
  // --- end spool header ---
}

const PLACEHOLDER = /\{([^{}]*)\}/g
const RAND_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const RAND_LENGTH = 8
const randomName = customAlphabet(RAND_ALPHABET, RAND_LENGTH)
const BUCKET_CHAR = '[A-Za-z0-9._-]'
const MAX_BUCKET = 255
// {ts} is at most 15 digits so it stays an exact JS number when ordering files.
const TS_SOURCE = '\\d{1,15}'
const RAND_SOURCE = `[A-Za-z0-9]{${RAND_LENGTH}}`
const SUFFIX_SOURCE = '(?:\\.(?<n>[1-9]\\d{0,8}))?'
// A bound on collision suffixes only so that a file system answering EEXIST to everything
// cannot spin us forever; a real run needs one suffix per rotation within one second.
const MAX_SUFFIX = 100_000

export type Token =
  | { readonly kind: 'literal', readonly text: string }
  | { readonly kind: 'bucket' | 'hostname' | 'rand' | 'ts' }
export type Segment = readonly Token[]

// ---------------------------------------------------------------------------------------
// Templates

/** Splits a template into path segments; unknown `{x}` stay literal (checkFileNameTemplate reports them). */
export function parseTemplate (template: string): { segments: Segment[], unknown: string[] } {
  const segments: Token[][] = [[]]
  const unknown: string[] = []
  const addLiteral = (text: string): void => {
    splitOnSeparators(text).forEach((part, i) => {
      if (i > 0) segments.push([])
      if (part !== '') segments[segments.length - 1]!.push({ kind: 'literal', text: part })
    })
  }
  let last = 0
  for (const m of template.matchAll(PLACEHOLDER)) {
    addLiteral(template.slice(last, m.index))
    last = m.index + m[0].length
    const name = m[1]!
    if (name === 'PS') segments.push([])
    else if (name === 'bucket' || name === 'hostname' || name === 'rand' || name === 'ts') segments[segments.length - 1]!.push({ kind: name })
    else {
      unknown.push(m[0])
      addLiteral(m[0])
    }
  }
  addLiteral(template.slice(last))
  return { segments, unknown }
}

// `/` separates directories on every platform (kahego's own examples use it) and so does
// path.sep, which is `\` on Windows only.
function splitOnSeparators (text: string): string[] {
  return path.sep === '/' ? text.split('/') : text.split(/[/\\]/)
}

function escapeRegExp (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')
}

function isVariable (seg: Segment): boolean {
  return seg.some((t) => t.kind === 'ts' || t.kind === 'rand')
}

function tokenText (t: Token, bucket: string, hostname: string): string {
  if (t.kind === 'literal') return t.text
  if (t.kind === 'bucket') return bucket
  if (t.kind === 'hostname') return hostname
  throw new Error(`${t.kind} has no fixed text`)
}

/**
 * A regular-expression source for segments with `{bucket}` and `{hostname}` fixed; `{ts}`
 * captures into group `t` and `{rand}` into `r`, later occurrences must repeat them (one
 * rendering uses one value for each).
 */
function fixedBucketSource (segs: readonly Segment[], bucket: string, hostname: string): string {
  const seen = new Set<string>()
  return segs.map((seg) => seg.map((t) => {
    if (t.kind === 'ts' || t.kind === 'rand') {
      const group = t.kind === 'ts' ? 't' : 'r'
      if (seen.has(group)) return `\\k<${group}>`
      seen.add(group)
      return `(?<${group}>${t.kind === 'ts' ? TS_SOURCE : RAND_SOURCE})`
    }
    return escapeRegExp(tokenText(t, bucket, hostname))
  }).join('')).join(escapeRegExp(path.sep))
}

/**
 * Matches a path (relative to root) that some bucket name other than `bucket` renders to,
 * collision suffix included. Exact for `{bucket}` (it spells "any name but this one" as
 * shorter | longer | same length but different), looser elsewhere, so it errs towards
 * "not ours".
 */
function otherBucketRegExp (segs: readonly Segment[], bucket: string, hostname: string): RegExp {
  const n = bucket.length
  const others = [
    n > 1 ? `${BUCKET_CHAR}{1,${n - 1}}` : null,
    n < MAX_BUCKET ? `${BUCKET_CHAR}{${n + 1},${MAX_BUCKET}}` : null,
    `(?!${escapeRegExp(bucket)})${BUCKET_CHAR}{${n}}`,
  ].filter((s) => s !== null).join('|')
  const seen = new Set<string>()
  const source = segs.map((seg) => seg.map((t) => {
    if (t.kind === 'bucket' || t.kind === 'ts' || t.kind === 'rand') {
      const group = t.kind[0]!
      if (seen.has(group)) return `\\k<${group}>`
      seen.add(group)
      return `(?<${group}>${t.kind === 'bucket' ? `(?:${others})` : t.kind === 'ts' ? TS_SOURCE : RAND_SOURCE})`
    }
    return escapeRegExp(tokenText(t, bucket, hostname))
  }).join('')).join(escapeRegExp(path.sep))
  return new RegExp(`^${source}${SUFFIX_SOURCE}$`)
}

function insideRoot (resolvedRoot: string, file: string): boolean {
  const prefix = resolvedRoot.endsWith(path.sep) ? resolvedRoot : resolvedRoot + path.sep
  return file.startsWith(prefix) && file.length > prefix.length
}

/**
 * Renders the template for a bucket into an absolute path. `vars.ts` is in seconds.
 * Throws KahetsError PATH_ESCAPE if the result is not strictly inside root: this is the
 * check that keeps every file under `path` whatever the template or a client's bucket name.
 */
export function renderFileName (root: string, template: string, vars: { bucket: string, hostname: string, ts: number, rand: string }): string {
  const rendered = template.replace(PLACEHOLDER, (whole, name: string) => {
    switch (name) {
      case 'bucket': return vars.bucket
      case 'PS': return path.sep
      case 'hostname': return vars.hostname
      case 'rand': return vars.rand
      case 'ts': return String(vars.ts)
      default: return whole
    }
  })
  const resolvedRoot = path.resolve(root)
  const file = path.resolve(resolvedRoot, rendered)
  if (!insideRoot(resolvedRoot, file)) {
    throw new KahetsError(ErrorCodes.PATH_ESCAPE, `file name ${JSON.stringify(rendered)} from template ${JSON.stringify(template)} resolves to ${file}, outside ${resolvedRoot}`)
  }
  return file
}

// Bucket names chosen to reach the corners of the charset: dots that look like path
// segments, and names that look like a {ts} or a collision suffix.
const PROBE_BUCKETS = ['a', '...', 'a..b', 'ab.c-d_e', '1']
const PROBE_VARS = { hostname: 'host', ts: 1_700_000_000, rand: 'AbCd1234' }

/**
 * For config validation: null if the template is usable, else why not. Rejected: empty,
 * unknown placeholder, absolute, `.`/`..` segments, naming a directory, no `{bucket}`
 * (buckets sharing a stream would share files and delete each other's), names that two
 * buckets could both produce, and any result outside root.
 */
export function checkFileNameTemplate (root: string, template: string): string | null {
  if (template.trim() === '') return 'is empty'
  const { segments, unknown } = parseTemplate(template)
  if (unknown.length > 0) return `unknown placeholder ${unknown.join(', ')}; known: {bucket} {PS} {hostname} {rand} {ts}`
  const withSeparators = template.replaceAll('{PS}', path.sep)
  if (path.isAbsolute(withSeparators) || segments[0]!.length === 0) return 'must be relative to path (starts with a path separator)'
  if (segments[segments.length - 1]!.length === 0) return 'ends with a path separator: it must name a file'
  for (const seg of segments) {
    if (seg.length === 1 && seg[0]!.kind === 'literal' && (seg[0]!.text === '.' || seg[0]!.text === '..')) {
      return `must not contain "${seg[0]!.text}" path segments`
    }
  }
  if (!segments.some((seg) => seg.some((t) => t.kind === 'bucket'))) {
    return 'must contain {bucket}: buckets sharing this stream would otherwise write, count and delete the same files'
  }
  const segs = segments.filter((s) => s.length > 0)
  const resolvedRoot = path.resolve(root)
  for (const bucket of PROBE_BUCKETS) {
    let file: string
    try {
      file = renderFileName(root, template, { bucket, ...PROBE_VARS })
    } catch {
      return `resolves outside path for bucket ${JSON.stringify(bucket)}`
    }
    const other = otherBucketRegExp(segs, bucket, PROBE_VARS.hostname)
    const rel = path.relative(resolvedRoot, file)
    if (other.test(rel) || other.test(`${rel}.1`)) {
      return `a file of bucket ${JSON.stringify(bucket)} (${rel}) could also be another bucket's: ` +
        'keep {bucket} apart from {ts}, {rand} and the end of the name, e.g. "{bucket}{PS}{ts}.log" or "{bucket}-{ts}.log"'
    }
  }
  return null
}

// ---------------------------------------------------------------------------------------
// Files

interface Found {
  file: string
  ts: number
  suffix: number
  mtimeMs: number
}

function errorCode (err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined
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

async function readDirectory (dir: string): Promise<Dirent[]> {
  try {
    return await fsp.readdir(dir, { withFileTypes: true })
  } catch (err) {
    // A directory that does not exist (yet) holds no files of ours.
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return []
    throw err
  }
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
  readonly #segments: readonly Segment[]
  /** This bucket's files, oldest first, the current one last; null until the first write. */
  #files: string[] | null = null
  #handle: WritableFile | null = null
  #current: string | null = null
  #size = 0
  #unsynced = false
  #closed = false
  #queue: Promise<unknown> = Promise.resolve()
  readonly #headerBytes: number

  constructor (opts: RotatingFileOptions) {
    this.#opts = { ...opts }
    this.#headerBytes = opts.header?.length ?? 0
    this.#now = opts.now ?? Date.now
    this.#open = opts.open ?? ((file) => fsp.open(file, 'wx'))
    this.#root = path.resolve(opts.root)
    this.#segments = parseTemplate(opts.template).segments.filter((s) => s.length > 0)
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
        if (this.#size + bytes > this.#headerBytes && this.#size + bytes + len > limit) break
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
        emptied = keepBytes <= this.#headerBytes
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
      // --- spool header ---
      if (this.#headerBytes > 0) {
        try {
          let written = 0
          while (written < this.#headerBytes) {
            const { bytesWritten } = await handle.writev([this.#opts.header!.subarray(written)])
            if (!(bytesWritten > 0)) throw new Error(`writev wrote ${bytesWritten} bytes of the file header`)
            written += bytesWritten
          }
        } catch (err) {
          // A file without its whole header would be read as damaged: it goes.
          await handle.close().catch(() => undefined)
          await fsp.unlink(file).catch(() => undefined)
          throw err
        }
      }
      // --- end spool header ---
    } catch (err) {
      throw writeFailed(`creating ${file} failed`, err)
    }
    this.#handle = handle
    this.#current = file
    this.#size = this.#headerBytes
    this.#unsynced = this.#headerBytes > 0
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

  async #scan (): Promise<Found[]> {
    const { bucket, hostname } = this.#opts
    const segs = this.#segments
    const other = otherBucketRegExp(segs, bucket, hostname)
    return await findTemplateFiles(this.#root, segs, {
      source: (seg) => fixedBucketSource([seg], bucket, hostname),
      // Directory segments with {ts} or {rand} are matched against what is there; the others
      // are fixed names once {bucket} and {hostname} are known.
      fixedName: (seg) => isVariable(seg) ? undefined : seg.map((t) => tokenText(t, bucket, hostname)).join(''),
      accept: (file) => !other.test(path.relative(this.#root, file)),
    })
  }
}

/** {ts} renders one value per name: a directory's {ts} and the file's must agree. */
function sameTs (known: number | null, captured: string | undefined): number | null | false {
  if (captured === undefined) return known
  const ts = Number(captured)
  return known === null || known === ts ? ts : false
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

/** How findTemplateFiles matches a template's path segments against what is on disk. */
interface TemplateWalk {
  /** The regular-expression source of one segment; `{ts}` captures into group `t`. */
  source: (seg: Segment) => string
  /**
   * A directory segment's fixed name, joined on without reading the directory (so it may be
   * a symlink); undefined, or no fixedName at all: the directory's entries are matched
   * against `source` instead.
   */
  fixedName?: (seg: Segment) => string | undefined
  /** A further test on a file whose name matched (its absolute path); false leaves it out. */
  accept?: (file: string) => boolean
}

/**
 * The files strictly under resolvedRoot whose path matches the segments, the last one with
 * a collision suffix, oldest first: by {ts}, then modification time, then collision suffix,
 * then name. A {ts} in a directory and in the file name must agree. A file gone before it
 * could be stat'ed is left out; any other stat error is thrown.
 */
async function findTemplateFiles (resolvedRoot: string, segs: readonly Segment[], walk: TemplateWalk): Promise<Found[]> {
  if (segs.length === 0) return []
  let dirs: Array<{ dir: string, ts: number | null }> = [{ dir: resolvedRoot, ts: null }]
  for (const seg of segs.slice(0, -1)) {
    const name = walk.fixedName?.(seg)
    if (name !== undefined) {
      dirs = dirs.map((d) => ({ dir: path.join(d.dir, name), ts: d.ts }))
      continue
    }
    const re = new RegExp(`^${walk.source(seg)}$`)
    const next: typeof dirs = []
    for (const d of dirs) {
      for (const entry of await readDirectory(d.dir)) {
        const m = entry.isDirectory() ? re.exec(entry.name) : null
        if (m === null || entry.name === '.' || entry.name === '..') continue
        const ts = sameTs(d.ts, m.groups?.t)
        if (ts !== false) next.push({ dir: path.join(d.dir, entry.name), ts })
      }
    }
    dirs = next
  }
  const fileRe = new RegExp(`^${walk.source(segs[segs.length - 1]!)}${SUFFIX_SOURCE}$`)
  const found: Found[] = []
  for (const d of dirs) {
    for (const entry of await readDirectory(d.dir)) {
      const m = entry.isFile() ? fileRe.exec(entry.name) : null
      if (m === null) continue
      const ts = sameTs(d.ts, m.groups?.t)
      const file = path.join(d.dir, entry.name)
      if (ts === false || !insideRoot(resolvedRoot, file) || walk.accept?.(file) === false) continue
      let mtimeMs: number
      try {
        mtimeMs = (await fsp.stat(file)).mtimeMs
      } catch (err) {
        if (errorCode(err) === 'ENOENT') continue
        throw err
      }
      found.push({ file, ts: ts ?? 0, suffix: m.groups?.n === undefined ? 0 : Number(m.groups.n), mtimeMs })
    }
  }
  return found.sort((a, b) => a.ts - b.ts || a.mtimeMs - b.mtimeMs || a.suffix - b.suffix || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))
}

/**
 * Every file under root that this template rendered, for any bucket, oldest first — what a
 * backup stream left for replay, whichever buckets wrote it and in whichever run.
 */
export async function listTemplateFiles (root: string, template: string, hostname: string): Promise<string[]> {
  // One regular expression per path segment, {bucket} matching any bucket name; every
  // directory segment is matched against what is there.
  const source = (seg: Segment): string => {
    // A second {ts} in the same segment repeats the first (one rendering, one value).
    let tsSeen = false
    return seg.map((t) => {
      if (t.kind === 'bucket') return `${BUCKET_CHAR}{1,${MAX_BUCKET}}`
      if (t.kind === 'ts') {
        if (tsSeen) return '\\k<t>'
        tsSeen = true
        return `(?<t>${TS_SOURCE})`
      }
      if (t.kind === 'rand') return RAND_SOURCE
      return escapeRegExp(tokenText(t, '', hostname))
    }).join('')
  }
  // Empty segments ("a//b") render as one separator, as in RotatingFile.
  const segments = parseTemplate(template).segments.filter((seg) => seg.length > 0)
  const found = await findTemplateFiles(path.resolve(root), segments, { source })
  return found.map((f) => f.file)
}
