// The byte scanner of a payload schema (src/config/payload-scan.ts) against ajv itself: whatever
// the scanner calls valid, JSON.parse must parse and ajv (set up as payload-schema.ts sets it
// up) must accept. Rule by rule with payloads at each rule's edges, then on mutated documents.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isUtf8 } from 'node:buffer'
import { compileByteCheck, type ByteCheck } from '../../src/config/payload-scan.ts'
import { payloadAjv } from '../../src/config/payload-schema.ts'
import { seededRandom } from '../helpers/random.ts'

interface Judge {
  readonly scan: ByteCheck
  /** What kahets decides without the scanner: UTF-8, JSON.parse, ajv. */
  ajv (payload: Buffer): boolean
}

function judge (schema: unknown): Judge {
  const compiled = compileByteCheck(schema)
  assert.equal(compiled.reason, null, `the scanner models ${JSON.stringify(schema)}`)
  const dialect = typeof schema === 'object' && schema !== null ? (schema as { $schema?: unknown }).$schema : undefined
  const validate = payloadAjv(dialect).compile(schema as object)
  return {
    scan: compiled.check!,
    ajv (payload) {
      if (!isUtf8(payload)) return false
      try {
        return validate(JSON.parse(payload.toString('utf8')))
      } catch {
        return false
      }
    },
  }
}

/** The scanner's verdict on `payload` in the middle of other bytes (as in a socket chunk), checked against ajv. */
function verdict (j: Judge, payload: string | Buffer): boolean {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload
  // Bytes either side that would complete or extend a cut document: the scanner must stop at `end`.
  const chunk = Buffer.concat([Buffer.from('{"x":['), bytes, Buffer.from('"]}]}')])
  const scanned = j.scan(chunk, 6, 6 + bytes.length)
  if (scanned) assert.ok(j.ajv(bytes), `the scanner called ${JSON.stringify(bytes.toString('latin1'))} valid; ajv does not`)
  return scanned
}

interface Case {
  readonly rule: string
  readonly schema: unknown
  /** Valid, and decided by the scanner alone. */
  readonly decided: readonly (string | Buffer)[]
  /** Left to JSON.parse and ajv: invalid, or valid in a way the scanner does not read. */
  readonly undecided: readonly (string | Buffer)[]
  /** Of `undecided`, the ones ajv accepts (the rest must be invalid). */
  readonly validUndecided?: readonly (string | Buffer)[]
}

