// Issue 10, finding 1: one bucket whose destination is refused (a file name the file system
// will not create, a topic Kafka will not take) must not wedge the other buckets of its stream,
// nor put them back on the backup after a restart.
import { describe, test, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { KahetsClient } from '../../clients/node/index.ts'
import { FILES_WITH_BACKUP, makeTempDir, startKahets, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { freePort } from '../helpers/ports.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'
import { kcatRead, startBroker, type Broker } from '../helpers/broker.ts'

const LONG = 'x'.repeat(255) // a valid bucket name (docs/protocol.md#data-frames) no file system takes as a file name

async function send (socket: string, bucket: string, from: number, to: number): Promise<void> {
  const c = await KahetsClient.connect(socket)
  for (let i = from; i < to; i++) if (!c.send(bucket, `${bucket.slice(0, 8)}-${i}`)) await c.drain()
  await c.close()
}

async function payloads (dir: string): Promise<string[]> {
  return (await readFrameFiles(dir)).flatMap((f) => f.frames.map((x) => x.payload.toString()))
}

const fileBuckets = {
  streamsConfigs: {
    files: { type: 'file', settings: { path: '{dir}/primary', fileNameTemplate: '{bucket}-{ts}-{rand}.frames' }, backup: { type: 'file', settings: { path: '{dir}/backup' } } },
  },
  buckets: [],
  defaultBucket: { id: 'default', streams: ['files'], batch: 10, batchTimeout: 20 },
}

test('a file name the file system refuses drops that bucket\'s frames; other buckets keep flowing, also after a restart', async () => {
  const dir = await makeTempDir()
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const k = await startKahets({ dir, buckets: fileBuckets, env: { METRICS: `127.0.0.1:${port}` } })
  await send(k.socket, LONG, 0, 1)
  await waitFor(async () => sample(await scrape(base), 'kahets_dropped_total', { bucket: LONG, reason: 'destination_rejected' }) === 1, { what: 'the long bucket refused' })
  await send(k.socket, 'good', 0, 100)
  const m = await waitFor(async () => { const s = await scrape(base); return sample(s, 'kahets_delivered_total', { bucket: 'good', stream: 'files' }) === 100 ? s : null }, { what: 'good delivered to the primary' })
  assert.equal(assertIdentity(m, 'good', 'files').backedUp, 0)
  assertIdentity(m, LONG, 'files')
  const health = await fetch(`${base}/healthz`)
  assert.equal(health.status, 200, 'one refused destination is not a degraded stream')
  assert.equal(await k.stop(), 0)
  assert.deepEqual(await payloads(join(dir, 'backup')), [])
  assert.deepEqual(await payloads(join(dir, 'primary')), Array.from({ length: 100 }, (_, i) => `good-${i}`))

  // A restart: nothing is left that would divert the stream again.
  const k2 = await startKahets({ dir, buckets: fileBuckets, env: { METRICS: `127.0.0.1:${port}` } })
  await send(k2.socket, LONG, 1, 2)
  await send(k2.socket, 'good', 100, 200)
  await waitFor(async () => sample(await scrape(base), 'kahets_delivered_total', { bucket: 'good', stream: 'files' }) === 100, { what: 'good delivered after the restart' })
  assert.equal((await fetch(`${base}/healthz`)).status, 200)
  assert.equal(await k2.stop(), 0)
  assert.deepEqual(await payloads(join(dir, 'backup')), [])
})

test('a backup file left by an earlier run with a refused destination: replayed, the refused frame set aside, nothing diverted', async () => {
  const dir = await makeTempDir()
  // As an earlier kahets (before issue 10) left it: the long bucket's frame between good ones.
  const frames = [
    ...Array.from({ length: 5 }, (_, i) => ({ bucket: 'good', payload: `good-${i}` })),
    { bucket: LONG, payload: 'refused' },
    ...Array.from({ length: 5 }, (_, i) => ({ bucket: 'good', payload: `good-${i + 5}` })),
  ]
  await mkdir(join(dir, 'backup', 'good'), { recursive: true })
  await writeFile(join(dir, 'backup', 'good', '1700000000-abcdEFGH.frames'), encodeFrames(frames))
  const k = await startKahetsWithMetrics({ dir, buckets: fileBuckets })
  const base = k.metrics
  await waitFor(async () => {
    const s = await scrape(base)
    return sample(s, 'kahets_replayed_total', { bucket: 'good', stream: 'files' }) === 10 &&
      sample(s, 'kahets_replay_refused_total', { bucket: LONG, stream: 'files', reason: 'destination_rejected' }) === 1
  }, { what: 'the leftover file replayed, the refused frame counted' })
  await waitFor(async () => (await (await fetch(`${base}/healthz`)).json() as { status: string }).status === 'ok', { what: 'healthy' })
  await send(k.socket, 'good', 10, 20)
  await waitFor(async () => sample(await scrape(base), 'kahets_delivered_total', { bucket: 'good', stream: 'files' }) === 10, { what: 'new frames delivered to the primary' })
  assert.equal(await k.stop(), 0)
  assert.deepEqual(await payloads(join(dir, 'backup')), [], 'the leftover file is gone')
  assert.deepEqual(await payloads(join(dir, 'primary')), Array.from({ length: 20 }, (_, i) => `good-${i}`))
})

test('a subfolder in the way diverts only its bucket to the backup; once it is gone the backup drains into the primary', async () => {
  const dir = await makeTempDir()
  await mkdir(join(dir, 'primary'), { recursive: true })
  await writeFile(join(dir, 'primary', 'blocked'), 'a file where the bucket\'s folder goes') // ENOTDIR for bucket "blocked"
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: FILES_WITH_BACKUP,
      buckets: [],
      defaultBucket: { id: 'default', streams: ['files'], batch: 10, batchTimeout: 20 },
    },
  })
  const base = k.metrics
  await send(k.socket, 'blocked', 0, 50)
  await send(k.socket, 'good', 0, 50)
  const during = await waitFor(async () => { const s = await scrape(base); return sample(s, 'kahets_in_flight') === 0 && sample(s, 'kahets_delivered_total', { bucket: 'good' }) === 50 ? s : null }, { what: 'settled' })
  assert.equal(assertIdentity(during, 'blocked', 'files').backedUp, 50)
  assert.equal(assertIdentity(during, 'good', 'files').backedUp, 0)
  const health = await fetch(`${base}/healthz`)
  assert.equal(health.status, 200)
  assert.deepEqual(await health.json(), { status: 'degraded', degraded: [], diverted: [{ stream: 'files', bucket: 'blocked' }] })

  await rm(join(dir, 'primary', 'blocked'))
  await send(k.socket, 'blocked', 50, 60)
  // Tried again at the next replay (file streams probe every second).
  await waitFor(async () => {
    const s = await scrape(base)
    return sample(s, 'kahets_replayed_total', { bucket: 'blocked' }) + sample(s, 'kahets_delivered_total', { bucket: 'blocked' }) >= 60 && sample(s, 'kahets_in_flight') === 0
  }, { what: 'the diverted bucket back in the primary', timeoutMs: 15_000 })
  await waitFor(async () => (await (await fetch(`${base}/healthz`)).json() as { diverted?: unknown }).diverted === undefined, { what: 'no bucket diverted' })
  const after = await scrape(base)
  assertIdentity(after, 'blocked', 'files')
  assert.equal(await k.stop(), 0)
  assert.deepEqual(await payloads(join(dir, 'backup')), [])
  const blocked = (await readFrameFiles(join(dir, 'primary'))).flatMap((f) => f.frames.filter((x) => x.bucket === 'blocked').map((x) => x.payload.toString()))
  assert.deepEqual(blocked, Array.from({ length: 60 }, (_, i) => `blocked-${i}`), 'every message, in order')
})

