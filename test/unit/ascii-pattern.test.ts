// Schema patterns matched on bytes (src/config/ascii-pattern.ts) against RegExp with the u flag,
// as ajv compiles them: the same answer on every ASCII string tried, and null for patterns the
// byte matcher does not model.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compileBytePattern } from '../../src/config/ascii-pattern.ts'
import { seededRandom } from '../helpers/random.ts'

const MODELLED: ReadonlyArray<[pattern: string, matching: readonly string[]]> = [
  ['^u-[0-9]{7}$', ['u-0000123']],
  ['^[0-9]{4}-[0-9]{2}-[0-9]{2}$', ['2026-11-30']],
  ['^[a-z0-9_-]+$', ['a', 'a_b-9']],
  ['^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', ['0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0']],
  ['^[A-Z]{2,3}$', ['FR', 'USA']],
  ['^\\d+$', ['12']],
  ['^\\w{1,}@\\w+\\.[a-z]{2,}$', ['a_1@host.io']],
  ['^[^\\s@]+$', ['abc', 'a.b']],
  ['^v\\d+\\.\\d+\\.\\d+$', ['v1.22.333']],
  ['^a?b?c*$', ['', 'a', 'ab', 'abccc', 'c']],
  ['^x{0}y{2,}z?$', ['yy', 'yyyz']],
  ['^.{3}$', ['abc', '...']],
  ['^[\\]\\-\\\\a]+$', [']-\\a']],
  ['^[-a]b[a-]$', ['-b-', 'aba']],
  ['^\\/path\\/[^/]+$', ['/path/x']],
  ['^\\s*$', ['', '   ']],
  ['^$', ['']],
  ['^[\\t ]+x$', ['\t x']],
]

test('modelled patterns give RegExp\'s answer on strings near and far from a match', () => {
  const rnd = seededRandom(7)
  for (const [pattern, matching] of MODELLED) {
    const bytes = compileBytePattern(pattern)
    assert.notEqual(bytes, null, `${pattern} is modelled`)
    const regExp = new RegExp(pattern, 'u')
    // The characters the pattern names, a few it does not, and the ends of ASCII.
    const alphabet = [...new Set([...pattern.replace(/[\\^$]/g, ''), 'a', 'Z', '5', ' ', '\t', '-', '.', '@', '_', '\x7f', '\x20'])]
    const tries: string[] = [...matching]
    for (const m of matching) {
      for (let k = 0; k <= m.length; k++) {
        tries.push(m.slice(0, k), m.slice(0, k) + m.slice(k + 1), m.slice(0, k) + m[k - 1] + m.slice(k))
        for (const c of alphabet) tries.push(m.slice(0, k) + c + m.slice(k + 1))
      }
    }
    for (let n = 0; n < 3000; n++) {
      const length = Math.floor(rnd() * 14)
      let s = ''
      for (let k = 0; k < length; k++) s += alphabet[Math.floor(rnd() * alphabet.length)]
      tries.push(s)
    }
    for (const s of tries) {
      const chunk = Buffer.from(`"${s}"+tail`, 'latin1')
      assert.equal(bytes!(chunk, 1, 1 + s.length), regExp.test(s), `${pattern} on ${JSON.stringify(s)}`)
    }
    for (const m of matching) assert.equal(bytes!(Buffer.from(m, 'latin1'), 0, m.length), true, `${pattern} matches ${JSON.stringify(m)}`)
  }
})

test('patterns outside the model are left to RegExp', () => {
  for (const pattern of [
    'u-[0-9]{7}', // not anchored: "contains"
    '^u-[0-9]{7}', '[0-9]$', '^a\\$',
    '^(ab)+$', '^a|b$', '^(?=a)a$', '^(a)\\1$', // groups, alternatives, lookaheads, back-references
    '^a+?$', '^a*a$', '^[a-z]+[a-c]$', '^a?b?a$', '^\\d{2,4}\\d$', // lazy, or not matched greedily
    '^é+$', '^[à-ü]$', '^\\p{Lu}$', '^\\u0041$', '^\\x41$', '^\\bx$', '^\\0$', // beyond ASCII, or escapes not modelled
    '^[]$', '^[^]$', '^a{2$', '^a{,2}$', '^a{3,2}$', '^a**$', '^{$', '^]$',
  ]) {
    assert.equal(compileBytePattern(pattern), null, pattern)
  }
})
