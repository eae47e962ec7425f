// Kafka down and the backup spool's disk full (docs/guarantees.md, "Bounded memory"): kahets
// holds what it cannot write up to MAXMEMORY, then stops reading the sockets; it neither
// crashes, nor wedges, nor loses an accepted frame. Once space comes back the backup takes
// everything, every frame once, and durable clients are settled with nothing refused.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { AckClient, KahetsClient } from '../../clients/node/index.ts'
import { startKahetsWithMetrics } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { freePort } from '../helpers/ports.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'
import { NEEDS_ROOT, fillDisk, tmpfsDir } from '../helpers/tmpfs.ts'

const FRAMES = 30_000
const DURABLE = 2000
const PAD = 'p'.repeat(180)

test('Kafka down, the backup disk full: reads pause, nothing is lost or refused, and the backup takes everything once space comes back', { skip: NEEDS_ROOT, timeout: 240_000 }, async (t) => {
  const dir = await tmpfsDir('kahets-spool-full-', { backup: '16m' })
  const filler = await fillDisk(join(dir, 'backup'), 256 * 1024)
  const nobody = await freePort() // no broker listens here: Kafka is down from the start
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: {
        kafka: {
          type: 'kafka',
          settings: { 'bootstrap.servers': `127.0.0.1:${nobody}`, 'kahets.probe.interval.ms': '500' },
          backup: { type: 'file', settings: { path: '{dir}/backup/spool', fsync: true } },
        },
      },
      buckets: [{ id: 'events', streams: ['kafka'], batch: 500, batchTimeout: 20 }],
    },
    env: { MAXMEMORY: '4MB' },
  })
  const base = k.metrics

  const durable = await AckClient.connect(k.socket, { ack: 'durable' })
  t.after(async () => { await durable.close(1).catch(() => {}) })
  for (let i = 0; i < DURABLE; i++) assert.ok(durable.send('events', `d${i}|${PAD}`))
  const client = await KahetsClient.connect(k.socket)
  let written = 0
  const sending = (async () => {
    for (let i = 0; i < FRAMES; i++) {
      if (!client.send('events', `f${i}|${PAD}`)) await client.drain()
      written = i + 1
    }
    await client.close()
  })()

  // The backup cannot write and memory reached its bound: kahets stops reading the sockets.
  const pressed = await waitFor(async () => {
    const s = await scrape(base)
    return sample(s, 'kahets_stream_mode', { stream: 'kafka', mode: 'backup' }) === 1 &&
      sample(s, 'kahets_stream_mode', { stream: 'kafka.backup', mode: 'retrying' }) === 1 &&
      sample(s, 'kahets_reads_paused') === 1
      ? s
      : null
  }, { timeoutMs: 60_000, what: 'the backup full and reads paused' }).catch(async (err: Error) => {
    const s = await scrape(base)
    throw new Error(`${err.message}; ${[...s].filter(([n, v]) => v !== 0 && /mode|paused|dropped|backed|buffered/.test(n)).map(([n, v]) => `${n}=${v}`).join(' ')}`)
  })
  const held = assertIdentity(pressed, 'events', 'kafka')
  assert.equal(held.dropped, 0, 'nothing dropped while the backup is full')
  assert.ok(written < FRAMES, 'the fire-and-forget client waits in its socket write')
  // Not wedged: it answers, keeps retrying, and stays paused without crashing.
  await new Promise((resolve) => setTimeout(resolve, 2000))
  assert.equal(k.proc.exitCode, null, 'kahets is running')
  // Nothing is being dropped, so /healthz stays 200 and says degraded; /readyz says reads
  // are paused (docs/operations-health.md).
  const health = await fetch(`${base}/healthz`)
  assert.equal(health.status, 200, 'nothing dropped: /healthz stays 200')
  assert.equal(((await health.json()) as { status: string }).status, 'degraded', '/healthz reports the stream on its backup')
  const ready = await fetch(`${base}/readyz`)
  assert.equal(ready.status, 503, '/readyz reports the paused reads')
  assert.match(await ready.text(), /paused/)
  assert.equal(sample(await scrape(base), 'kahets_reads_paused'), 1)
  assert.ok(k.logs().some((l) => l.level === 40 || l.level === 50), 'the full disk is logged')

  await rm(filler)
  const freed = Date.now()
  await sending
  const settlement = await durable.flush(60_000).catch(async (err: Error) => {
    const s = await scrape(base)
    const logs = k.logs().filter((l) => (l.level as number) >= 40).map((l) => JSON.stringify(l)).slice(-15).join('\n')
    throw new Error(`${err.message}; ${[...s].filter(([n, v]) => v !== 0 && /mode|paused|dropped|backed|buffered|flight|received|delivered/.test(n)).map(([n, v]) => `${n}=${v}`).join(' ')}\n${logs}`)
  })
  assert.deepEqual(settlement, { settled: DURABLE, refused: 0 })
  await durable.close()
  const m = await waitFor(async () => {
    const s = await scrape(base)
    const f = assertIdentity(s, 'events', 'kafka')
    return f.inFlight === 0 && f.received === FRAMES + DURABLE && sample(s, 'kahets_reads_paused') === 0 ? s : null
  }, { timeoutMs: 60_000, what: 'everything on the backup' })
  t.diagnostic(`backup took everything ${Date.now() - freed} ms after space came back`)
  const flow = assertIdentity(m, 'events', 'kafka')
  assert.equal(flow.dropped, 0)
  assert.equal(flow.backedUp, FRAMES + DURABLE)
  assert.equal(await k.stop(), 0, k.output())

  const ids = (await readFrameFiles(join(dir, 'backup', 'spool'))).flatMap((f) => f.frames.map((x) => x.payload.toString().split('|')[0]!))
  const twice = ids.length - new Set(ids).size
  assert.equal(twice, 0, `${twice} frames twice in the backup`)
  assert.equal(new Set(ids).size, FRAMES + DURABLE, 'every frame in the backup')
})
