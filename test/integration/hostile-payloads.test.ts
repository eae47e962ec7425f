// Hostile keys and payloads against a bucket's payload schema and a keyed slice (issue 14;
// docs/configuration.md#payload-schemas, #slices-by-key): JSON nested deeper than any stack,
// a recursive schema walking it, 1 MiB payloads, whitespace, a BOM, bytes that are not
// UTF-8, keys of 0, 255 and binary bytes. Each ends where the docs say (its stream, or the
// dead-letter stream counted by reason), and kahets keeps serving.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { createConnection } from 'node:net'
import { once } from 'node:events'
import { encodeFrames, type OutgoingMessage } from '../../src/protocol/encoder.ts'
import { makeTempDir, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

// A tree of arrays: ajv follows the $ref once per level. The $ref also keeps the byte
// scanner out (docs/configuration.md#how-a-payload-is-checked): every payload goes through ajv.
const SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'integer' }, tree: { $ref: '#/$defs/node' } },
  $defs: { node: { type: 'array', items: { $ref: '#/$defs/node' } } },
}

// What the byte scanner models: valid payloads are decided on their bytes, the rest by ajv.
const FLAT_SCHEMA = { type: 'object', required: ['id'], properties: { id: { type: 'integer' } } }

const nested = (depth: number, open: string, close: string, inner = ''): string => open.repeat(depth) + inner + close.repeat(depth)

interface Case {
  name: string
  payload: Buffer
  lands: 'main' | 'dlq'
  reason?: 'not_json' | 'invalid'
  /** Where it lands under FLAT_SCHEMA when not where it does under SCHEMA. */
  flat?: 'main'
}

