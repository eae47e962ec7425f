// Per-bucket payload schemas and the dead-letter stream on the real process (issue 14): what
// lands where, how it is counted, a SIGHUP that swaps the schema, check-config's report.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { AckClient, KahetsClient } from '../../clients/node/index.ts'
import { BIN, type KahetsProcess, makeTempDir, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { assertIdentity, sample, scrape, type Samples } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

const execFileP = promisify(execFile)

const EVENT_V1 = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['id', 'kind'],
  properties: { id: { type: 'integer' }, kind: { enum: ['click', 'view'] } },
}
const EVENT_V2 = { ...EVENT_V1, properties: { ...EVENT_V1.properties, kind: { enum: ['click', 'view', 'buy'] } } }

const config = (deadLetter: boolean) => ({
  streamsConfigs: {
    main: { type: 'file', settings: { path: '{dir}/main' } },
    ...(deadLetter ? { dlq: { type: 'file', settings: { path: '{dir}/dlq' } } } : {}),
  },
  buckets: [{ id: 'events', streams: ['main'], batch: 50, batchTimeout: 20, schema: 'schemas/event.json', ...(deadLetter ? { deadLetter: 'dlq' } : {}) }],
})

async function start (deadLetter: boolean): Promise<{ k: KahetsProcess, base: string }> {
  const dir = await makeTempDir()
  await mkdir(join(dir, 'schemas'))
  await writeFile(join(dir, 'schemas', 'event.json'), JSON.stringify(EVENT_V1))
  const k = await startKahetsWithMetrics({ buckets: config(deadLetter), dir })
  return { k, base: k.metrics }
}

/** 300 messages: every 10th not JSON, every 10th+1 with a kind outside the enum, the rest valid. */
function messages (from = 0, n = 300): string[] {
  return Array.from({ length: n }, (_, j) => {
    const i = from + j
    if (i % 10 === 0) return `not json ${i}`
    if (i % 10 === 1) return JSON.stringify({ id: i, kind: 'buy' })
    return JSON.stringify({ id: i, kind: 'click' })
  })
}

async function send (socket: string, payloads: string[]): Promise<void> {
  const c = await KahetsClient.connect(socket)
  for (const p of payloads) c.send('events', p)
  await c.close()
}

/** `timeoutMs` bounds the wait and each scrape: a kahets busy in one payload answers none. */
async function settled (base: string, received: number, streams: string[], timeoutMs = 10_000): Promise<Samples> {
  const signal = AbortSignal.timeout(timeoutMs)
  return await waitFor(async () => {
    const s = await scrape(base, signal)
    if (sample(s, 'kahets_received_total', { bucket: 'events' }) !== received) return null
    return streams.every((stream) => sample(s, 'kahets_in_flight', { bucket: 'events', stream }) === 0) ? s : null
  }, { what: `${received} received and settled`, timeoutMs })
}

async function payloads (dir: string): Promise<string[]> {
  return (await readFrameFiles(dir)).flatMap((f) => f.frames.map((x) => x.payload.toString()))
}

test('schema with a file deadLetter: valid payloads to the bucket\'s stream, rejected ones unchanged to the dead-letter stream, counted', async () => {
  const { k, base } = await start(true)
  const sent = messages()
  await send(k.socket, sent)
  const m = await settled(base, 300, ['main', 'dlq'])
  assert.equal(sample(m, 'kahets_schema_rejected_total', { bucket: 'events', reason: 'not_json' }), 30)
  assert.equal(sample(m, 'kahets_schema_rejected_total', { bucket: 'events', reason: 'invalid' }), 30)
  const main = assertIdentity(m, 'events', 'main')
  const dlq = assertIdentity(m, 'events', 'dlq')
  assert.deepEqual(main, { received: 300, delivered: 240, sampledOut: 0, backedUp: 0, dropped: 60, inFlight: 0 })
  assert.equal(sample(m, 'kahets_dropped_total', { bucket: 'events', stream: 'main', reason: 'schema_rejected' }), 60)
  assert.deepEqual(dlq, { received: 60, delivered: 60, sampledOut: 0, backedUp: 0, dropped: 0, inFlight: 0 })

  const logs = k.logs()
  const invalid = logs.filter((l) => l.msg === 'payload does not match the bucket\'s schema')
  const notJson = logs.filter((l) => l.msg === 'payload is not JSON')
  assert.equal(invalid.length, 1, 'the first failure of each kind is logged; the rest are held back')
  assert.equal(notJson.length, 1)
  assert.deepEqual({ bucket: invalid[0]!.bucket, path: invalid[0]!.path, deadLetter: invalid[0]!.deadLetter }, { bucket: 'events', path: '$.kind', deadLetter: 'dlq' })
  assert.ok(logs.some((l) => l.msg === `payload schema ${join(k.dir, 'schemas', 'event.json')} (bucket events): payloads checked on their bytes (JSON.parse and ajv only for the rest)`), 'the start says how payloads are checked')
  assert.equal(await k.stop(), 0, k.output())

  assert.deepEqual(await payloads(join(k.dir, 'main')), sent.filter((_, i) => i % 10 > 1))
  assert.deepEqual(await payloads(join(k.dir, 'dlq')), sent.filter((_, i) => i % 10 <= 1), 'unchanged, in order')
})

