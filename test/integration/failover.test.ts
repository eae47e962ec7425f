// Nothing accepted is lost (issue 4): the real broker is killed, started late, or kahets is
// stopped under load; an independent consumer then counts what reached Kafka.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { type KahetsProcess, makeTempDir, startKahets, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { consumeAll, kcatCount, startBroker, tallyByClient, type Broker, type ClientTally } from '../helpers/broker.ts'
import { listFiles, readFrameFiles } from '../helpers/frames.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

let broker: Broker
before(async () => { broker = await startBroker() })

const kafkaConfig = (bootstrap: string, topic: string, extra: Record<string, string> = {}) => ({
  streamsConfigs: {
    kafka: {
      type: 'kafka',
      settings: { 'bootstrap.servers': bootstrap, acks: 'all', 'queue.buffering.max.ms': '10', 'kahets.probe.interval.ms': '500', ...extra },
      backup: { type: 'file', settings: { path: '{dir}/backup', fileNameTemplate: '{bucket}{PS}{ts}-{rand}.frames', sizeRotate: '4MB' } },
    },
  },
  buckets: [{ id: topic, streams: ['kafka'], batch: 1000, batchTimeout: 20 }],
})

const payload = (c: number, i: number): string => `${c}/${i}`

/**
 * Distinct (client, index) pairs in Kafka, how many arrived more than once, and whether
 * each client's messages first appear in the order it sent them (per-bucket order across
 * the outage and the replay; a duplicate is a later re-send and does not count).
 */
async function readBack (topic: string, atLeast: number): Promise<ClientTally> {
  return tallyByClient(await consumeAll(broker.bootstrap, topic, { expected: atLeast, timeoutMs: 90_000 }))
}

async function sendLoad (k: KahetsProcess, topic: string, clients: number, perClient: number, onProgress?: (sent: number) => void): Promise<void> {
  let sent = 0
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    const client = await KahetsClient.connect(k.socket)
    for (let i = 0; i < perClient; i++) {
      if (!client.send(topic, payload(c, i), `k${i % 16}`)) await client.drain()
      if (++sent % 1000 === 0) {
        onProgress?.(sent)
        await new Promise((resolve) => setImmediate(resolve))
      }
    }
    await client.close()
  }))
}

function finalFlows (k: KahetsProcess): Array<Record<string, number | string | Record<string, number>>> {
  const stopped = k.logs().find((l) => l.msg === 'stopped')
  assert.ok(stopped !== undefined, 'kahets logged its final accounting')
  return stopped.flows as Array<Record<string, number | string | Record<string, number>>>
}

test('broker SIGKILLed in the middle of 200,000 messages and restarted 10 s later: every message reaches Kafka', async () => {
  const topic = 'failover_kill'
  const k = await startKahetsWithMetrics({ buckets: kafkaConfig(broker.bootstrap, topic) })
  const base = k.metrics
  let killed: Promise<void> | null = null
  await sendLoad(k, topic, 8, 25_000, (sent) => {
    if (sent >= 60_000 && killed === null) killed = broker.kill()
  })
  await killed
  // On its backup the stream is degraded, not failing: nothing is lost (200).
  await waitFor(async () => { const h = await fetch(`${base}/healthz`); return h.status === 200 && (await h.json() as { status: string }).status === 'degraded' }, { what: '/healthz to report the outage' })
  const during = await scrape(base)
  assert.equal(sample(during, 'kahets_stream_mode', { stream: 'kafka', mode: 'normal' }), 0)
  // Restarted 10 s after the crash (the scenario), measured from the kill.
  await new Promise((resolve) => setTimeout(resolve, 10_000))
  await broker.start()
  await waitFor(async () => {
    const s = await scrape(base)
    return sample(s, 'kahets_stream_mode', { stream: 'kafka', mode: 'normal' }) === 1 && sample(s, 'kahets_in_flight') === 0 && sample(s, 'kahets_replay_files_left') === 0
  }, { timeoutMs: 120_000, what: 'replay to finish' })
  const m = await scrape(base)
  const terms = assertIdentity(m, topic, 'kafka')
  assert.equal(terms.received, 200_000)
  assert.equal(terms.dropped, 0)
  assert.ok(terms.backedUp > 0, 'the outage sent messages to the backup')
  assert.equal(sample(m, 'kahets_replayed_total', { bucket: topic, stream: 'kafka' }), terms.backedUp, 'everything backed up was replayed')
  assert.equal((await fetch(`${base}/healthz`)).status, 200)

  const { ids, duplicates, outOfOrder } = await readBack(topic, 200_000)
  assert.equal(ids.size, 200_000, 'no message missing')
  assert.equal(outOfOrder, 0, 'each client\'s messages first reach Kafka in the order sent')
  // At-least-once: a batch Kafka wrote but whose acknowledgement was lost with the broker is
  // also in the backup. Bounded by what was in flight: at most max.in.flight batches of
  // batch.num.messages each (5 × 10,000 with the defaults).
  assert.ok(duplicates <= 50_000, `duplicates ${duplicates}`)
  assert.equal(await k.stop(), 0)
  assert.deepEqual(await listFiles(join(k.dir, 'backup')), [], 'replayed backup files are deleted')
})

