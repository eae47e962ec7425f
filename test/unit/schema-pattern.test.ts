// Schema patterns in bounded time (src/config/schema-pattern.ts): the same answers as the
// u-flag RegExp JSON Schema asks for, on strings with astral characters, lone surrogates and
// the stand-in character itself; the patterns V8's linear engine cannot take stay on the
// unbounded RegExp and say why; and a pattern that backtracks exponentially answers at once.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compileSchemaPattern } from '../../src/config/schema-pattern.ts'
import { runInChild } from '../helpers/child-node.ts'
import { seededRandom } from '../helpers/random.ts'

const LINEAR = [
  '^[a-z0-9_-]{3,16}$',
  '^(a+)+$',
  '^.{2}$',
  '^.{3}$',
  '^[^x]{1,4}$',
  '^\\S+@\\S+\\.\\S+$',
  '^\\w*\\W\\w*$',
  '\\d',
  '\\bcat\\b',
  '^([0-9a-f]{2}:){5}[0-9a-f]{2}$',
  '^(?:[a-z]+\\.)*[a-z]+$',
  '^[\\s\\S]*$',
  '^[^\\uD7FF]+$',
  '^\\u00e9+$',
  'a|b|c',
  '^$',
  '^\\x41\\cJ?[\\0-\\x1f]*$',
]
const BACKTRACKING: Array<[string, RegExp]> = [
  ['^(a)\\1$', /back-reference/],
  ['^(?<x>a)\\k<x>$', /back-reference/],
  ['^\\p{L}+$', /property escape/],
  ['^\\u{1F600}$', /\\u\{…\}/],
  ['^[😀]$', /U\+D800/],
  ['^\\uD83D\\uDE00$', /U\+D800/],
  ['^\\uE000$', /U\+D800/],
]

// Lookaround: newer V8s run some of it on the linear engine (Node 26 takes lookbehind, Node
// 20 does not); either way the answers must be the u-flag RegExp's.
const EITHER = ['(?<!a)b', '^a(?=b)', '(?<=x)\\d+']

// Characters that tell u mode from plain mode: astral ones (two code units), lone
// surrogates (from JSON escapes), the stand-in U+E000, line terminators, white space.
const ALPHABET = ['a', 'b', 'x', 'z', '0', '9', '_', '-', '.', '@', ':', ' ', '\n', '\u2028', '\u00e9', '\ud7ff', '\ue000', '\ufeff', '😀', '𝒜', '\ud83d', '\ude00', 'cat', 'aaaa', 'A', '\u0000', '\u001f']

test('bounded patterns give the u-flag RegExp\'s answer on 3,000 strings each, astral characters and lone surrogates included', () => {
  const rnd = seededRandom(14)
  for (const source of [...LINEAR, ...EITHER]) {
    const p = compileSchemaPattern(source)
    if (!EITHER.includes(source)) assert.equal(p.bounded, true, `${source} is bounded (${p.backtracking ?? ''})`)
    const u = new RegExp(source, 'u')
    for (let i = 0; i < 3000; i++) {
      let s = ''
      for (let n = Math.floor(rnd() * 7); n > 0; n--) s += ALPHABET[Math.floor(rnd() * ALPHABET.length)]!
      assert.equal(p.test(s), u.test(s), `${source} on ${JSON.stringify(s)}`)
    }
  }
})

test('patterns the linear engine cannot take stay on the unbounded u RegExp and say why; they still answer as it does', () => {
  for (const [source, why] of BACKTRACKING) {
    const p = compileSchemaPattern(source)
    assert.equal(p.bounded, false, source)
    assert.match(p.backtracking ?? '', why, source)
    const u = new RegExp(source, 'u')
    for (const s of ['aa', 'a', 'ab', 'b', 'xb', 'é', '😀', '\ue000', '']) assert.equal(p.test(s), u.test(s), `${source} on ${JSON.stringify(s)}`)
  }
  assert.throws(() => compileSchemaPattern('^[a-'), SyntaxError, 'an invalid pattern throws as RegExp does')
})

test('a pattern that backtracks exponentially answers at once on a near-match of 10,000 characters', async () => {
  // On the backtracking engine 30 characters take ~10 s and each one more doubles it: in a
  // child, killed after 30 s.
  const out = await runInChild(`
    import { compileSchemaPattern } from './src/config/schema-pattern.ts'
    const answers = {}
    for (const source of ['^(a+)+$', '^(a|aa)+$', '^(\\\\w+\\\\s?)*$', '^([a-z]+\\\\.)*[a-z]+$']) {
      const p = compileSchemaPattern(source)
      answers[source] = [p.bounded, p.test('a'.repeat(10_000) + '!'), p.test('a'.repeat(10_000) + '\u{1F600}!'), p.test('a'.repeat(10_000))]
    }
    console.log(JSON.stringify(answers))`)
  assert.deepEqual(JSON.parse(out), {
    '^(a+)+$': [true, false, false, true],
    '^(a|aa)+$': [true, false, false, true],
    '^(\\w+\\s?)*$': [true, false, false, true],
    '^([a-z]+\\.)*[a-z]+$': [true, false, false, true],
  })
})

test('ajv compiles payload schemas through it: patterns and patternProperties, the unbounded ones reported', async () => {
  const out = await runInChild(`
    import { payloadAjv } from './src/config/payload-schema.ts'
    const backtracking = new Map()
    const validate = payloadAjv(undefined, backtracking).compile({
      type: 'object',
      properties: { name: { type: 'string', pattern: '^(a+)+$' }, twice: { type: 'string', pattern: '^(.)\\\\1$' } },
      patternProperties: { '^x-(a+)+$': { type: 'integer' } },
    })
    const near = 'a'.repeat(5000) + '!'
    console.log(JSON.stringify({
      backtracking: [...backtracking.keys()],
      near: validate({ name: near }),
      valid: validate({ name: 'aaa', twice: 'zz' }),
      notTwice: validate({ twice: 'zy' }),
      nearKey: validate({ ['x-' + near]: 'not an integer' }),
      key: validate({ 'x-aaa': 'not an integer' }),
    }))`)
  assert.deepEqual(JSON.parse(out), {
    backtracking: ['^(.)\\1$'],
    near: false,
    valid: true,
    notTwice: false,
    nearKey: true, // a key the pattern does not match is not checked
    key: false,
  })
})