const CASES: readonly Case[] = [
  {
    rule: 'integer',
    schema: { type: 'integer' },
    decided: ['0', '-0', '7', '123456789012345', '1234567890123456789', '1.0', '1e2', '2.5e1', '-5', '1E+2', '1e400'],
    undecided: ['1.5', '"1"', 'true', 'null', '{}', '[]', '01', '1.', '.5', '-', '+1', '1e', '1e+', 'Infinity', 'NaN', '0x10', '1 2', '- 1', ''],
  },
  {
    rule: 'number with bounds',
    schema: { type: 'number', minimum: -1.5, maximum: 100, exclusiveMaximum: 100.5 },
    decided: ['-1.5', '0', '99.99', '100', '1e2', '-0.0', '-15e-1'],
    undecided: ['-1.51', '100.1', '1e3', '"5"', '-1e400'],
  },
  {
    rule: 'minimum 0 (read from the sign alone)',
    schema: { type: 'integer', minimum: 0 },
    decided: ['0', '-0', '1764480000123', '99999999999999999999'],
    undecided: ['-1', '-1764480000123', '0.5'],
  },
  {
    rule: 'exclusive bounds',
    schema: { exclusiveMinimum: 0, exclusiveMaximum: 10 },
    decided: ['1', '9.999', '"any string"', 'null'],
    undecided: ['0', '10', '-0', '1e1'],
  },
  {
    rule: 'string lengths',
    schema: { type: 'string', minLength: 2, maxLength: 4 },
    decided: ['"ab"', '"abcd"', '"a\x7fb"', '" \t"'.replace('\t', ' ')],
    undecided: ['"a"', '"abcde"', '"a\\u0062"', '"é!"', '"a\tb"', '"ab', 'ab"', '"a"b"'],
    validUndecided: ['"a\\u0062"', '"é!"'],
  },
  {
    rule: 'pattern (compiled with the u flag, as ajv does)',
    schema: { type: 'string', pattern: '^\\p{Lu}[0-9]{2}$' },
    decided: ['"A12"', '"Z00"'],
    undecided: ['"a12"', '"A1"', '"A123"', '"\\u0041\\u0031\\u0032"', '12'],
    validUndecided: ['"\\u0041\\u0031\\u0032"'],
  },
  {
    rule: 'long strings (read four bytes at a time)',
    schema: { type: 'string', maxLength: 1000 },
    decided: [`"${'x'.repeat(1000)}"`, `"${'ab'.repeat(37)}"`, `"${'a'.repeat(17)}"`, `"${'a'.repeat(16)}"`, `"${'a'.repeat(15)}"`],
    undecided: [`"${'x'.repeat(1001)}"`, `"${'x'.repeat(40)}\\n${'x'.repeat(40)}"`, `"${'x'.repeat(40)}é${'x'.repeat(40)}"`, `"${'x'.repeat(40)}\x00${'x'.repeat(40)}"`, `"${'x'.repeat(40)}`, Buffer.from(`"${'x'.repeat(40)}\xff${'x'.repeat(40)}"`, 'latin1')],
    validUndecided: [`"${'x'.repeat(40)}\\n${'x'.repeat(40)}"`, `"${'x'.repeat(40)}é${'x'.repeat(40)}"`],
  },
  {
    rule: 'enum of strings',
    schema: { enum: ['click', 'view', 'buy', 'déjà', 'a"b'] },
    decided: ['"click"', '"view"', '"buy"'],
    undecided: ['"clicks"', '"cli"', '"Click"', '"\\u0063lick"', '"déjà"', '"a\\"b"', 'click', '"click'],
    validUndecided: ['"\\u0063lick"', '"déjà"', '"a\\"b"'],
  },
  {
    rule: 'enum of mixed values and const',
    schema: { enum: [1, 'a', null, true], const: 1 },
    decided: ['1', '1.0', '1e0'],
    undecided: ['"a"', 'null', 'true', '2', 'false'],
  },
  {
    rule: 'enum without const',
    schema: { enum: [1, 'a', null, true, -0] },
    decided: ['1', '"a"', 'null', 'true', '0', '-0', '0.0'],
    undecided: ['false', '2', '"b"', 'nul', 'truex'],
  },
  {
    rule: 'several types',
    schema: { type: ['string', 'null', 'integer'], maxLength: 1, maximum: 5 },
    decided: ['"a"', 'null', '5', '3.0'],
    undecided: ['"ab"', '6', '3.5', 'true', '{}'],
  },
  {
    rule: 'required and additionalProperties false',
    schema: { type: 'object', required: ['a'], additionalProperties: false, properties: { a: { type: 'integer' }, b: { type: 'string' } } },
    decided: ['{"a":1}', ' \t\r\n{ "a" : 1 , "b" : "x" }\n ', '{"b":"x","a":1}', '{"a":1,"a":2}'],
    undecided: ['{"a":"x","a":1}', '{"a":1,"c":2}', '{}', '{"b":"x"}', '{"a":1,}', '{"a":1}x', '{"a":1}{}', '{"a":1', '{a:1}', '{"a" 1}', '{"a":1 "b":"x"}',
      '\ufeff{"a":1}', '{"\\u0061":1}', '[{"a":1}]', '{"a":1,"__proto__":2}', '{"a":1,"b":"x","b":2}', '{""":1}', '{"a"":1}'],
    validUndecided: ['{"a":"x","a":1}', '{"\\u0061":1}'],
  },
  {
    rule: 'additional properties allowed, or by a schema',
    schema: { properties: { a: { type: 'integer' } }, required: ['x'], additionalProperties: { type: ['integer', 'object'] } },
    decided: ['{"x":1}', '{"x":{"deep":[1,{"y":null}]},"a":2,"z":3}', '"not an object: the object rules do not apply"', '[1]'],
    undecided: ['{"x":"s"}', '{"a":1}', '{"x":1,"a":1.5}', '{"x":1,"z":"s"}'],
  },
  {
    rule: 'nested objects and arrays',
    schema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: {
        tags: { type: 'array', items: { type: 'string', maxLength: 3 }, minItems: 1, maxItems: 3 },
        ctx: { type: 'object', required: ['ip'], properties: { ip: { type: 'string', pattern: '^[0-9.]+$' } } },
        any: true,
      },
    },
    decided: ['{}', '{"tags":["a","bc"]}', '{"ctx":{"ip":"10.0.0.1","more":[1,2]}}', '{"any":[[[{"k":[]}]]],"tags":["x"]}', '{ "tags" : [ "a" , "b" , "c" ] }'],
    undecided: ['{"tags":[]}', '{"tags":["a","b","c","d"]}', '{"tags":["abcd"]}', '{"tags":[1]}', '{"ctx":{}}', '{"ctx":{"ip":"x"}}', '{"tags":["a",]}', '{"tags":["a" "b"]}', '{"tags":["a"}'],
  },
  {
    rule: 'true: any JSON, nested to 64 levels',
    schema: true,
    decided: ['0', '"s"', '[]', '{}', '[{"a":[true,false,null,-1.5e3,"x"]}]', '['.repeat(64) + ']'.repeat(64)],
    undecided: ['['.repeat(65) + ']'.repeat(65), '[1,]', '{"a":1,}', '[', ']', 'tru', 'nul', 'fals', '"\\ud800"', ' ', ''],
    validUndecided: ['['.repeat(65) + ']'.repeat(65), '"\\ud800"'],
  },
]

