// A payload schema's `pattern` (and `patternProperties`), run in bounded time wherever V8 can
// (docs/configuration.md#payload-schemas). JSON Schema patterns are compiled with the u flag,
// and V8 runs those on its backtracking engine only: a pattern such as `^(a+)+$` takes
// seconds for a 30-character payload string that almost matches, and kahets, one thread,
// would stop reading every client meanwhile. One crafted payload a few seconds would be
// enough to stall it.
//
// Patterns without the u flag V8 can run on its linear-time engine, and with the flag set
// below it does so by itself once a match has backtracked 50,000 times (about a millisecond):
// the usual pattern keeps the fast backtracking code, a pathological one costs a millisecond
// and then linear time. Such a plain pattern gives the same answers as the u pattern on every
// string when the pattern mentions no character from U+D800 up (literally or as an escape)
// and has no \p{…}, \u{…} or back-reference (the linear engine has no back-references, and
// refuses what it cannot run: that is checked once with its `l` flag), and the string holds
// no surrogate: then u mode and plain mode parse the pattern alike and read the string one
// code unit per code point. A string that does hold surrogates is matched with each code
// point from U+10000 up (and each lone surrogate) replaced by U+E000: such a pattern treats
// every one of those characters exactly as it treats U+E000 (not a word character, a digit,
// white space or a line terminator; matched only by `.`, a negated class or \W \S \D), and
// counts it as one character, as u mode does.
//
// Any other pattern keeps its unbounded u RegExp; check-config and the start log name it.
import v8 from 'node:v8'

// Both V8 flags exist in Node 20 to 26. The first allows the `l` flag (the check below); the
// second lets any plain pattern of this process that backtracks too long finish on the
// linear engine, which changes no answer.
v8.setFlagsFromString('--enable-experimental-regexp-engine')
v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks')

/** What ajv's generated code calls: test(). toString() is ajv's cache key. */
export interface SchemaPattern {
  test (s: string): boolean
  /** The pattern as the schema wrote it. */
  readonly source: string
  /** Its time is bounded: backtracking, falling back to V8's linear engine. */
  readonly bounded: boolean
  toString (): string
}

const SURROGATE = /[\uD800-\uDFFF]/
const ASTRAL_OR_LONE = /[\uD800-\uDBFF][\uDC00-\uDFFF]|[\uD800-\uDFFF]/g
const STAND_IN = '\uE000'

/** Why `source` cannot run without the u flag with the same answers; null when it can. */
function linearProblem (source: string): string | null {
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i)
    if (c >= 0xD800) return 'a character from U+D800 up'
    if (c !== 0x5C) continue // backslash
    const next = source[++i]
    if (next === 'p' || next === 'P') return 'a Unicode property escape'
    if (next === 'k' || (next !== undefined && next >= '1' && next <= '9')) return 'a back-reference'
    if (next === 'u') {
      if (source[i + 1] === '{') return 'a \\u{…} escape'
      const hex = Number.parseInt(source.slice(i + 1, i + 5), 16)
      if (Number.isNaN(hex) || hex >= 0xD800) return 'a \\u escape from U+D800 up'
    }
  }
  return null
}

/** The plain pattern when V8 can finish it on the linear engine; else why not. */
function boundedRegExp (source: string): RegExp | string {
  const problem = linearProblem(source)
  if (problem !== null) return problem
  try {
    // eslint-disable-next-line no-invalid-regexp -- the l flag: V8's linear engine, enabled above
    void new RegExp(source, 'l')
  } catch (err) {
    // Lookaround, or a construct the linear engine does not take.
    return (err as Error).message.includes('linear') ? 'a construct V8 cannot run in linear time (lookaround)' : (err as Error).message
  }
  return new RegExp(source)
}

/** Compiles a schema pattern; throws as `new RegExp(source, 'u')` does for one that is not valid. */
export function compileSchemaPattern (source: string): SchemaPattern & { readonly backtracking: string | null } {
  const full = new RegExp(source, 'u')
  const plain = boundedRegExp(source)
  const key = full.toString()
  if (typeof plain === 'string') {
    return { test: (s) => full.test(s), source, bounded: false, backtracking: plain, toString: () => key }
  }
  return {
    test: (s) => plain.test(SURROGATE.test(s) ? s.replace(ASTRAL_OR_LONE, STAND_IN) : s),
    source,
    bounded: true,
    backtracking: null,
    toString: () => key,
  }
}

/**
 * ajv's code.regExp: every pattern of a schema compiled through it, and the ones whose time is
 * not bounded reported to `backtracking` (pattern → why).
 */
export function schemaRegExpEngine (backtracking: Map<string, string>): ((source: string, flags: string) => SchemaPattern) & { code: string } {
  const engine = (source: string): SchemaPattern => {
    const pattern = compileSchemaPattern(source)
    if (pattern.backtracking !== null) backtracking.set(source, pattern.backtracking)
    return pattern
  }
  // ajv names the engine by `code` only in standalone code, which kahets does not generate.
  return Object.assign(engine, { code: 'compileSchemaPattern' })
}