test('schema without deadLetter: rejected payloads are dropped and counted', async () => {
  const { k, base } = await start(false)
  const sent = messages()
  await send(k.socket, sent)
  const m = await settled(base, 300, ['main'])
  assert.equal(sample(m, 'kahets_schema_rejected_total', { bucket: 'events', reason: 'not_json' }), 30)
  assert.equal(sample(m, 'kahets_schema_rejected_total', { bucket: 'events', reason: 'invalid' }), 30)
  assert.deepEqual(assertIdentity(m, 'events', 'main'), { received: 300, delivered: 240, sampledOut: 0, backedUp: 0, dropped: 60, inFlight: 0 })
  assert.equal(sample(m, 'kahets_dropped_total', { bucket: 'events', stream: 'main', reason: 'schema_rejected' }), 60)
  assert.equal(await k.stop(), 0, k.output())
  assert.deepEqual(await payloads(join(k.dir, 'main')), sent.filter((_, i) => i % 10 > 1))
})

test('acknowledged mode: rejected payloads are refused with their reason, also when dead-lettered; durable settles once the dead-letter file has them', async () => {
  const { k, base } = await start(true)
  const client = await AckClient.connect(k.socket, { ack: 'durable' })
  client.send('events', JSON.stringify({ id: 1, kind: 'view' }))
  client.send('events', 'oops')
  client.send('events', JSON.stringify({ id: 3, kind: 'view' }))
  const s = await client.flush(10_000)
  assert.deepEqual({ settled: s.settled, refused: s.refused }, { settled: 3, refused: 1 })
  assert.deepEqual(client.lastRefusal, { index: 1, reason: 'not_json' })
  await client.close()
  const m = await settled(base, 3, ['main', 'dlq'])
  assertIdentity(m, 'events', 'main')
  assert.equal(assertIdentity(m, 'events', 'dlq').delivered, 1)
  assert.deepEqual(await payloads(join(k.dir, 'dlq')), ['oops'], 'durable: written and fsynced before the receipt settled')
  assert.equal(await k.stop(), 0, k.output())
})

test('SIGHUP that swaps the schema applies to messages read after it', async () => {
  const { k, base } = await start(true)
  const buy = (i: number): string => JSON.stringify({ id: i, kind: 'buy' })
  await send(k.socket, [buy(1), buy(2)])
  await settled(base, 2, ['main', 'dlq'])

  await writeFile(join(k.dir, 'schemas', 'event.json'), JSON.stringify(EVENT_V2))
  k.proc.kill('SIGHUP')
  await waitFor(() => k.logs().some((l) => l.msg === 'buckets file reloaded'), { what: 'reload' })
  await send(k.socket, [buy(3), buy(4)])
  const m = await settled(base, 4, ['main', 'dlq'])
  assert.equal(sample(m, 'kahets_schema_rejected_total', { bucket: 'events', reason: 'invalid' }), 2)
  assertIdentity(m, 'events', 'main')
  assertIdentity(m, 'events', 'dlq')

  // A schema that no longer compiles: the reload is refused whole, the running schema stays.
  await writeFile(join(k.dir, 'schemas', 'event.json'), JSON.stringify({ type: 'objekt' }))
  k.proc.kill('SIGHUP')
  const rejected = await waitFor(() => k.logs().find((l) => l.msg === 'reload rejected: invalid buckets file; keeping the running configuration'), { what: 'rejection' })
  assert.match(JSON.stringify(rejected.problems), /\$\.buckets\[0\]\.schema.*does not compile/)
  await send(k.socket, [buy(5), 'still not json'])
  await settled(base, 6, ['main', 'dlq'])
  assert.equal(await k.stop(), 0, k.output())

  assert.deepEqual(await payloads(join(k.dir, 'dlq')), [buy(1), buy(2), 'still not json'], 'before the reload: rejected')
  assert.deepEqual(await payloads(join(k.dir, 'main')), [buy(3), buy(4), buy(5)], 'after it: valid under the new schema')
})