for (const c of CASES) {
  test(`scanner: ${c.rule}`, () => {
    const j = judge(c.schema)
    for (const p of c.decided) {
      assert.ok(j.ajv(Buffer.from(p)), `the case table: ajv accepts ${JSON.stringify(p)}`)
      assert.equal(verdict(j, p), true, `decided alone: ${JSON.stringify(p)}`)
    }
    for (const p of c.undecided) {
      const bytes = typeof p === 'string' ? Buffer.from(p, 'utf8') : p
      assert.equal(verdict(j, bytes), false, `left to ajv: ${JSON.stringify(bytes.toString('latin1'))}`)
      const valid = (c.validUndecided ?? []).includes(p)
      assert.equal(j.ajv(bytes), valid, `the case table: ajv ${valid ? 'accepts' : 'refuses'} ${JSON.stringify(bytes.toString('latin1'))}`)
    }
  })
}

test('scanner: schemas outside what it models are named with the keyword and where it is', () => {
  const cases: ReadonlyArray<[unknown, string]> = [
    [{ allOf: [{ type: 'string' }] }, 'the keyword allOf at /allOf'],
    [{ properties: { a: { $ref: '#/definitions/x' } }, definitions: { x: true } }, 'the keyword $ref at /properties/a/$ref'],
    [{ type: 'object', minProperties: 1 }, 'the keyword minProperties at /minProperties'],
    [{ patternProperties: { '^a': true } }, 'the keyword patternProperties at /patternProperties'],
    [{ type: 'number', multipleOf: 2 }, 'the keyword multipleOf at /multipleOf'],
    [{ items: [{ type: 'string' }] }, 'items as a list (tuples) at /items'],
    [{ enum: [{ a: 1 }] }, 'an enum of objects or arrays at /enum'],
    [{ properties: { constructor: { type: 'string' } } }, 'the property name constructor at /properties'],
    [{ required: ['toString'] }, 'the property name toString at /properties'],
    [{ type: 'object', nullable: true }, 'the keyword nullable at /nullable'],
    [false, 'a schema that is not an object or true at /'],
    [{ properties: { a: false } }, 'a schema that is not an object or true at /properties/a'],
  ]
  for (const [schema, reason] of cases) assert.deepEqual(compileByteCheck(schema), { check: null, reason }, JSON.stringify(schema))
  // Annotations and x- keywords do not stop it.
  assert.equal(compileByteCheck({ $schema: 'http://json-schema.org/draft-07/schema#', title: 't', description: 'd', format: 'email', examples: [], 'x-owner': 'team', type: 'string' }).reason, null)
})

// ---------------------------------------------------------------------------- mutated documents

// Bytes that change what a document means: structure, number and literal letters, escapes,
// controls, DEL, and the start of UTF-8 sequences (valid or not).
const INTERESTING = Buffer.from('"\\{}[],: \t\n0159-+.eEtrufalsn'.split('').map((c) => c.charCodeAt(0)).concat([0x00, 0x1f, 0x7f, 0x80, 0xc3, 0xa9, 0xff, 0xef, 0xbb, 0xbf]))

