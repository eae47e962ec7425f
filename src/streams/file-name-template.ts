// The `fileNameTemplate` grammar (docs/configuration.md#file-settings), apart from the writer so that config validation
// can check a template without loading the stream: parsing, rendering a name for a bucket,
// rejecting templates that could leave `path` or mix buckets up, and finding the files a
// template produced.
//
// File names: `{bucket}` `{hostname}` `{rand}` `{ts}` (seconds since the epoch) and `{PS}`
// (path.sep); a literal `/` separates directories too. When a name already exists the writer
// appends `.1`, `.2`… (the collision suffix matched here).
//
// Finding a bucket's files again after a restart goes by name alone. A name is taken as
// this bucket's only if no other bucket name could have produced it under the same
// template (e.g. with `{bucket}.{ts}`, `a.1700000000.1` is bucket `a` with a collision
// suffix or bucket `a.1700000000` at ts 1): such a file is neither counted nor deleted,
// since deleting another bucket's backup file would lose data. checkFileNameTemplate
// rejects templates where this happens in normal use.
//
// No symlink below `path` is followed (issue 10): a directory the walk would enter is taken
// only if it is a real directory (lstat), and only regular files are found, so a symlink
// planted as a bucket's folder can never make its target's files look like this bucket's.
import { promises as fsp } from 'node:fs'
import type { Dirent } from 'node:fs'
import path from 'node:path'
import { ErrorCodes, KahetsError } from '../errors.ts'

const PLACEHOLDER = /\{([^{}]*)\}/g
export const RAND_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
export const RAND_LENGTH = 8
const BUCKET_CHAR = '[A-Za-z0-9._-]'
const MAX_BUCKET = 255
// {ts} is at most 15 digits so it stays an exact JS number when ordering files.
const TS_SOURCE = '\\d{1,15}'
const RAND_SOURCE = `[A-Za-z0-9]{${RAND_LENGTH}}`
const SUFFIX_SOURCE = '(?:\\.(?<n>[1-9]\\d{0,8}))?'

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

export function insideRoot (resolvedRoot: string, file: string): boolean {
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
// Finding files

export interface Found {
  file: string
  ts: number
  suffix: number
  mtimeMs: number
}

export function errorCode (err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined
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

/** lstat: a symlink to a directory is not one (no symlink below `path` is followed). */
async function isRealDirectory (dir: string): Promise<boolean> {
  try {
    return (await fsp.lstat(dir)).isDirectory()
  } catch (err) {
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return false
    throw err
  }
}

/** {ts} renders one value per name: a directory's {ts} and the file's must agree. */
function sameTs (known: number | null, captured: string | undefined): number | null | false {
  if (captured === undefined) return known
  const ts = Number(captured)
  return known === null || known === ts ? ts : false
}

/** How findTemplateFiles matches a template's path segments against what is on disk. */
interface TemplateWalk {
  /** The regular-expression source of one segment; `{ts}` captures into group `t`. */
  source: (seg: Segment) => string
  /**
   * A directory segment's fixed name, entered without reading its parent (only if lstat
   * finds a real directory there); undefined, or no fixedName at all: the directory's
   * entries are matched against `source` instead.
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
      const next: typeof dirs = []
      for (const d of dirs) {
        const dir = path.join(d.dir, name)
        if (await isRealDirectory(dir)) next.push({ dir, ts: d.ts })
      }
      dirs = next
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
        mtimeMs = (await fsp.lstat(file)).mtimeMs
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

/**
 * One bucket's files under root, oldest first: those this template rendered for `bucket`
 * and that no other bucket name could have produced (see the header). Only regular files,
 * reached through real directories: what maxFiles may count and delete.
 */
export async function findBucketFiles (root: string, template: string, bucket: string, hostname: string): Promise<Found[]> {
  const segs = parseTemplate(template).segments.filter((s) => s.length > 0)
  const resolvedRoot = path.resolve(root)
  const other = otherBucketRegExp(segs, bucket, hostname)
  return await findTemplateFiles(resolvedRoot, segs, {
    source: (seg) => fixedBucketSource([seg], bucket, hostname),
    // Directory segments with {ts} or {rand} are matched against what is there; the others
    // are fixed names once {bucket} and {hostname} are known.
    fixedName: (seg) => isVariable(seg) ? undefined : seg.map((t) => tokenText(t, bucket, hostname)).join(''),
    accept: (file) => !other.test(path.relative(resolvedRoot, file)),
  })
}