test('broker down when kahets starts: everything goes to the backup, then to Kafka once it starts', async () => {
  const topic = 'failover_late'
  const late = await startBroker()
  await late.stop()
  const k = await startKahetsWithMetrics({ buckets: kafkaConfig(late.bootstrap, topic) })
  const base = k.metrics
  await sendLoad(k, topic, 4, 5000)
  const backedUp = await waitFor(async () => {
    const s = await scrape(base)
    return sample(s, 'kahets_in_flight') === 0 ? s : null
  }, { timeoutMs: 30_000, what: 'everything in the backup' })
  assert.equal(assertIdentity(backedUp, topic, 'kafka').backedUp, 20_000)
  assert.equal((await readFrameFiles(join(k.dir, 'backup'))).flatMap((f) => f.frames).length, 20_000)

  await late.start()
  // A second wave while the replay runs: it must land behind everything in the backup.
  const wave2 = (async () => {
    const client = await KahetsClient.connect(k.socket)
    for (let i = 0; i < 5000; i++) if (!client.send(topic, payload(99, i), 'late')) await client.drain()
    await client.close()
  })()
  await wave2
  // ≥: a replay interrupted and started again counts what it sends twice (at-least-once).
  await waitFor(async () => sample(await scrape(base), 'kahets_replayed_total') >= 20_000, { timeoutMs: 60_000, what: 'replay' })
  const got = await consumeAll(late.bootstrap, topic, { expected: 25_000, timeoutMs: 60_000 })
  const firstSeen: string[] = []
  const seen = new Set<string>()
  for (const m of got) {
    const id = m.value!.toString()
    if (!seen.has(id)) firstSeen.push(id)
    seen.add(id)
  }
  assert.equal(seen.size, 25_000)
  const lastBackedUp = Math.max(...firstSeen.map((id, at) => id.startsWith('99/') ? -1 : at))
  const firstLive = firstSeen.findIndex((id) => id.startsWith('99/'))
  assert.ok(lastBackedUp < firstLive, `messages sent during the replay come after the backup (last replayed at ${lastBackedUp}, first live at ${firstLive})`)
  assert.deepEqual(firstSeen.filter((id) => id.startsWith('99/')), Array.from({ length: 5000 }, (_, i) => payload(99, i)))
  assert.equal(await k.stop(), 0)
})