function mutate (doc: Buffer, rnd: () => number): Buffer {
  const at = Math.floor(rnd() * (doc.length + 1))
  const byte = INTERESTING[Math.floor(rnd() * INTERESTING.length)]!
  switch (Math.floor(rnd() * 5)) {
    case 0: return Buffer.concat([doc.subarray(0, at), Buffer.of(byte), doc.subarray(at + 1)])
    case 1: return Buffer.concat([doc.subarray(0, at), Buffer.of(byte), doc.subarray(at)])
    case 2: return Buffer.concat([doc.subarray(0, at), doc.subarray(at + 1)])
    case 3: {
      const from = Math.floor(rnd() * doc.length)
      return Buffer.concat([doc.subarray(0, at), doc.subarray(from, from + 1 + Math.floor(rnd() * 8)), doc.subarray(at)])
    }
    default: return doc.subarray(0, at)
  }
}

const FUZZED: ReadonlyArray<{ schema: unknown, seeds: readonly unknown[] }> = [
  {
    // bench/event.schema.json's shape: 5 fields, one enum, one pattern.
    schema: {
      type: 'object',
      required: ['id', 'kind', 'user', 'ts', 'page'],
      additionalProperties: false,
      properties: {
        id: { type: 'integer', minimum: 0 },
        kind: { enum: ['click', 'view', 'buy'] },
        user: { type: 'string', pattern: '^u-[0-9]{7}$' },
        ts: { type: 'integer', minimum: 0 },
        page: { type: 'string' },
      },
    },
    seeds: [{ id: 1000123, kind: 'click', user: 'u-0000123', ts: 1764480000123, page: '/ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ' }, { id: 0, kind: 'buy', user: 'u-9999999', ts: 0, page: '' }],
  },
  {
    schema: {
      type: 'object',
      required: ['n'],
      properties: {
        n: { type: ['number', 'null'], minimum: -10, exclusiveMaximum: 10 },
        s: { type: 'string', minLength: 1, maxLength: 20 },
        b: { type: 'boolean' },
        e: { enum: [1, 'one', null, false] },
        list: { type: 'array', items: { type: 'object', properties: { k: { const: 'v' } } }, maxItems: 2 },
      },
    },
    seeds: [{ n: 1.5, s: 'abc', b: true, e: 'one', list: [{ k: 'v' }, {}] }, { n: null, e: 1, list: [] }, { n: -10, s: 'x'.repeat(20), e: false }],
  },
  {
    schema: true,
    seeds: [[1, -2.5e-3, 'x', true, false, null, { a: { b: [{}] } }], 'text', 0],
  },
]

test('scanner: on mutated documents it calls valid only what ajv accepts, and decides many of them', () => {
  const rnd = seededRandom(14)
  for (const { schema, seeds } of FUZZED) {
    const j = judge(schema)
    let decided = 0
    let valid = 0
    const rounds = 6000
    for (let n = 0; n < rounds; n++) {
      let doc: Buffer = Buffer.from(JSON.stringify(seeds[n % seeds.length], null, n % 3 === 0 ? 1 : undefined))
      for (let m = 1 + Math.floor(rnd() * 3); m > 0; m--) doc = mutate(doc, rnd)
      if (verdict(j, doc)) decided++
      if (j.ajv(doc)) valid++
    }
    // What ajv accepts among mutants is mostly what the scanner decided (the rest: escapes,
    // non-ASCII, numbers with leading bytes the mutation made valid in another way).
    assert.ok(decided > rounds / 50, `the mutants exercise the scanner's "valid" (${decided} of ${rounds})`)
    assert.ok(decided >= valid * 0.6, `the scanner decides most of what ajv accepts (${decided} of ${valid})`)
  }
})

test('scanner: a quote, escape, control or non-ASCII byte is found at every place of a long string, whatever its alignment in memory', () => {
  const j = judge({ type: 'string' })
  const specials = ['"', '\\', '\x01', '\x1f', '\x80', '\xff']
  for (let shift = 0; shift < 8; shift++) {
    for (let length = 30; length <= 72; length += 7) {
      const text = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(3).slice(0, length)
      // The payload starts `shift` bytes into a buffer of its own, so its words fall differently.
      const place = (payload: Buffer): Buffer => Buffer.concat([Buffer.alloc(shift, 0x22), payload]).subarray(shift)
      assert.equal(j.scan(place(Buffer.from(`"${text}"`)), 0, length + 2), true, `${length} plain bytes, shift ${shift}`)
      for (let at = 0; at < length; at++) {
        for (const s of specials) {
          const payload = place(Buffer.from(`"${text.slice(0, at)}${s}${text.slice(at + 1)}"`, 'latin1'))
          assert.equal(j.scan(payload, 0, payload.length), false, `${JSON.stringify(s)} at ${at} of ${length}, shift ${shift}`)
        }
      }
    }
  }
})
