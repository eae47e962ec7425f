// Can two file streams claim the same files? Each file stream (and each file backup) counts,
// prunes (maxFiles) and replays the files its `fileNameTemplate` produces under its `path`
// (src/streams/rotating-file.ts). Two of them whose names can coincide in one folder would
// delete and replay each other's files (issue 10, finding 10), so the buckets file is
// refused when, placed relative to the same folder, the two templates share a name.
//
// "Share a name" is decided exactly for the templates' regular languages: every name a
// template renders or lists is
//
//   segment ( "/" segment )* ( "." [1-9] [0-9]{0,8} )?        (the collision suffix)
//
// with {bucket} any of [A-Za-z0-9._-]+, {ts} [0-9]{1,15}, {rand} [A-Za-z0-9]{8} and
// {hostname} [A-Za-z0-9._-]+ (any host, so the answer does not depend on the machine that
// checks the file). Each placeholder is taken on its own, even where a template repeats
// one, and names have no length bound: both only make the check stricter. The two languages are intersected by
// walking both automata in step; the first shared name found is returned as the proof.
import path from 'node:path'
import { parseTemplate, type Token } from '../streams/file-name-template.ts'

type CharTest = (c: string) => boolean

interface Automaton {
  /** edges[state]: character tests and the state they lead to. */
  readonly edges: Array<Array<{ test: CharTest, to: number }>>
  /** Empty moves. */
  readonly empty: number[][]
  readonly accept: number
}

const BUCKET_CHAR: CharTest = (c) => /^[A-Za-z0-9._-]$/.test(c)
const DIGIT: CharTest = (c) => c >= '0' && c <= '9'
const ALNUM: CharTest = (c) => /^[A-Za-z0-9]$/.test(c)

const PLACEHOLDER_SHAPE: Record<Exclude<Token['kind'], 'literal'>, { test: CharTest, min: number, max: number }> = {
  // Bucket and host names are taken as unbounded in length: a few states instead of
  // hundreds (the walk stays fast for any template), at the cost of refusing a pair whose
  // only shared names would need a bucket name longer than 255 characters.
  bucket: { test: BUCKET_CHAR, min: 1, max: Infinity },
  ts: { test: DIGIT, min: 1, max: 15 },
  rand: { test: ALNUM, min: 8, max: 8 },
  hostname: { test: BUCKET_CHAR, min: 1, max: Infinity },
}

class Builder {
  readonly edges: Automaton['edges'] = [[]]
  readonly empty: number[][] = [[]]
  at = 0

  #state (): number {
    this.edges.push([])
    this.empty.push([])
    return this.edges.length - 1
  }

  char (test: CharTest): void {
    const next = this.#state()
    this.edges[this.at]!.push({ test, to: next })
    this.at = next
  }

  literal (text: string): void {
    for (const ch of text) this.char((c) => c === ch)
  }

  repeat (test: CharTest, min: number, max: number): void {
    if (max === Infinity) {
      for (let i = 0; i < min; i++) this.char(test)
      const loop = this.#state()
      this.empty[this.at]!.push(loop)
      this.edges[loop]!.push({ test, to: loop })
      this.at = loop
      return
    }
    const exit = this.#state()
    for (let i = 0; i < max; i++) {
      if (i >= min) this.empty[this.at]!.push(exit)
      this.char(test)
    }
    this.empty[this.at]!.push(exit)
    this.at = exit
  }

  optional (build: () => void): void {
    const from = this.at
    build()
    this.empty[from]!.push(this.at)
  }
}

/** The names `template` renders under a folder `prefix` (relative, may be ''), suffix included. */
function automaton (prefix: string, template: string): Automaton {
  const b = new Builder()
  if (prefix !== '') b.literal(prefix.split(path.sep).join('/') + '/')
  // Empty segments ("a//b") render as one separator, as in RotatingFile.
  const segments = parseTemplate(template).segments.filter((s) => s.length > 0)
  segments.forEach((seg, i) => {
    if (i > 0) b.literal('/')
    for (const t of seg) {
      if (t.kind === 'literal') b.literal(t.text)
      else {
        const { test, min, max } = PLACEHOLDER_SHAPE[t.kind]
        b.repeat(test, min, max)
      }
    }
  })
  b.optional(() => {
    b.literal('.')
    b.char((c) => c >= '1' && c <= '9')
    b.repeat(DIGIT, 0, 8)
  })
  return { edges: b.edges, empty: b.empty, accept: b.at }
}

function closure (a: Automaton, state: number): number[] {
  const seen = new Set([state])
  const todo = [state]
  while (todo.length > 0) {
    for (const next of a.empty[todo.pop()!]!) {
      if (!seen.has(next)) {
        seen.add(next)
        todo.push(next)
      }
    }
  }
  return [...seen]
}

/** A name both automata accept, or null. */
function sharedName (a: Automaton, b: Automaton, alphabet: readonly string[]): string | null {
  const ca = a.edges.map((_, s) => closure(a, s))
  const cb = b.edges.map((_, s) => closure(b, s))
  const width = b.edges.length
  const parent = new Map<number, { from: number, c: string }>()
  const key = (x: number, y: number): number => x * width + y
  const start = key(0, 0)
  parent.set(start, { from: -1, c: '' })
  const queue = [start]
  for (let i = 0; i < queue.length; i++) {
    const k = queue[i]!
    const x = Math.floor(k / width)
    const y = k % width
    if (ca[x]!.includes(a.accept) && cb[y]!.includes(b.accept)) {
      let name = ''
      for (let at = k; at !== start; at = parent.get(at)!.from) name = parent.get(at)!.c + name
      return name
    }
    for (const xs of ca[x]!) {
      for (const ea of a.edges[xs]!) {
        for (const ys of cb[y]!) {
          for (const eb of b.edges[ys]!) {
            const next = key(ea.to, eb.to)
            if (parent.has(next)) continue
            const c = alphabet.find((ch) => ea.test(ch) && eb.test(ch))
            if (c === undefined) continue
            parent.set(next, { from: k, c })
            queue.push(next)
          }
        }
      }
    }
  }
  return null
}

export interface FileLocation {
  readonly path: string
  readonly fileNameTemplate: string
}

/**
 * A file (absolute path) that both streams could write or claim, or null when none can exist: different folders neither inside the other, or
 * templates whose names provably differ (another fixed prefix, extension…).
 */
export function overlappingFileName (a: FileLocation, b: FileLocation): string | null {
  const rootA = path.resolve(a.path)
  const rootB = path.resolve(b.path)
  const inside = (outer: string, inner: string): string | null => {
    const rel = path.relative(outer, inner)
    return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel)) ? rel : null
  }
  const bInA = inside(rootA, rootB)
  const aInB = bInA === null ? inside(rootB, rootA) : null
  if (bInA === null && aInB === null) return null
  const na = automaton(aInB ?? '', a.fileNameTemplate)
  const nb = automaton(bInA ?? '', b.fileNameTemplate)
  // Every character either template names literally, plus one of each class the
  // placeholders use: enough to decide any step, since characters outside this set behave
  // like one of these.
  const alphabet = [...new Set([...`${aInB ?? ''}${bInA ?? ''}${a.fileNameTemplate}${b.fileNameTemplate}`, '0', '1', 'a', 'A', '.', '-', '_', '/'])]
  const name = sharedName(na, nb, alphabet)
  return name === null ? null : path.join(bInA !== null ? rootA : rootB, name)
}