describe('kafka', () => {
  let broker: Broker
  before(async () => { broker = await startBroker() })

  test('kafka: a backup file with frames for __consumer_offsets left by an earlier run drains; those frames are set aside', async () => {
    const dir = await makeTempDir()
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const topic = `leftover_${Date.now()}`
    await mkdir(join(dir, 'backup', topic), { recursive: true })
    await writeFile(join(dir, 'backup', topic, '1700000000-abcdEFGH.frames'), encodeFrames([
      { bucket: topic, payload: 'a' }, { bucket: '__consumer_offsets', payload: 'x' }, { bucket: topic, payload: 'b' },
    ]))
    const k = await startKahets({
      dir,
      buckets: {
        streamsConfigs: { kafka: { type: 'kafka', settings: { 'bootstrap.servers': broker.bootstrap, 'kahets.probe.interval.ms': '1000' }, backup: { type: 'file', settings: { path: '{dir}/backup' } } } },
        buckets: [],
        defaultBucket: { id: 'default', streams: ['kafka'], batch: 10, batchTimeout: 20 },
      },
      env: { METRICS: `127.0.0.1:${port}` },
    })
    await waitFor(async () => {
      const s = await scrape(base)
      return sample(s, 'kahets_replayed_total', { bucket: topic, stream: 'kafka' }) === 2 &&
        sample(s, 'kahets_replay_refused_total', { bucket: '__consumer_offsets', stream: 'kafka', reason: 'topic_rejected' }) === 1
    }, { what: 'the leftover file replayed, the refused frame counted', timeoutMs: 30_000 })
    await waitFor(async () => (await (await fetch(`${base}/healthz`)).json() as { status: string }).status === 'ok', { what: 'healthy' })
    assert.equal(await k.stop(), 0)
    assert.deepEqual(await payloads(join(dir, 'backup')), [])
    assert.deepEqual((await kcatRead(broker.bootstrap, topic, { format: '%s\n' })).toString().trim().split('\n'), ['a', 'b'])
  })

for (const client of ['platformatic', 'kafkajs'] as const) {
  test(`kafka (${client}): a topic Kafka refuses (__consumer_offsets) drops that bucket's frames; other buckets keep flowing`, async () => {
    const dir = await makeTempDir()
    const topic = `good_${client}_${Date.now()}`
    const k = await startKahetsWithMetrics({
      dir,
      buckets: {
        streamsConfigs: {
          kafka: { type: 'kafka', settings: { 'bootstrap.servers': broker.bootstrap, 'kahets.client': client, 'kahets.probe.interval.ms': '1000' }, backup: { type: 'file', settings: { path: '{dir}/backup' } } },
        },
        buckets: [],
        defaultBucket: { id: 'default', streams: ['kafka'], batch: 10, batchTimeout: 20 },
      },
    })
    const base = k.metrics
    await send(k.socket, '__consumer_offsets', 0, 1)
    await waitFor(async () => sample(await scrape(base), 'kahets_dropped_total', { bucket: '__consumer_offsets', reason: 'topic_rejected' }) === 1, { what: '__consumer_offsets refused', timeoutMs: 30_000 })
    await send(k.socket, topic, 0, 100)
    const m = await waitFor(async () => { const s = await scrape(base); return sample(s, 'kahets_delivered_total', { bucket: topic, stream: 'kafka' }) === 100 ? s : null }, { what: 'the good topic delivered', timeoutMs: 30_000 })
    assert.equal(assertIdentity(m, topic, 'kafka').backedUp, 0)
    assertIdentity(m, '__consumer_offsets', 'kafka')
    assert.equal((await fetch(`${base}/healthz`)).status, 200)
    assert.equal(await k.stop(), 0)
    assert.deepEqual(await payloads(join(dir, 'backup')), [])
    const read = (await kcatRead(broker.bootstrap, topic, { format: '%s\n' })).toString().trim().split('\n')
    assert.deepEqual(read, Array.from({ length: 100 }, (_, i) => `${topic.slice(0, 8)}-${i}`))
  })
}
})