test('kahets stopped with SIGTERM under load: every accepted message is in Kafka or the backup, and the next start replays the backup', async () => {
  const topic = 'failover_sigterm'
  const down = await startBroker()
  const dir = await makeTempDir()
  // A short SHUTDOWN_TIMEOUT and a slow linger keep messages unacknowledged at the stop.
  const config = kafkaConfig(down.bootstrap, topic, { 'queue.buffering.max.ms': '200' })
  const k = await startKahets({ buckets: config, dir, env: { SHUTDOWN_TIMEOUT: '100' } })
  let stopped: Promise<number | null> | null = null
  await sendLoad(k, topic, 4, 20_000, (sent) => {
    if (sent >= 30_000 && stopped === null) stopped = k.stop()
  }).catch(() => {}) // clients see their connection closed by the stop
  assert.equal(await stopped, 0, k.output())
  const flow = finalFlows(k).find((f) => f.bucket === topic && f.stream === 'kafka')!
  const received = flow.received as number
  assert.ok(received >= 30_000, `received ${received}`)
  assert.equal(flow.inFlight, 0)
  assert.equal((flow.delivered as number) + (flow.backedUp as number), received, JSON.stringify(flow))

  const inKafka = (await consumeAll(down.bootstrap, topic, { expected: flow.delivered as number, timeoutMs: 30_000 })).map((m) => m.value!.toString())
  const inBackup = (await readFrameFiles(join(dir, 'backup'))).flatMap((f) => f.frames.map((x) => x.payload.toString()))
  const accepted = new Set([...inKafka, ...inBackup])
  assert.equal(accepted.size, received, 'every accepted message is in Kafka or the backup')
  // What a client had written and kahets accepted is a prefix of that client's messages.
  for (let c = 0; c < 4; c++) {
    const mine = [...accepted].filter((id) => id.startsWith(`${c}/`)).map((id) => Number(id.split('/')[1])).sort((a, b) => a - b)
    assert.ok(mine.every((n, idx) => n === idx), `client ${c}: accepted messages form a prefix`)
  }

  // The next start replays what the backup holds.
  const again = await startKahets({ buckets: config, dir })
  await waitFor(async () => (await listFiles(join(dir, 'backup'))).length === 0, { timeoutMs: 60_000, what: 'backup replayed and removed' })
  const all = await consumeAll(down.bootstrap, topic, { expected: received, timeoutMs: 60_000 })
  assert.equal(new Set(all.map((m) => m.value!.toString())).size, received)
  assert.equal(await again.stop(), 0)
})

test('kahets killed (SIGKILL) during a replay re-sends at most the file it was replaying', async () => {
  const topic = 'replay_crash'
  const dir = await makeTempDir()
  await mkdir(join(dir, 'backup', topic), { recursive: true })
  const FILES = 5
  const PER_FILE = 20_000
  for (let f = 0; f < FILES; f++) {
    const frames = Array.from({ length: PER_FILE }, (_, i) => ({ bucket: topic, key: null, payload: `f${f}/${i}` }))
    await writeFile(join(dir, 'backup', topic, `${1700000000 + f}-AbCdEfG${f}.frames`), encodeFrames(frames))
  }
  // A slow replay (~1 file a second), so the kill lands in the middle of one.
  const slow = kafkaConfig(broker.bootstrap, topic, { 'kahets.replay.max.bytes.per.sec': '400KB' })
  const first = await startKahets({ buckets: slow, dir })
  await waitFor(async () => (await listFiles(join(dir, 'backup'))).length <= FILES - 2, { timeoutMs: 60_000, what: 'two files replayed' })
  await first.kill()
  const left = (await listFiles(join(dir, 'backup'))).length
  assert.ok(left > 0, 'killed while files were still left')

  const second = await startKahets({ buckets: kafkaConfig(broker.bootstrap, topic), dir })
  await waitFor(async () => (await listFiles(join(dir, 'backup'))).length === 0, { timeoutMs: 60_000, what: 'the rest replayed' })
  // Everything the topic holds, duplicates included (kcat reads to the end of the log).
  const total = await kcatCount(broker.bootstrap, topic)
  const got = await consumeAll(broker.bootstrap, topic, { expected: total, timeoutMs: 60_000 })
  const ids = new Set(got.map((m) => m.value!.toString()))
  assert.equal(ids.size, FILES * PER_FILE, 'every frame of every file reached Kafka')
  assert.ok(got.length - ids.size <= PER_FILE, `duplicates ${got.length - ids.size}: at most the one file under way`)
  assert.equal(await second.stop(), 0)
})