const CASES: Case[] = [
  { name: 'valid', payload: Buffer.from('{"id":1}'), lands: 'main' },
  { name: 'tree 1,000 deep', payload: Buffer.from(`{"id":2,"tree":${nested(1000, '[', ']')}}`), lands: 'main' },
  // Deeper than ajv's recursion can follow: rejected as invalid ("nested too deep to validate").
  { name: 'tree 100,000 deep', payload: Buffer.from(`{"id":2,"tree":${nested(100_000, '[', ']')}}`), lands: 'dlq', reason: 'invalid', flat: 'main' },
  { name: 'tree 100,000 deep, a leaf not an array', payload: Buffer.from(`{"id":3,"tree":${nested(100_000, '[', ']', '7')}}`), lands: 'dlq', reason: 'invalid', flat: 'main' },
  { name: 'unchecked member 400,000 deep', payload: Buffer.from(`{"id":4,"x":${nested(400_000, '[', ']')}}`), lands: 'main' },
  { name: 'objects 100,000 deep', payload: Buffer.from(`{"id":5,"x":${nested(100_000, '{"a":', '}', '1')}}`), lands: 'main' },
  { name: 'arrays 500,000 deep, no object', payload: Buffer.from(nested(500_000, '[', ']')), lands: 'dlq', reason: 'invalid' },
  { name: 'unclosed 500,000 deep', payload: Buffer.from('['.repeat(500_000)), lands: 'dlq', reason: 'not_json' },
  { name: '1 MiB valid', payload: Buffer.from(`{"id":6,"pad":"${'x'.repeat(1024 * 1024)}"}`), lands: 'main' },
  { name: '1 MiB invalid', payload: Buffer.from(`{"id":"7","pad":"${'x'.repeat(1024 * 1024)}"}`), lands: 'dlq', reason: 'invalid' },
  { name: 'empty', payload: Buffer.alloc(0), lands: 'dlq', reason: 'not_json' },
  { name: 'whitespace only', payload: Buffer.from(' \n\t\r  '), lands: 'dlq', reason: 'not_json' },
  // RFC 8259 §8.1: a JSON text has no BOM; kahets does not strip one.
  { name: 'a BOM before valid JSON', payload: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"id":8}')]), lands: 'dlq', reason: 'not_json' },
  { name: 'not UTF-8 inside a string', payload: Buffer.concat([Buffer.from('{"id":9,"s":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]), lands: 'dlq', reason: 'not_json' },
  { name: 'a lone surrogate escape (valid JSON)', payload: Buffer.from('{"id":10,"s":"\\ud800"}'), lands: 'main' },
  { name: 'a U+FFFD written as UTF-8 (valid)', payload: Buffer.from('{"id":11,"s":"\uFFFD"}'), lands: 'main' },
  { name: 'a NUL after the document', payload: Buffer.from('{"id":12}\u0000'), lands: 'dlq', reason: 'not_json' },
  { name: 'whitespace around valid JSON', payload: Buffer.from('\n {"id":13} \n'), lands: 'main' },
  { name: '__proto__ member', payload: Buffer.from('{"id":14,"__proto__":{"id":"x"}}'), lands: 'main' },
]

const KEYS: Array<Buffer | null> = [
  null,
  Buffer.alloc(255, 0xff),
  Buffer.from([0, 0, 0]),
  Buffer.from([0xc3, 0x28, 0xa0, 0xa1]), // not UTF-8
  Buffer.from('k'),
  Buffer.alloc(255, 'a'),
]

test('hostile payloads and keys, every payload through ajv: each lands where the docs say, counted; kahets keeps serving', { timeout: 180_000 }, async () => {
  await hostile(SCHEMA, (c) => c)
})

test('hostile payloads and keys, the byte scanner first: each lands where the docs say, counted; kahets keeps serving', { timeout: 180_000 }, async () => {
  await hostile(FLAT_SCHEMA, (c) => c.flat === undefined ? c : { ...c, lands: c.flat, reason: undefined })
})

async function hostile (schema: object, under: (c: Case) => Case): Promise<void> {
  const cases = CASES.map(under)
  const dir = await makeTempDir()
  await mkdir(join(dir, 'schemas'))
  await writeFile(join(dir, 'schemas', 'event.json'), JSON.stringify(schema))
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: {
        main: { type: 'file', settings: { path: '{dir}/main' } },
        copy: { type: 'file', slice: 0.5, sliceBy: 'key', settings: { path: '{dir}/copy' } },
        dlq: { type: 'file', settings: { path: '{dir}/dlq' } },
      },
      buckets: [{ id: 'events', streams: ['main', 'copy'], batch: 20, batchTimeout: 20, schema: 'schemas/event.json', deadLetter: 'dlq' }],
    },
    env: { MAX_FRAME_BYTES: '4MB' },
  })
  const base = k.metrics

  const msgs: Array<OutgoingMessage & { c: Case, i: number }> = []
  for (const [ci, c] of cases.entries()) {
    for (const [ki, key] of KEYS.entries()) msgs.push({ bucket: 'events', key, payload: c.payload, c, i: ci * KEYS.length + ki })
  }
  // One connection, every message in one write and one message per write.
  for (const whole of [true, false]) {
    const s = createConnection(k.socket)
    await once(s, 'connect')
    if (whole) s.write(encodeFrames(msgs))
    else for (const m of msgs) s.write(encodeFrames([m]))
    s.end()
    await once(s, 'close')
  }
  const total = msgs.length * 2
  const m = await waitFor(async () => {
    const s = await scrape(base)
    if (sample(s, 'kahets_received_total', { bucket: 'events' }) !== total) return null
    return ['main', 'copy', 'dlq'].every((stream) => sample(s, 'kahets_in_flight', { bucket: 'events', stream }) === 0) ? s : null
  }, { timeoutMs: 60_000, what: `${total} received and settled` })
  for (const stream of ['main', 'copy', 'dlq']) assertIdentity(m, 'events', stream)

  const expectMain = cases.filter((c) => c.lands === 'main')
  const byReason = (r: string): number => cases.filter((c) => c.reason === r).length * KEYS.length * 2
  assert.equal(sample(m, 'kahets_schema_rejected_total', { bucket: 'events', reason: 'not_json' }), byReason('not_json'))
  assert.equal(sample(m, 'kahets_schema_rejected_total', { bucket: 'events', reason: 'invalid' }), byReason('invalid'))
  assert.equal(sample(m, 'kahets_delivered_total', { bucket: 'events', stream: 'main' }), expectMain.length * KEYS.length * 2)
  assert.equal(k.proc.exitCode, null, 'kahets is running')

  const tag = (payload: Buffer): string => cases.find((c) => c.payload.equals(payload))?.name ?? `unknown payload of ${payload.length} bytes`
  const landed = async (stream: string): Promise<Array<{ name: string, key: Buffer | null }>> =>
    (await readFrameFiles(join(dir, stream))).flatMap((f) => f.frames.map((x) => ({ name: tag(x.payload), key: x.keyLength > 0 ? Buffer.from(x.key!) : null })))
  const main = await landed('main')
  const dlq = await landed('dlq')
  const copy = await landed('copy')
  const count = (list: Array<{ name: string }>, name: string): number => list.filter((x) => x.name === name).length
  for (const c of cases) {
    assert.equal(count(main, c.name), c.lands === 'main' ? KEYS.length * 2 : 0, `${c.name} in main`)
    assert.equal(count(dlq, c.name), c.lands === 'dlq' ? KEYS.length * 2 : 0, `${c.name} in the dead-letter stream, unchanged`)
  }
  // Keyed slice: a keyed message is in the copy exactly when crc32(key) / 2^32 < 0.5.
  for (const c of expectMain) {
    for (const key of KEYS) {
      if (key === null) continue
      const n = copy.filter((x) => x.name === c.name && x.key !== null && x.key.equals(key)).length
      assert.equal(n, crc32(key) / 2 ** 32 < 0.5 ? 2 : 0, `${c.name} with key ${key.toString('hex').slice(0, 16)} in the copy`)
    }
  }

  // Still serving: one more valid message lands.
  const s = createConnection(k.socket)
  await once(s, 'connect')
  s.end(encodeFrames([{ bucket: 'events', key: null, payload: '{"id":99}' }]))
  await waitFor(async () => sample(await scrape(base), 'kahets_delivered_total', { bucket: 'events', stream: 'main' }) === expectMain.length * KEYS.length * 2 + 1, { timeoutMs: 20_000, what: 'a message after the hostile ones' })
  // The first rejection of each kind is logged: under SCHEMA the first 'invalid' sent is the
  // deep tree; under FLAT_SCHEMA, an array where an object belongs.
  const invalid = k.logs().find((l) => l.msg === 'payload does not match the bucket\'s schema')
  assert.equal(invalid?.error, schema === SCHEMA ? 'nested too deep to validate' : 'type: must be object')
  const how = k.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('payload schema '))?.msg
  assert.match(String(how), schema === SCHEMA ? /every payload parsed and validated by ajv/ : /payloads checked on their bytes/)
  assert.ok(!k.logs().some((l) => l.msg === 'actor failed; resuming it'), 'no actor failed')
  assert.equal(await k.stop(), 0, k.output().slice(-3000))
}
