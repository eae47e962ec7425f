// Hostile and starved conditions on the real process: garbage, slow and idle connections
// beside normal clients; Kafka down with a tiny MAXMEMORY and no backup.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createConnection, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { KahetsClient } from '../../clients/node/index.ts'
import { encodeFrame } from '../../src/protocol/encoder.ts'
import { startKahets, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { consumeAll, kcatCount, startBroker } from '../helpers/broker.ts'
import { freePort } from '../helpers/ports.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

function open (path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path, () => resolve(s))
    s.once('error', reject)
  })
}

test('50 garbage connections, 1 byte/s slow clients and 1,000 idle connections beside 8 normal clients', async () => {
  const broker = await startBroker()
  const topic = 'beside_hostile'
  const k = await startKahetsWithMetrics({
    buckets: {
      streamsConfigs: { kafka: { type: 'kafka', settings: { 'bootstrap.servers': broker.bootstrap, acks: '1', 'queue.buffering.max.ms': '10' } } },
      buckets: [{ id: topic, streams: ['kafka'], batch: 1000, batchTimeout: 20 }],
    },
  })
  const base = k.metrics

  const idle: Socket[] = []
  for (let i = 0; i < 1000; i++) idle.push(await open(k.socket))
  await waitFor(async () => sample(await scrape(base), 'kahets_connected_clients') === 1000, { what: '1000 idle connections' })

  // Slow clients: one valid frame each, one byte per second.
  const slowFrames = [0, 1, 2].map((n) => encodeFrame({ bucket: topic, key: 'slow', payload: `slow-${n}` }))
  const slow = slowFrames.map(async (frame) => {
    const s = await open(k.socket)
    for (const byte of frame) {
      s.write(Buffer.from([byte]))
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    s.end()
  })

  // Garbage: 50 connections of random bytes, several writes each.
  let garbageStop = false
  const garbage = Array.from({ length: 50 }, async () => {
    for (let round = 0; round < 20 && !garbageStop; round++) {
      const s = await open(k.socket).catch(() => null)
      if (s === null) continue
      s.on('error', () => {})
      s.write(randomBytes(4096 + Math.floor(Math.random() * 60_000)))
      await new Promise((resolve) => setTimeout(resolve, 50))
      s.destroy()
    }
  })

  const normal = Array.from({ length: 8 }, async (_, c) => {
    const client = await KahetsClient.connect(k.socket)
    for (let i = 0; i < 10_000; i++) if (!client.send(topic, `n${c}/${i}`, `k${c}`)) await client.drain()
    await client.close()
  })
  await Promise.all(normal)
  garbageStop = true
  await Promise.all([...garbage, ...slow])

  const got = await consumeAll(broker.bootstrap, topic, { expected: 80_003, timeoutMs: 60_000 })
  const values = new Set(got.map((m) => m.value!.toString()))
  for (let c = 0; c < 8; c++) for (let i = 0; i < 10_000; i++) assert.ok(values.has(`n${c}/${i}`), `n${c}/${i} delivered`)
  for (const n of [0, 1, 2]) assert.ok(values.has(`slow-${n}`), `slow frame ${n} delivered`)
  const m = await scrape(base)
  assert.ok(sample(m, 'kahets_invalid_frames_total') > 0, 'the garbage was counted')
  assertIdentity(m, topic, 'kafka')
  assert.equal((await fetch(`${base}/healthz`)).status, 200)
  assert.equal(k.proc.exitCode, null, 'kahets stays up')
  for (const s of idle) s.destroy()
  assert.equal(await k.stop(), 0, k.output())
})

test('MAXMEMORY 2MB, Kafka down, no backup: memory stays bounded, drops are counted, the identity holds', async () => {
  const deadKafka = await freePort() // nothing listens there
  const topic = 'starved'
  const k = await startKahetsWithMetrics({
    buckets: {
      streamsConfigs: { kafka: { type: 'kafka', settings: { 'bootstrap.servers': `127.0.0.1:${deadKafka}`, 'kahets.probe.interval.ms': '1000' } } },
      buckets: [{ id: topic, streams: ['kafka'], batch: 500, batchTimeout: 20 }],
    },
    env: { MAXMEMORY: '2MB', SHUTDOWN_TIMEOUT: '500' },
  })
  const base = k.metrics
  const rss = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${k.pid}/status`, 'utf8'))![1]) * 1024
  const before = rss()
  // 8 clients × 40,000 × 1 KiB ≈ 320 MiB offered, more than 100× MAXMEMORY.
  const payload = Buffer.alloc(1024, 0x61)
  let peak = before
  const sampler = setInterval(() => { peak = Math.max(peak, rss()) }, 20)
  try {
    await Promise.all(Array.from({ length: 8 }, async () => {
      const client = await KahetsClient.connect(k.socket)
      for (let i = 0; i < 40_000; i++) if (!client.send(topic, payload)) await client.drain()
      await client.close()
    }))
    const m = await waitFor(async () => {
      const s = await scrape(base)
      return sample(s, 'kahets_received_total', { bucket: topic }) === 320_000 ? s : null
    }, { timeoutMs: 60_000, what: 'every frame received' })
    const terms = assertIdentity(m, topic, 'kafka')
    assert.ok(sample(m, 'kahets_dropped_total', { bucket: topic, reason: 'max_memory' }) > 300_000, JSON.stringify(terms))
    assert.ok(sample(m, 'kahets_buffered_bytes') <= 2 * 1024 * 1024)
    assert.equal((await fetch(`${base}/healthz`)).status, 503, 'messages are being dropped: failing')
  } finally {
    clearInterval(sampler)
  }
  // 320 MiB went through; what stays is the runtime plus at most MAXMEMORY of frames and
  // the chunks they sit in. 100 MiB above the idle process leaves room for V8's heap growth.
  assert.ok(peak - before < 100 * 1024 * 1024, `RSS grew by ${((peak - before) / 1048576).toFixed(1)} MiB (from ${(before / 1048576).toFixed(1)} MiB)`)
  assert.equal(await k.stop(), 0, k.output())
  const flows = k.logs().find((l) => l.msg === 'stopped')!.flows as Array<{ bucket: string, received: number, delivered: number, backedUp: number, sampledOut: number, inFlight: number, dropped: Record<string, number> }>
  const f = flows.find((x) => x.bucket === topic)!
  assert.equal(f.inFlight, 0)
  assert.equal(f.received, f.delivered + f.backedUp + f.sampledOut + Object.values(f.dropped).reduce((a, b) => a + b, 0), JSON.stringify(f))
  assert.ok((f.dropped.shutdown ?? 0) > 0, 'what was held for the retry is dropped at shutdown and counted')
})

test('MAXMEMORY reached while Kafka hangs: messages spill to the backup, none dropped, all reach Kafka', async () => {
  const broker = await startBroker()
  const port = await freePort()
  const topic = 'spill'
  const k = await startKahets({
    buckets: {
      streamsConfigs: {
        kafka: {
          type: 'kafka',
          settings: { 'bootstrap.servers': broker.bootstrap, 'request.timeout.ms': '8000', 'kahets.probe.interval.ms': '500' },
          backup: { type: 'file', settings: { path: '{dir}/backup' } },
        },
      },
      buckets: [{ id: topic, streams: ['kafka'], batch: 100, batchTimeout: 10 }],
    },
    env: { METRICS: `127.0.0.1:${port}`, MAXMEMORY: '1MB' },
  })
  const base = `http://127.0.0.1:${port}`
  const warm = await KahetsClient.connect(k.socket)
  warm.send(topic, 'warm-up')
  await warm.close()
  await waitFor(async () => sample(await scrape(base), 'kahets_delivered_total', { bucket: topic }) === 1, { what: 'the stream to be connected' })

  // The broker's process stops answering (not dead: requests hang until request.timeout.ms).
  const pid = Number(readFileSync(join(dirname(broker.dataDir), `kafka-${broker.port}.pid`), 'utf8').trim())
  process.kill(pid, 'SIGSTOP')
  try {
    const client = await KahetsClient.connect(k.socket)
    const payload = Buffer.alloc(1024, 0x62)
    for (let i = 0; i < 5000; i++) if (!client.send(topic, Buffer.concat([Buffer.from(`s${i}|`), payload]))) await client.drain()
    await client.close()
    await waitFor(() => k.logs().some((l) => l.msg === 'MAXMEMORY reached: messages spilled to the backup stream'), { what: 'a spill' })
  } finally {
    process.kill(pid, 'SIGCONT')
  }
  const m = await waitFor(async () => {
    const s = await scrape(base)
    const backedUp = sample(s, 'kahets_backed_up_total', { bucket: topic })
    return sample(s, 'kahets_in_flight') === 0 && sample(s, 'kahets_stream_mode', { stream: 'kafka', mode: 'normal' }) === 1 &&
      backedUp > 0 && sample(s, 'kahets_replayed_total', { bucket: topic }) === backedUp ? s : null
  }, { timeoutMs: 90_000, what: 'Kafka back and everything spilled replayed' })
  const terms = assertIdentity(m, topic, 'kafka')
  assert.equal(terms.dropped, 0)
  assert.ok(terms.backedUp > 0)
  // A request that hung may still have been written by the broker: count duplicates in.
  const got = await consumeAll(broker.bootstrap, topic, { expected: await kcatCount(broker.bootstrap, topic), timeoutMs: 60_000 })
  const ids = new Set(got.map((x) => x.value!.subarray(0, x.value!.indexOf(0x7c)).toString()))
  for (let i = 0; i < 5000; i++) assert.ok(ids.has(`s${i}`), `s${i} reached Kafka`)
  assert.equal(await k.stop(), 0)
})
