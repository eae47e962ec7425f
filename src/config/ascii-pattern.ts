// A schema `pattern` matched on bytes, for the byte scanner (payload-scan.ts): the patterns
// payload schemas mostly hold (ids, codes, dates, hex: `^u-[0-9]{7}$`,
// `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`, `^[a-z0-9_-]+$`) are a chain of character classes with
// counts, anchored at both ends. Matched in place they need no string and no RegExp call,
// which cost more than the rest of a short string's check.
//
// Only what can be matched exactly, greedily and without going back is compiled:
//   pattern := '^' atom* '$'
//   atom    := (char | '\' escaped | '\d' | '\w' | '\s' | '.' | '[' '^'? item+ ']') count?
//   count   := '?' | '*' | '+' | '{n}' | '{n,}' | '{n,m}'
// with every class ASCII, and a class whose count varies disjoint from what may follow it
// (up to the next class that must occur): then taking as many as possible is the only way to
// match. Anything else (groups, alternatives, lookarounds, back-references, lazy counts,
// non-ASCII) returns null and the RegExp is used. Only ASCII strings are matched (the scanner
// hands over nothing else), so a negated class or `.` need not say what they do beyond ASCII.

/** Whether buf[start, end) (ASCII) matches the pattern. */
export type BytePattern = (buf: Buffer, start: number, end: number) => boolean

interface Atom {
  /** 128 entries, 1 where the byte belongs to the class. */
  readonly set: Uint8Array
  readonly min: number
  readonly max: number
}

const MAX_COUNT = Infinity

/** The byte matcher of `pattern` (as ajv compiles it: with the u flag), or null when it is outside the grammar above. */
export function compileBytePattern (pattern: string): BytePattern | null {
  if (!pattern.startsWith('^') || !pattern.endsWith('$') || pattern.endsWith('\\$')) return null
  const atoms = parseAtoms(pattern.slice(1, -1))
  if (atoms === null || !deterministic(atoms)) return null
  return (buf, start, end) => {
    let i = start
    for (let a = 0; a < atoms.length; a++) {
      const { set, min, max } = atoms[a]!
      const stop = max < end - i ? i + max : end
      const from = i
      while (i < stop) {
        const b = buf[i]!
        if (b >= 0x80 || set[b] !== 1) break
        i++
      }
      if (i - from < min) return false
    }
    return i === end
  }
}

function parseAtoms (body: string): Atom[] | null {
  const atoms: Atom[] = []
  let k = 0
  while (k < body.length) {
    const set = new Uint8Array(128)
    const c = body[k]!
    if (c === '[') {
      const close = parseClass(body, k + 1, set)
      if (close < 0) return null
      k = close + 1
    } else if (c === '\\') {
      if (!escape(body[k + 1], set, false)) return null
      k += 2
    } else if (c === '.') {
      // Any character but line terminators; of ASCII, all but \n and \r.
      set.fill(1)
      set[0x0a] = 0
      set[0x0d] = 0
      k++
    } else if ('^$|()?*+{}]'.includes(c) || c.charCodeAt(0) >= 0x80) {
      return null
    } else {
      set[c.charCodeAt(0)] = 1
      k++
    }
    const count = parseCount(body, k)
    if (count === null) return null
    k = count.next
    atoms.push({ set, min: count.min, max: count.max })
  }
  return atoms
}

/** Fills `set` from the class body starting at body[k]; the index of its `]`, or -1. */
function parseClass (body: string, k: number, set: Uint8Array): number {
  const negated = body[k] === '^'
  if (negated) k++
  const first = k
  while (k < body.length && (body[k] !== ']' || k === first)) {
    if (body[k] === ']') return -1 // `[]` and `[^]`: a class JavaScript reads differently
    let low: number
    if (body[k] === '\\') {
      const next = body[k + 1]
      // A class escape (\d, \w, \s) cannot start a range.
      if (next === 'd' || next === 'w' || next === 's') {
        escape(next, set, true)
        k += 2
        continue
      }
      low = escapedChar(next)
      k += 2
    } else {
      low = body.charCodeAt(k)
      k++
    }
    if (low < 0 || low >= 0x80) return -1
    let high = low
    if (body[k] === '-' && k + 1 < body.length && body[k + 1] !== ']') {
      if (body[k + 1] === '\\') {
        high = escapedChar(body[k + 2])
        k += 3
      } else {
        high = body.charCodeAt(k + 1)
        k += 2
      }
      if (high < low || high >= 0x80) return -1
    }
    for (let b = low; b <= high; b++) set[b] = 1
  }
  if (k >= body.length) return -1
  if (negated) for (let b = 0; b < 128; b++) set[b] ^= 1
  return k
}

// With the u flag, only syntax characters and '/' may be escaped as themselves (and '-' in a class).
const SYNTAX = '^$\\.*+?()[]{}|/'

function escapedChar (c: string | undefined): number {
  if (c === undefined) return -1
  if (SYNTAX.includes(c) || c === '-') return c.charCodeAt(0)
  switch (c) {
    case 't': return 0x09
    case 'n': return 0x0a
    case 'r': return 0x0d
    case 'f': return 0x0c
    case 'v': return 0x0b
    default: return -1
  }
}

/** An escape outside a class (inClass false) or a class escape in one; false when it is not modelled. */
function escape (c: string | undefined, set: Uint8Array, inClass: boolean): boolean {
  switch (c) {
    case 'd':
      for (let b = 0x30; b <= 0x39; b++) set[b] = 1
      return true
    case 'w':
      for (let b = 0; b < 128; b++) if (/[A-Za-z0-9_]/.test(String.fromCharCode(b))) set[b] = 1
      return true
    case 's':
      for (const b of [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20]) set[b] = 1
      return true
    default: {
      if (c === '-' && !inClass) return false // `\-` outside a class is a syntax error with u
      const b = escapedChar(c)
      if (b < 0) return false
      set[b] = 1
      return true
    }
  }
}

function parseCount (body: string, k: number): { min: number, max: number, next: number } | null {
  let count: { min: number, max: number, next: number }
  switch (body[k]) {
    case '?': count = { min: 0, max: 1, next: k + 1 }; break
    case '*': count = { min: 0, max: MAX_COUNT, next: k + 1 }; break
    case '+': count = { min: 1, max: MAX_COUNT, next: k + 1 }; break
    case '{': {
      const m = /^\{(\d{1,6})(,(\d{0,6}))?\}/.exec(body.slice(k))
      if (m === null) return null
      const min = Number(m[1])
      const max = m[2] === undefined ? min : m[3] === '' ? MAX_COUNT : Number(m[3])
      if (max < min) return null
      count = { min, max, next: k + m[0].length }
      break
    }
    default: return { min: 1, max: 1, next: k }
  }
  // A lazy count (`+?`) or a count of a count is not modelled.
  if (body[count.next] === '?' || body[count.next] === '*' || body[count.next] === '+' || body[count.next] === '{') return null
  return count
}

/** Whether each class with a varying count shares no byte with what may come right after it. */
function deterministic (atoms: readonly Atom[]): boolean {
  for (let a = 0; a < atoms.length; a++) {
    if (atoms[a]!.min === atoms[a]!.max) continue
    for (let b = a + 1; b < atoms.length; b++) {
      const set = atoms[a]!.set
      const next = atoms[b]!.set
      for (let c = 0; c < 128; c++) if (set[c] === 1 && next[c] === 1) return false
      if (atoms[b]!.min > 0) break
    }
  }
  return true
}
