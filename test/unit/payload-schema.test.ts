// A bucket's payload schema (src/config/payload-schema.ts): compiled from its file, run on
// payload bytes; and how the buckets file reports a schema it cannot use (issue 14).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadBucketsFile } from '../../src/config/buckets.ts'
import { compilePayloadSchema } from '../../src/config/payload-schema.ts'
import type { ConfigProblem } from '../../src/errors.ts'
import { ConfigError } from '../../src/errors.ts'
import { makeTempDir } from '../helpers/kahets.ts'
import { decodeAll } from '../helpers/frames.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import type { Frame } from '../../src/protocol/frame.ts'

const EVENT = {
  type: 'object',
  required: ['id', 'kind', 'user'],
  properties: {
    id: { type: 'integer' },
    kind: { enum: ['click', 'view'] },
    user: { type: 'object', properties: { email: { type: 'string', pattern: '^[^@]+@[^@]+$' } } },
  },
}

async function compiled (schema: unknown, name = 'event.json') {
  const dir = await makeTempDir()
  const file = join(dir, name)
  await writeFile(file, typeof schema === 'string' ? schema : JSON.stringify(schema))
  const problems: ConfigProblem[] = []
  return { schema: compilePayloadSchema(file, '$.buckets[0].schema', problems), problems, file }
}

/** A frame as the decoder makes it, with this payload. */
const bytes = (payload: string | Buffer): Frame => decodeAll(encodeFrames([{ bucket: 'b', payload }])).frames[0]!

test('a payload passes when it is JSON that validates; else the first failure with its path', async () => {
  for (const dialect of [undefined, 'http://json-schema.org/draft-07/schema#', 'https://json-schema.org/draft/2020-12/schema', 'https://json-schema.org/draft/2019-09/schema']) {
    const { schema, problems } = await compiled({ ...(dialect === undefined ? {} : { $schema: dialect }), ...EVENT })
    assert.deepEqual(problems, [], String(dialect))
    assert.equal(schema!.check(bytes('{"id":1,"kind":"click","user":{"email":"a@b"}}')), null, String(dialect))
    assert.deepEqual(schema!.check(bytes('{"id":1,"kind":"buy","user":{}}')), { reason: 'invalid', path: '/kind', message: 'enum: must be equal to one of the allowed values' }, String(dialect))
    assert.equal(schema!.check(bytes('{"id":1,"kind":"view","user":{"email":"nope"}}'))?.path, '/user/email', String(dialect))
    assert.equal(schema!.check(bytes('{"kind":"view","user":{}}'))?.message, "required: must have required property 'id'", String(dialect))
  }
})

test('a payload that is not UTF-8 JSON is not_json: truncated, empty, text, invalid UTF-8', async () => {
  const { schema } = await compiled(true)
  assert.equal(schema!.check(bytes('"é"')), null, 'any JSON passes `true`')
  assert.equal(schema!.check(bytes('"\uFFFD is a character"')), null, 'U+FFFD itself is valid UTF-8')
  for (const payload of ['{"id":1', '', 'hello', Buffer.from([0x22, 0xff, 0x22]), Buffer.from([0x22, 0xef, 0xbf, 0xbd, 0xc3, 0x22])]) {
    assert.equal(schema!.check(bytes(payload))?.reason, 'not_json', JSON.stringify(payload.toString()))
  }
})

test('a schema file that is missing, not JSON, or does not compile is a problem at its path, naming the file', async () => {
  const missing = await compiled({})
  const problems: ConfigProblem[] = []
  assert.equal(compilePayloadSchema(join(missing.file, '..', 'nope.json'), '$.buckets[0].schema', problems), null)
  assert.equal(problems[0]!.path, '$.buckets[0].schema')
  assert.match(problems[0]!.message, /cannot read schema file .*nope\.json: ENOENT/)

  const broken = await compiled('{"type": "object",')
  assert.equal(broken.schema, null)
  assert.match(broken.problems[0]!.message, /schema file .*event\.json is not JSON/)

  const wrong = await compiled({ type: 'objekt' })
  assert.equal(wrong.schema, null)
  assert.equal(wrong.problems[0]!.path, '$.buckets[0].schema')
  assert.match(wrong.problems[0]!.message, /schema file .*event\.json does not compile: .*type/)

  const notSchema = await compiled('42')
  assert.match(notSchema.problems[0]!.message, /holds no JSON Schema/)
})

