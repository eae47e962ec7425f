// uniqueItems in linear time (src/config/unique-items.ts): the same verdict as ajv's own
// pairwise check on generated arrays (duplicates, objects with their keys in another order,
// 0 and -0, nesting), ajv's error shape, and a payload that took ajv half an hour rejected at
// once.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Ajv } from 'ajv'
import { payloadAjv } from '../../src/config/payload-schema.ts'
import { runInChild } from '../helpers/child-node.ts'
import { seededRandom } from '../helpers/random.ts'

const rnd = seededRandom(2024)
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!

function value (depth: number): unknown {
  const r = rnd()
  if (depth > 2 || r < 0.45) return pick([null, true, false, 0, -0, 1, 1.5, 1e21, -1, '', 'a', 'b', '0', 'null', '__proto__'])
  if (r < 0.7) return Array.from({ length: Math.floor(rnd() * 3) }, () => value(depth + 1))
  const o: Record<string, unknown> = {}
  for (const k of ['a', 'b', 'c', '__proto__'].filter(() => rnd() < 0.5).sort(() => rnd() - 0.5)) Object.defineProperty(o, k, { value: value(depth + 1), enumerable: true, writable: true, configurable: true })
  return o
}

/** An array as a payload would carry it: through JSON text, so -0, key order and __proto__ are JSON's. */
function payloadArray (): unknown[] {
  const pool = Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => value(0))
  const items = Array.from({ length: Math.floor(rnd() * 6) }, () => structuredClone(pick(pool)))
  return JSON.parse(JSON.stringify(items).replaceAll('{"a":', rnd() < 0.5 ? '{"a":' : '{ "a" :').replaceAll(':0', rnd() < 0.5 ? ':0' : ':-0')) as unknown[]
}

test('the same verdict as ajv\'s pairwise check on 20,000 generated arrays, for draft-07 and 2020-12, items typed or not', () => {
  const schemas = [{ uniqueItems: true }, { uniqueItems: false }, { items: { type: ['object', 'array', 'number', 'string', 'boolean', 'null'] }, uniqueItems: true }]
  const theirs = schemas.map((s) => new Ajv({ strict: false }).compile(s))
  const ours = schemas.flatMap((s) => [payloadAjv(undefined).compile(s), payloadAjv('https://json-schema.org/draft/2020-12/schema').compile(s)])
  let duplicates = 0
  for (let n = 0; n < 20_000; n++) {
    const data = payloadArray()
    for (let k = 0; k < schemas.length; k++) {
      const expected = theirs[k]!(data)
      if (!expected) duplicates++
      assert.equal(ours[2 * k]!(data), expected, `${JSON.stringify(schemas[k])} on ${JSON.stringify(data)}`)
      assert.equal(ours[2 * k + 1]!(data), expected, `2020-12 ${JSON.stringify(schemas[k])} on ${JSON.stringify(data)}`)
    }
  }
  assert.ok(duplicates > 2000, `the generator makes duplicates too (${duplicates})`)
})

test('a duplicate is reported as ajv reports it: keyword, message, params, where', () => {
  const validate = payloadAjv(undefined).compile({ type: 'object', properties: { tags: { type: 'array', uniqueItems: true } } })
  assert.equal(validate({ tags: [{ a: 1, b: [2] }, 'x', { b: [2], a: 1 }] }), false)
  assert.deepEqual(validate.errors?.map(({ keyword, instancePath, message, params }) => ({ keyword, instancePath, message, params })), [
    { keyword: 'uniqueItems', instancePath: '/tags', message: 'must NOT have duplicate items (items ## 0 and 2 are identical)', params: { i: 2, j: 0 } },
  ])
  assert.equal(validate({ tags: [{ a: 1 }, { a: 2 }, [1], [1, 1]] }), true)
  assert.equal(validate.errors, null)
})

test('300,000 items of a one-megabyte payload: decided at once (ajv\'s pairwise check: 19 s for 32,000, growing with the square)', async () => {
  const out = await runInChild(`
    import { payloadAjv } from './src/config/payload-schema.ts'
    const validate = payloadAjv(undefined).compile({ type: 'array', uniqueItems: true })
    const distinct = JSON.parse('[' + Array.from({ length: 300_000 }, (_, i) => '{"i":' + i + '}').join(',') + ']')
    const same = JSON.parse('[' + Array(300_000).fill('{}').join(',') + ']')
    console.log(JSON.stringify([validate(distinct), validate(same)]))`)
  assert.deepEqual(JSON.parse(out), [true, false])
})