test('check-config reports a missing or broken schema file with its path, and exits 1', async () => {
  const dir = await makeTempDir()
  const bucketsFile = join(dir, 'buckets.json')
  await writeFile(bucketsFile, JSON.stringify({
    streamsConfigs: { main: { type: 'file', settings: { path: join(dir, 'main') } } },
    buckets: [{ id: 'a', streams: ['main'], schema: 'missing.json' }, { id: 'b', streams: ['main'], schema: 'broken.json' }],
    defaultBucket: { streams: ['main'], schema: 'bad.json' },
  }))
  await writeFile(join(dir, 'broken.json'), '{"type": "object",')
  await writeFile(join(dir, 'bad.json'), JSON.stringify({ properties: { a: { minimum: 'one' } } }))
  const r = await execFileP(BIN, ['check-config'], { env: { ...process.env, BUCKETS_FILE: bucketsFile }, cwd: '/' }).then(() => ({ code: 0, stderr: '' }), (e: { code: number, stderr: string }) => e)
  assert.equal(r.code, 1)
  assert.ok(r.stderr.includes(`$.buckets[0].schema: cannot read schema file ${join(dir, 'missing.json')}: ENOENT`), r.stderr)
  assert.ok(r.stderr.includes(`$.buckets[1].schema: schema file ${join(dir, 'broken.json')} is not JSON`), r.stderr)
  assert.ok(r.stderr.includes(`$.defaultBucket.schema: schema file ${join(dir, 'bad.json')} does not compile`), r.stderr)

  await writeFile(join(dir, 'missing.json'), JSON.stringify(EVENT_V1))
  await writeFile(join(dir, 'broken.json'), '{"type": "object", "allOf": [{"required": ["id"]}]}')
  await writeFile(join(dir, 'bad.json'), 'true')
  const ok = await execFileP(BIN, ['check-config'], { env: { ...process.env, BUCKETS_FILE: bucketsFile }, cwd: '/' })
  assert.match(ok.stdout, /configuration OK/)
  // How each schema's payloads will be checked: on their bytes, or all through ajv, and why.
  const lines = ok.stdout.split('\n')
  assert.ok(lines.includes(`payload schema ${join(dir, 'missing.json')} (bucket a): payloads checked on their bytes (JSON.parse and ajv only for the rest)`), ok.stdout)
  assert.ok(lines.includes(`payload schema ${join(dir, 'broken.json')} (bucket b): every payload parsed and validated by ajv, several times slower: the keyword allOf at /allOf is outside what the byte scanner models`), ok.stdout)
  assert.ok(lines.includes(`payload schema ${join(dir, 'bad.json')} (bucket defaultBucket): payloads checked on their bytes (JSON.parse and ajv only for the rest)`), ok.stdout)
})

test('a pattern that backtracks exponentially, uniqueItems over 60,000 to 100,000 items: such payloads are decided at once and kahets keeps serving; check-config names the patterns without a time bound', { timeout: 120_000 }, async () => {
  const dir = await makeTempDir()
  await mkdir(join(dir, 'schemas'))
  // `^(a+)+$` on "aaa…a!": ~10 s for 30 characters on the backtracking engine, doubling with
  // each one more; 2,000 of them here. `^(\w)\1$` needs a back-reference: it stays there.
  await writeFile(join(dir, 'schemas', 'event.json'), JSON.stringify({
    type: 'object',
    properties: { name: { type: 'string', pattern: '^(a+)+$' }, pair: { type: 'string', pattern: '^(\\w)\\1$' }, tags: { type: 'array', uniqueItems: true } },
  }))
  const k = await startKahetsWithMetrics({ buckets: config(true), dir })
  const hostile = Array.from({ length: 20 }, (_, i) => JSON.stringify({ name: `${'a'.repeat(2000 + i)}!` }))
  const astral = Array.from({ length: 20 }, (_, i) => JSON.stringify({ name: `${'a'.repeat(2000 + i)}😀` }))
  // ajv compares each pair of items not declared scalars: 19 s for 32,000, growing with the square.
  const many = [`{"tags":[${Array(100_000).fill('{}').join(',')}]}`, `{"tags":[${Array.from({ length: 60_000 }, (_, i) => `{"i":${i}}`).join(',')}]}`]
  const valid = Array.from({ length: 20 }, (_, i) => JSON.stringify({ name: 'a'.repeat(i + 1), pair: 'zz' }))
  // Decided in well under a second; unbounded, the pattern ones alone would take hours and the
  // pairwise uniqueItems over a minute, with /metrics unanswered (and the client's close
  // waiting) meanwhile.
  const sent = send(k.socket, [...hostile, ...astral, ...many, ...valid])
  const m = await settled(k.metrics, 62, ['main', 'dlq'], 20_000)
  await sent
  assert.equal(sample(m, 'kahets_schema_rejected_total', { bucket: 'events', reason: 'invalid' }), 41)
  assert.equal(await k.stop(), 0, k.output())
  assert.deepEqual(await payloads(join(k.dir, 'main')), [many[1], ...valid])
  assert.deepEqual(await payloads(join(k.dir, 'dlq')), [...hostile, ...astral, many[0]])
  const said = k.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith(`payload schema ${join(dir, 'schemas', 'event.json')}`))
  assert.match(String(said?.msg), /; a pattern has no time bound, so a crafted payload can take seconds: "\^\(\\\\w\)\\\\1\$" \(a back-reference\)$/)

  const check = await execFileP(BIN, ['check-config'], { env: { ...process.env, BUCKETS_FILE: join(dir, 'buckets.json') }, cwd: dir })
  assert.ok(check.stdout.includes('a pattern has no time bound'), check.stdout)
  assert.ok(!check.stdout.includes('(a+)+'), 'the pattern the linear engine runs is not named')
})