test('a backup file with a torn last frame replays all its whole frames', async () => {
  const topic = 'torn_replay'
  const dir = await makeTempDir()
  await mkdir(join(dir, 'backup', topic), { recursive: true })
  const whole = encodeFrames(Array.from({ length: 500 }, (_, i) => ({ bucket: topic, key: null, payload: `t${i}` })))
  const torn = encodeFrames([{ bucket: topic, payload: 'never whole' }]).subarray(0, 9)
  await writeFile(join(dir, 'backup', topic, '1700000000-AbCdEfGh.frames'), Buffer.concat([whole, torn]))
  const k = await startKahetsWithMetrics({ buckets: kafkaConfig(broker.bootstrap, topic), dir })
  await waitFor(async () => !existsSync(join(dir, 'backup', topic, '1700000000-AbCdEfGh.frames')), { timeoutMs: 60_000, what: 'the file replayed and removed' })
  const got = await consumeAll(broker.bootstrap, topic, { expected: 500, timeoutMs: 30_000 })
  assert.deepEqual(got.map((m) => m.value!.toString()), Array.from({ length: 500 }, (_, i) => `t${i}`))
  const m = await scrape(k.metrics)
  assert.equal(sample(m, 'kahets_replay_torn_frames_total', { stream: 'kafka' }), 1)
  assert.ok(k.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('backup file ends in a torn frame')))
  assert.equal(await k.stop(), 0)
})

test('kahets replay FILE sends a frame file through the running kahets', async () => {
  const topic = 'manual_replay'
  const k = await startKahets({ buckets: kafkaConfig(broker.bootstrap, topic) })
  const file = join(k.dir, 'old.frames')
  await writeFile(file, Buffer.concat([
    encodeFrames(Array.from({ length: 300 }, (_, i) => ({ bucket: topic, key: `k${i}`, payload: `r${i}` }))),
    Buffer.from([0x09, 0, 0, 0, 0x01]),
  ]))
  const { execFile } = await import('node:child_process')
  const out = await new Promise<string>((resolve, reject) => {
    execFile(join(import.meta.dirname, '../../bin/kahets'), ['replay', file], { env: { ...process.env, SOCKET: k.socket } }, (err, stdout) => { if (err) reject(err); else resolve(stdout) })
  })
  assert.match(out, /300 frames sent, torn tail of 5 bytes skipped/)
  const got = await consumeAll(broker.bootstrap, topic, { expected: 300, timeoutMs: 30_000 })
  assert.deepEqual(got.map((m) => m.value!.toString()), Array.from({ length: 300 }, (_, i) => `r${i}`))
  assert.equal(await k.stop(), 0)
})

test('a backed-up message the stream refuses on replay is counted in kahets_replay_refused_total', async () => {
  const topic = 'failover_refused'
  const late = await startBroker()
  await late.stop()
  const k = await startKahetsWithMetrics({ buckets: kafkaConfig(late.bootstrap, topic, { 'message.max.bytes': '2000' }) })
  const base = k.metrics
  const client = await KahetsClient.connect(k.socket)
  for (let i = 0; i < 10; i++) client.send(topic, payload(7, i), null)
  await client.flush()
  // On the backup now: from here on the Kafka stream is not asked, so a frame above its
  // message.max.bytes goes to the backup too (it could not have been refused sooner).
  await waitFor(async () => sample(await scrape(base), 'kahets_backed_up_total') === 10 ? true : null, { timeoutMs: 30_000, what: 'the failover' })
  client.send(topic, Buffer.alloc(5000, 0x61), null)
  await client.flush()
  await client.close()
  await waitFor(async () => sample(await scrape(base), 'kahets_backed_up_total') === 11 ? true : null, { what: 'the big frame in the backup' })

  await late.start()
  const s = await waitFor(async () => {
    const m = await scrape(base)
    return sample(m, 'kahets_replay_refused_total') === 1 && sample(m, 'kahets_replayed_total') >= 10 ? m : null
  }, { timeoutMs: 60_000, what: 'the replay' })
  assert.equal(sample(s, 'kahets_replay_refused_total', { bucket: topic, stream: 'kafka', reason: 'message_too_large' }), 1)
  assertIdentity(s, topic, 'kafka')
  const got = await consumeAll(late.bootstrap, topic, { expected: 10, timeoutMs: 30_000 })
  assert.deepEqual(new Set(got.map((m) => m.value!.toString())), new Set(Array.from({ length: 10 }, (_, i) => payload(7, i))))
  assert.equal(await k.stop(), 0)
  await late.stop()
})