test('buckets file: schema paths are relative to its folder; deadLetter must name another stream', async () => {
  const dir = await makeTempDir()
  await mkdir(join(dir, 'schemas'))
  await writeFile(join(dir, 'schemas', 'event.json'), JSON.stringify(EVENT))
  const file = join(dir, 'buckets.json')
  const write = (bucket: object, defaultBucket?: object) => writeFile(file, JSON.stringify({
    streamsConfigs: { f: { type: 'file', settings: { path: join(dir, 'f') } }, dl: { type: 'file', settings: { path: join(dir, 'dl') } } },
    buckets: [{ id: 'a', streams: ['f'], ...bucket }],
    ...(defaultBucket === undefined ? {} : { defaultBucket: { streams: ['f'], ...defaultBucket } }),
  }))
  const problems = async (bucket: object, defaultBucket?: object) => {
    await write(bucket, defaultBucket)
    try {
      loadBucketsFile(file)
    } catch (err) {
      assert.ok(err instanceof ConfigError)
      return err.problems.map((p) => `${p.path}: ${p.message}`)
    }
    return []
  }

  await write({ schema: 'schemas/event.json', deadLetter: 'dl' }, { schema: './schemas/event.json' })
  const c = loadBucketsFile(file)
  assert.equal(c.buckets.get('a')!.schema!.file, join(dir, 'schemas', 'event.json'))
  assert.equal(c.buckets.get('a')!.deadLetter, 'dl')
  assert.equal(c.defaultBucket!.schema!.file, join(dir, 'schemas', 'event.json'))
  assert.equal(c.defaultBucket!.deadLetter, null)

  assert.deepEqual(await problems({ schema: 'event.json' }), [`$.buckets[0].schema: cannot read schema file ${join(dir, 'event.json')}: ENOENT: no such file or directory, open '${join(dir, 'event.json')}'`])
  assert.deepEqual(await problems({}, { schema: 'gone.json' }), [`$.defaultBucket.schema: cannot read schema file ${join(dir, 'gone.json')}: ENOENT: no such file or directory, open '${join(dir, 'gone.json')}'`])
  assert.deepEqual(await problems({ schema: 'schemas/event.json', deadLetter: 'nope' }), ['$.buckets[0].deadLetter: stream "nope" is not defined in streamsConfigs'])
  assert.match((await problems({ schema: 'schemas/event.json', deadLetter: 'f' }))[0]!, /^\$\.buckets\[0\]\.deadLetter: stream "f" is one of the bucket's streams/)
  assert.match((await problems({ schema: '' }))[0]!, /^\$\.buckets\[0\]\.schema: /)
  await write({ deadLetter: 'dl' })
  assert.match(loadBucketsFile(file).warnings.join('\n'), /\$\.buckets\[0\]\.deadLetter: the bucket has no schema/)
})

test('a document nested deeper than a recursive schema can follow is invalid, not a thrown RangeError', async () => {
  const dir = await makeTempDir()
  const file = join(dir, 'tree.json')
  await writeFile(file, JSON.stringify({ type: 'array', items: { $ref: '#' } }))
  const schema = compilePayloadSchema(file, 'buckets[0].schema', [])!
  assert.equal(schema.check(bytes('['.repeat(1000) + ']'.repeat(1000))), null)
  assert.deepEqual(schema.check(bytes('['.repeat(200_000) + ']'.repeat(200_000))), { reason: 'invalid', path: '', message: 'nested too deep to validate' })
})

test('payloads are read in place in their socket chunk: a cut document is not completed by the next frame', async () => {
  const { schema } = await compiled({ type: 'object', required: ['a'], properties: { a: { type: 'string' } } })
  // The first payload ends inside a string; the next frame's bytes would close it.
  const frames = decodeAll(encodeFrames([{ bucket: 'b', payload: '{"a":"x' }, { bucket: 'b', payload: '"}' }, { bucket: 'b', payload: '{"a":"x"}' }])).frames
  assert.equal(frames.length, 3)
  assert.equal(schema!.check(frames[0]!)?.reason, 'not_json')
  assert.equal(schema!.check(frames[1]!)?.reason, 'not_json')
  assert.equal(schema!.check(frames[2]!), null)
})

test('verdicts do not depend on which path decided them: many non-ASCII payloads, then ASCII ones, valid and not', async () => {
  const { schema } = await compiled({ type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', maxLength: 5 } } })
  // 600 non-ASCII payloads take the scanner out of the path for a while (PayloadSchema's
  // bypass); the answers must be the same before, during and after.
  const payloads = [
    ...Array.from({ length: 600 }, (_, i) => i % 2 === 0 ? '{"name":"zoë"}' : '{"name":"zoëzoë"}'),
    ...Array.from({ length: 20_000 }, (_, i) => ['{"name":"bob"}', '{"name":"roberta"}', '{"nom":"bob"}', '{"name":"bob"'][i % 4]!),
  ]
  const frames = decodeAll(encodeFrames(payloads.map((payload) => ({ bucket: 'b', payload })))).frames
  const seen = new Map<string, string>()
  for (let i = 0; i < frames.length; i++) {
    const failure = schema!.check(frames[i]!)
    // (JSON.parse's own words differ between Node versions.)
    const verdict = failure === null ? 'valid' : failure.reason === 'not_json' ? 'not_json' : `${failure.reason} ${failure.path} ${failure.message}`
    const before = seen.get(payloads[i]!)
    if (before === undefined) seen.set(payloads[i]!, verdict)
    else assert.equal(verdict, before, `${payloads[i]} at ${i}`)
  }
  assert.deepEqual(Object.fromEntries(seen), {
    '{"name":"zoë"}': 'valid',
    '{"name":"zoëzoë"}': 'invalid /name maxLength: must NOT have more than 5 characters',
    '{"name":"bob"}': 'valid',
    '{"name":"roberta"}': 'invalid /name maxLength: must NOT have more than 5 characters',
    '{"nom":"bob"}': "invalid  required: must have required property 'name'",
    '{"name":"bob"': 'not_json',
  })
})
