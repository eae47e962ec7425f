// Acknowledged mode across restarts (issue 11, "Done when"): clients in ack mode keep every
// frame kahets has not reported, and send again what a shutdown did not read, so restarts of
// kahets and a crash of the broker lose nothing they wrote.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { AckClient } from '../../clients/node/index.ts'
import { type KahetsProcess, makeTempDir, startKahets, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { consumeAll, startBroker, type Broker } from '../helpers/broker.ts'
import { decodeAll, listFiles, readFrameFiles } from '../helpers/frames.ts'
import { readFile } from 'node:fs/promises'
import { type AckMessage, type AckRunOptions, type AckRunResult, runNodeAck, runPhpAck, runPythonAck } from '../helpers/ack-clients.ts'
import { waitFor } from '../helpers/wait.ts'
import { assertFinalIdentity, sample, scrape } from '../helpers/metrics.ts'

let broker: Broker
before(async () => { broker = await startBroker() })

const filesConfig = {
  streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out', fsync: true } } },
  buckets: [{ id: 'orders', streams: ['files'], batch: 100, batchTimeout: 20 }],
}

for (const [name, run] of Object.entries<(dir: string, socket: string, o: AckRunOptions) => Promise<AckRunResult>>({
  node: (_dir, s, o) => runNodeAck(s, o),
  php: runPhpAck,
  python: runPythonAck,
})) {
  test(`${name} client, ack accepted, kahets stopped (SIGTERM) and started again mid-stream: every frame once, in order`, async () => {
    const dir = await makeTempDir()
    let k = await startKahets({ buckets: filesConfig, dir })
    const messages: AckMessage[] = Array.from({ length: 600 }, (_, i) => ({ bucket: 'orders', payload: `${name}-${i}`, key: `k${i % 5}` }))
    const r = await run(dir, k.socket, {
      ack: 'accepted',
      messages,
      midway: async () => { k = await restartKahets(k, filesConfig, dir) },
      flushTimeoutMs: 20_000,
    })
    assert.deepEqual({ ok: r.ok, settled: r.settled, refused: r.refused }, { ok: true, settled: 600, refused: 0 }, r.log)
    assert.equal(await k.stop(), 0)
    const got = (await readFrameFiles(`${dir}/out`)).flatMap((f) => f.frames).map((f) => f.payload.toString())
    // Files are named by time: sort by the message number to compare sets, then check order per file.
    assert.deepEqual([...got].sort(), messages.map((m) => m.payload).sort(), 'every frame exactly once')
    for (const f of await readFrameFiles(`${dir}/out`)) {
      const ns = f.frames.map((x) => Number(x.payload.toString().split('-')[1]))
      assert.deepEqual(ns, [...ns].sort((a, b) => a - b), `in order within ${f.file}`)
    }
  })
}

const kafkaConfig = (topic: string): object => ({
  streamsConfigs: {
    kafka: {
      type: 'kafka',
      settings: { 'bootstrap.servers': broker.bootstrap, acks: 'all', 'queue.buffering.max.ms': '10', 'kahets.probe.interval.ms': '500' },
      backup: { type: 'file', settings: { path: '{dir}/backup', sizeRotate: '4MB' } },
    },
  },
  buckets: [{ id: topic, streams: ['kafka'], batch: 1000, batchTimeout: 20 }],
})

/** SIGTERM (exit 0, the identity holds at exit), then a new kahets on the same socket and folder. */
async function restartKahets (k: KahetsProcess, buckets: object, dir: string): Promise<KahetsProcess> {
  assert.equal(await k.stop(), 0)
  assertFinalIdentity(k.logs())
  return await startKahets({ buckets, dir })
}

/**
 * 8 clients write continuously, paced (a pause of PACE_MS every PACE_EVERY messages), until
 * each has sent at least `perClient` messages AND every event has finished: so every event
 * (a restart, a broker crash) happens while frames are being written. `events` run in
 * order, each once that many messages were sent in all. Resolves with how many messages
 * each client sent and its final settlement.
 */
const PACE_EVERY = 20
const PACE_MS = 20
async function writeThrough (socket: string, ack: 'accepted' | 'durable', topic: string, perClient: number, events: Array<[number, () => Promise<void>]>): Promise<Array<{ sent: number, settled: number, refused: number }>> {
  let sent = 0
  const pending = [...events].sort((a, b) => a[0] - b[0])
  let running: Promise<void> = Promise.resolve()
  let eventsDone = pending.length === 0
  let eventError: unknown = null
  const clients = await Promise.all(Array.from({ length: 8 }, () => AckClient.connect(socket, { ack })))
  const counts = await Promise.all(clients.map(async (client, c) => {
    let i = 0
    for (; i < perClient || (!eventsDone && eventError === null); i++) {
      if (!client.send(topic, `${c}/${i}`, `k${i % 16}`)) await client.drain()
      sent++
      while (pending.length > 0 && sent >= pending[0]![0]) {
        const [, run] = pending.shift()!
        const last = pending.length === 0
        running = running.then(run).then(() => { if (last) eventsDone = true }, (err: unknown) => { eventError = err })
      }
      if (i % PACE_EVERY === 0) await new Promise((resolve) => setTimeout(resolve, PACE_MS))
    }
    return i
  }))
  await running
  if (eventError !== null) throw eventError
  const settlements = await Promise.all(clients.map((c) => c.close(120_000)))
  return settlements.map((s, c) => ({ sent: counts[c]!, ...s }))
}

async function readBack (topic: string, total: number): Promise<{ ids: Set<string>, duplicates: number }> {
  const got = await consumeAll(broker.bootstrap, topic, { expected: total, timeoutMs: 120_000 })
  const ids = new Set<string>()
  let duplicates = 0
  for (const m of got) {
    const id = m.value!.toString()
    if (ids.has(id)) duplicates++
    ids.add(id)
  }
  return { ids, duplicates }
}

test('ack durable, 8 clients writing while kahets is restarted twice and the broker killed and restarted: every frame in Kafka', async () => {
  const topic = 'ack_durable_restarts'
  const dir = await makeTempDir()
  let k: KahetsProcess = await startKahets({ buckets: kafkaConfig(topic), dir })
  const restart = async (): Promise<void> => { k = await restartKahets(k, kafkaConfig(topic), dir) }
  const perClient = 2500
  const settlements = await writeThrough(k.socket, 'durable', topic, perClient, [
    [4_000, restart],
    [8_000, async () => {
      await broker.kill()
      try {
        // Frames keep coming (writeThrough), so kahets's writes to Kafka fail and it fails over.
        await waitFor(() => k.output().includes('failing over') || k.output().includes('unavailable'), { timeoutMs: 60_000, what: 'kahets to notice the broker is gone' })
      } finally {
        await broker.start()
      }
    }],
    [14_000, restart],
  ])
  for (const s of settlements) assert.deepEqual({ settled: s.settled, refused: s.refused }, { settled: s.sent, refused: 0 })
  const total = settlements.reduce((n, s) => n + s.sent, 0)
  const { ids } = await readBack(topic, total)
  const missing: string[] = []
  for (const [c, s] of settlements.entries()) for (let i = 0; i < s.sent; i++) if (!ids.has(`${c}/${i}`)) missing.push(`${c}/${i}`)
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} frames missing from Kafka`)
  assert.equal(await k.stop(), 0)
})

test('ack durable, kahets killed with SIGKILL twice while 8 clients write: every frame in the files (duplicates allowed, nothing missing)', async () => {
  const dir = await makeTempDir()
  let k: KahetsProcess = await startKahets({ buckets: filesConfig, dir })
  // No shutdown, no CLOSING: the clients learn only from their connections breaking, and send
  // again everything past the last ACK.
  const crash = async (): Promise<void> => {
    await k.kill()
    k = await startKahets({ buckets: filesConfig, dir })
  }
  const perClient = 2500
  const settlements = await writeThrough(k.socket, 'durable', 'orders', perClient, [[4_000, crash], [12_000, crash]])
  for (const s of settlements) assert.deepEqual({ settled: s.settled, refused: s.refused }, { settled: s.sent, refused: 0 })
  assert.equal(await k.stop(), 0)
  // A file the killed kahets was writing may end in a torn frame: its whole frames count.
  const files = await listFiles(`${dir}/out`)
  const frames = (await Promise.all(files.map(async (f) => decodeAll(await readFile(f))))).flatMap((d) => { assert.equal(d.invalid, 0); return d.frames })
  const ids = new Set(frames.map((f) => f.payload.toString()))
  const missing: string[] = []
  for (const [c, s] of settlements.entries()) for (let i = 0; i < s.sent; i++) if (!ids.has(`${c}/${i}`)) missing.push(`${c}/${i}`)
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} frames missing from the files`)
})

test('ack accepted, clean restarts of kahets (broker up): every frame in Kafka exactly once', async () => {
  const topic = 'ack_accepted_restarts'
  const dir = await makeTempDir()
  let k: KahetsProcess = await startKahets({ buckets: kafkaConfig(topic), dir })
  const restart = async (): Promise<void> => { k = await restartKahets(k, kafkaConfig(topic), dir) }
  const perClient = 2500
  const settlements = await writeThrough(k.socket, 'accepted', topic, perClient, [[4_000, restart], [12_000, restart]])
  for (const s of settlements) assert.deepEqual({ settled: s.settled, refused: s.refused }, { settled: s.sent, refused: 0 })
  assert.equal(await k.stop(), 0)
  const total = settlements.reduce((n, s) => n + s.sent, 0)
  const { ids, duplicates } = await readBack(topic, total)
  assert.equal(ids.size, total, 'no frame missing')
  assert.equal(duplicates, 0, 'no frame twice')
})

test('ack durable: valid frames, an unknown bucket, an invalid frame and a topic Kafka refuses — ACK counts match Kafka and /metrics', async () => {
  const config = {
    streamsConfigs: {
      kafka: {
        type: 'kafka',
        settings: { 'bootstrap.servers': broker.bootstrap, acks: 'all', 'queue.buffering.max.ms': '10' },
        backup: { type: 'file', settings: { path: '{dir}/backup' } },
      },
    },
    buckets: [
      { id: 'ack_mixed_ok', streams: ['kafka'], batch: 100, batchTimeout: 20 },
      // Kafka refuses producing to its internal topic: topic_rejected, for good.
      { id: '__consumer_offsets', streams: ['kafka'], batch: 100, batchTimeout: 20 },
    ],
  }
  const k = await startKahetsWithMetrics({ buckets: config })
  const client = await AckClient.connect(k.socket, { ack: 'durable' })
  const expected = { ok: 0, unknown: 0, invalid: 0, refusedTopic: 0 }
  for (let i = 0; i < 2000; i++) {
    if (i % 50 === 1) { client.send('nobody_serves_this', `u${i}`); expected.unknown++ } else if (i % 50 === 2) {
      const bad = Buffer.from([7, 0, 0, 0, 3, 0x61, 0x2f, 0x62, 0, 0x78, 0x79]) // bucket "a/b": invalid
      client.sendRaw(bad)
      expected.invalid++
    } else if (i % 50 === 3) { client.send('__consumer_offsets', `c${i}`); expected.refusedTopic++ } else { client.send('ack_mixed_ok', `ok-${i}`); expected.ok++ }
  }
  const s = await client.flush(60_000)
  const refused = expected.unknown + expected.invalid + expected.refusedTopic
  assert.deepEqual(s, { settled: 2000, refused })
  await client.close()
  const m = await scrape(k.metrics)
  assert.equal(sample(m, 'kahets_dropped_total', { reason: 'unknown_bucket' }), expected.unknown)
  assert.equal(sample(m, 'kahets_invalid_frames_total', { reason: 'bad_bucket' }), expected.invalid)
  assert.equal(sample(m, 'kahets_dropped_total', { bucket: '__consumer_offsets', reason: 'topic_rejected' }), expected.refusedTopic)
  assert.equal(sample(m, 'kahets_delivered_total', { bucket: 'ack_mixed_ok' }), expected.ok)
  const got = await consumeAll(broker.bootstrap, 'ack_mixed_ok', { expected: expected.ok, timeoutMs: 60_000 })
  assert.equal(new Set(got.map((x) => x.value!.toString())).size, expected.ok)
  assert.equal(await k.stop(), 0)
})
