// KafkaStream against a real broker (scripts/kafka.sh through test/helpers/broker.ts), read back
// with readers kahets did not write: a plain kafkajs consumer and, where installed, kcat
// (librdkafka, so it also vouches for the compressed batches our codecs produce).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { Kafka, logLevel } from 'kafkajs'
import { pino } from 'pino'
import { KAFKA_DEFAULTS, type Compression, type KafkaClient, type KafkaSettings } from '../../src/config/buckets.ts'
import { ErrorCodes, KahetsError } from '../../src/errors.ts'
import type { Logger } from '../../src/log.ts'
import { encodeFrames, type OutgoingMessage } from '../../src/protocol/encoder.ts'
import type { Frame } from '../../src/protocol/frame.ts'
import { BatchingKafkaStream } from '../../src/streams/kafka-batching.ts'
import { createKafkajsClient } from '../../src/streams/kafkajs-client.ts'
import { crc32 } from '../../src/streams/kafka-partitioner.ts'
import { createPlatformaticClient } from '../../src/streams/platformatic-client.ts'
import { type Broker, type ConsumedMessage, consumeAll, createTopic, hasKcat, kcatCount, kcatRead, startBroker } from '../helpers/broker.ts'
import { decodeAll } from '../helpers/frames.ts'
import { waitFor } from '../helpers/wait.ts'

const TEST_TIMEOUT = 180_000
const READ_TIMEOUT = 30_000

let broker: Broker
const logLines: string[] = []
const log: Logger = pino({ level: 'debug' }, { write: (line: string) => { logLines.push(line) } })
const open = new Set<BatchingKafkaStream>()

// Every test runs once per client; platformatic's topics carry a suffix so each reads only its own.
const CLIENTS: ReadonlyArray<{ client: KafkaClient, sfx: string }> = [{ client: 'kafkajs', sfx: '' }, { client: 'platformatic', sfx: '-pk' }]

before(async () => {
  broker = await startBroker()
})

after(async () => {
  // A failed assertion must not leave a producer holding the event loop open.
  await Promise.allSettled([...open].map((s) => s.close()))
})

function settings (overrides: Partial<KafkaSettings> = {}): KafkaSettings {
  return {
    ...KAFKA_DEFAULTS,
    brokers: [broker.bootstrap],
    ssl: null,
    sasl: null,
    // The broker's own limit is ~1 MB; these tests send 512 KiB payloads.
    messageMaxBytes: 1048576,
    ...overrides,
  }
}

function makeStream (client: KafkaClient, overrides: Partial<KafkaSettings> = {}, id = 'kafka-test'): BatchingKafkaStream {
  const s = new BatchingKafkaStream(id, settings({ ...overrides, client }), log, client === 'platformatic' ? createPlatformaticClient : createKafkajsClient)
  open.add(s)
  return s
}

async function closeStream (s: BatchingKafkaStream): Promise<void> {
  await s.close()
  open.delete(s)
}

/** Frames as kahets sees them: encoded on the wire format, then decoded by its own decoder. */
function frames (msgs: OutgoingMessage[]): Frame[] {
  const decoded = decodeAll(encodeFrames(msgs))
  assert.equal(decoded.invalid + decoded.trailing, 0)
  return decoded.frames
}

function messages (bucket: string, count: number, make: (i: number) => { key: string | null, payload: Buffer }): OutgoingMessage[] {
  return Array.from({ length: count }, (_, i) => ({ bucket, ...make(i) }))
}

async function read (topic: string, expected: number): Promise<ConsumedMessage[]> {
  return await consumeAll(broker.bootstrap, topic, { expected, timeoutMs: READ_TIMEOUT })
}

/** Every frame arrived once, in order (one partition), with its key, bytes and timestamp. */
function assertSame (got: ConsumedMessage[], sent: Frame[]): void {
  assert.equal(got.length, sent.length, `got ${got.length} of ${sent.length} messages`)
  got.forEach((m, i) => {
    const f = sent[i]!
    assert.deepEqual(m.key, f.key, `key of message ${i}`)
    assert.ok(m.value !== null && m.value.equals(f.payload), `value of message ${i} differs (${m.value?.length} vs ${f.payload.length} bytes)`)
    assert.equal(m.timestamp, String(f.receivedAt))
  })
}

async function assertKcatBytes (topic: string, sent: Frame[]): Promise<void> {
  if (!hasKcat()) return
  assert.equal(await kcatCount(broker.bootstrap, topic), sent.length)
  assert.deepEqual(await kcatRead(broker.bootstrap, topic), Buffer.concat(sent.map((f) => f.payload)))
}

// Bytes that break text handling: NUL, newlines, CR, 0xff, and the empty value.
function awkward (i: number): Buffer {
  if (i % 50 === 0) return Buffer.alloc(0)
  return Buffer.concat([Buffer.from(`m${i}`), Buffer.from([0x00, 0x0a, 0x0d, 0xff, 0x00]), Buffer.from('\n\n'), Buffer.alloc(i % 7)])
}

for (const { client, sfx } of CLIENTS) {
  describe(`client ${client}`, () => {
    const newStream = (overrides: Partial<KafkaSettings> = {}, id = 'kafka-test'): BatchingKafkaStream => makeStream(client, overrides, id)

    test('three topics at once: exact counts, null keys, identical bytes, 512 KiB payloads', { timeout: TEST_TIMEOUT }, async (t) => {
      if (!hasKcat()) t.diagnostic('kcat not installed: only the kafkajs reader is checked')
      const stream = newStream()
      const a = frames(messages(`ks-awkward${sfx}`, 600, (i) => ({ key: i % 3 === 0 ? null : `k${i % 5}`, payload: awkward(i) })))
      const b = frames(messages(`ks-nullkeys${sfx}`, 250, (i) => ({ key: null, payload: Buffer.from(`null-key ${i}`) })))
      const big = frames([
        ...messages(`ks-big${sfx}`, 4, (i) => ({ key: `big${i}`, payload: randomBytes(512 * 1024) })),
        { bucket: `ks-big${sfx}`, key: 'small', payload: Buffer.from([0]) },
        { bucket: `ks-big${sfx}`, key: null, payload: randomBytes(512 * 1024 - 1) },
      ])
      // One bucket may have only one write outstanding (the stream actor's rule), so a bucket's
      // frames go in consecutive writes while the three buckets proceed side by side.
      const inOrder = async (bucket: Frame[], parts: number): Promise<void> => {
        const size = Math.ceil(bucket.length / parts)
        for (let i = 0; i < bucket.length; i += size) assert.equal(await stream.write(bucket[0]!.bucket, bucket.slice(i, i + size)), undefined)
      }
      await Promise.all([inOrder(a, 3), inOrder(b, 1), inOrder(big, 2)])
      await closeStream(stream)

      assertSame(await read(`ks-awkward${sfx}`, a.length), a)
      assertSame(await read(`ks-nullkeys${sfx}`, b.length), b)
      assertSame(await read(`ks-big${sfx}`, big.length), big)
      await assertKcatBytes(`ks-awkward${sfx}`, a)
      await assertKcatBytes(`ks-big${sfx}`, big)
    })

    test('per-key order and librdkafka key placement on a 3-partition topic', { timeout: TEST_TIMEOUT }, async () => {
      await createTopic(broker.bootstrap, `ks-partitioned${sfx}`, 3)
      const stream = newStream({ batchNumMessages: 50 })
      const sent = frames(messages(`ks-partitioned${sfx}`, 900, (i) => ({ key: `key-${i % 12}`, payload: Buffer.from(`${i % 12}:${Math.floor(i / 12)}`) })))
      for (let i = 0; i < sent.length; i += 300) assert.equal(await stream.write(`ks-partitioned${sfx}`, sent.slice(i, i + 300)), undefined)
      await closeStream(stream)

      const got = await read(`ks-partitioned${sfx}`, sent.length)
      assert.equal(got.length, sent.length)
      const next = new Map<string, number>()
      for (const m of got) {
        const key = m.key!.toString()
        const [k, seq] = m.value!.toString().split(':').map(Number)
        assert.equal(`key-${k}`, key)
        assert.equal(seq, next.get(key) ?? 0, `message ${seq} of ${key} out of order`)
        next.set(key, seq! + 1)
        // The partition kahego (librdkafka, consistent_random) would have chosen for this key.
        assert.equal(m.partition, crc32(m.key!) % 3, `partition of ${key}`)
      }
      assert.equal(next.size, 12)
      assert.equal(new Set(got.map((m) => m.partition)).size, 3, 'keys spread over the partitions')
    })

    for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as Compression[]) {
      test(`compression.codec ${codec}: produced, stored and read back byte for byte`, { timeout: TEST_TIMEOUT }, async () => {
        const topic = `ks-codec-${codec}${sfx}`
        const stream = newStream({ compression: codec, batchNumMessages: 400 })
        const sent = frames(messages(topic, 1000, (i) => ({
          key: i % 4 === 0 ? null : `k${i % 9}`,
          // Mostly compressible, with incompressible stretches and the awkward bytes.
          payload: i % 10 === 0 ? randomBytes(3000) : Buffer.concat([Buffer.from(`${topic} message ${i} `.repeat(20)), awkward(i)]),
        })))
        assert.equal(await stream.write(topic, sent), undefined)
        await closeStream(stream)
        assertSame(await read(topic, sent.length), sent)
        await assertKcatBytes(topic, sent)
      })
    }

    // Long runs of one byte in batches of several 64 KiB blocks: the case where a codec's
    // frames decoded with the lz4 CLI but Kafka's own decoder refused them.
    for (const codec of ['gzip', 'snappy', 'lz4', 'zstd'] as Compression[]) {
      test(`compression.codec ${codec}: a large, highly compressible batch`, { timeout: TEST_TIMEOUT }, async () => {
        const topic = `ks-codec-big-${codec}${sfx}`
        const stream = newStream({ compression: codec, batchNumMessages: 10_000 })
        const sent = frames(messages(topic, 5000, (i) => ({ key: `k${i % 7}`, payload: Buffer.alloc(100, i % 251) })))
        assert.equal(await stream.write(topic, sent), undefined)
        await closeStream(stream)
        assertSame(await read(topic, sent.length), sent)
      })
    }

    for (const acks of [0, 1, -1] as const) {
      test(`acks ${acks === -1 ? 'all' : acks}: every message arrives`, { timeout: TEST_TIMEOUT }, async () => {
        const topic = `ks-acks-${acks === -1 ? 'all' : acks}${sfx}`
        const stream = newStream({ acks })
        const sent = frames(messages(topic, 300, (i) => ({ key: `k${i}`, payload: awkward(i + 1) })))
        for (let i = 0; i < sent.length; i += 100) assert.equal(await stream.write(topic, sent.slice(i, i + 100)), undefined)
        await closeStream(stream)
        assertSame(await read(topic, sent.length), sent)
      })
    }

    test('batch.num.messages bounds the messages per produce request', { timeout: TEST_TIMEOUT }, async () => {
      const counts: Record<number, number> = {}
      for (const batchNumMessages of [100, 1000]) {
        const topic = `ks-bnm-${batchNumMessages}${sfx}`
        await createTopic(broker.bootstrap, topic)
        // A long linger, so only the message count can release a batch.
        const stream = newStream({ batchNumMessages, lingerMs: 60_000 })
        assert.equal(await stream.probe(), true)
        const sent = frames(messages(topic, 1000, (i) => ({ key: null, payload: Buffer.from(`m${i}`) })))
        // A test may do what the stream actor never does: 1000 writes of one frame, all at once.
        const results = await Promise.all(sent.map((f) => stream.write(topic, [f])))
        assert.ok(results.every((r) => r === undefined))
        counts[batchNumMessages] = stream.produceRequests
        await closeStream(stream)
        assertSame(await read(topic, sent.length), sent)
      }
      assert.equal(counts[100], 10)
      assert.equal(counts[1000], 1)
    })

    test('queue.buffering.max.ms lets writes that arrive apart share a request', { timeout: TEST_TIMEOUT }, async () => {
      const topics = Array.from({ length: 20 }, (_, i) => `ks-linger-${i}${sfx}`)
      for (const topic of topics) await createTopic(broker.bootstrap, topic)
      const counts: Record<number, number> = {}
      for (const lingerMs of [0, 500]) {
        const stream = newStream({ lingerMs, maxInFlight: 50 })
        assert.equal(await stream.probe(), true)
        const pending: Array<Promise<unknown>> = []
        for (const topic of topics) {
          pending.push(stream.write(topic, frames([{ bucket: topic, key: null, payload: Buffer.from(`linger ${lingerMs}`) }])))
          // A full turn of the event loop between writes: with no linger each one leaves at once.
          await nextTurn()
        }
        assert.ok((await Promise.all(pending)).every((r) => r === undefined))
        counts[lingerMs] = stream.produceRequests
        await closeStream(stream)
      }
      assert.equal(counts[0], 20)
      assert.ok(counts[0]! >= 5 * counts[500]!, `linger 500 ms took ${counts[500]} requests, linger 0 took ${counts[0]}`)
      for (const topic of topics) assert.equal((await read(topic, 2)).length, 2)
    })

    test('close() sends what is still lingering', { timeout: TEST_TIMEOUT }, async () => {
      const stream = newStream({ lingerMs: 600_000 })
      const sent = frames(messages(`ks-close${sfx}`, 50, (i) => ({ key: null, payload: Buffer.from(`c${i}`) })))
      const written = stream.write(`ks-close${sfx}`, sent)
      assert.equal(stream.produceRequests, 0)
      await closeStream(stream)
      assert.equal(await written, undefined)
      assertSame(await read(`ks-close${sfx}`, sent.length), sent)
      await assert.rejects(stream.write(`ks-close${sfx}`, sent), (e: unknown) => e instanceof KahetsError && e.code === ErrorCodes.STREAM_UNAVAILABLE)
    })

    test('a message over message.max.bytes is refused and counted; the rest keeps flowing', { timeout: TEST_TIMEOUT }, async () => {
      const stream = newStream({ messageMaxBytes: 100_000 })
      const mixed = frames([
        { bucket: `ks-size-mixed${sfx}`, key: 'a', payload: Buffer.from('before') },
        { bucket: `ks-size-mixed${sfx}`, key: 'b', payload: randomBytes(100_000) }, // key + payload = 100 001
        { bucket: `ks-size-mixed${sfx}`, key: null, payload: randomBytes(99_999) }, // 99 999: fits
        { bucket: `ks-size-mixed${sfx}`, key: 'c', payload: Buffer.from('after') },
      ])
      const other = frames(messages(`ks-size-other${sfx}`, 100, (i) => ({ key: null, payload: Buffer.from(`o${i}`) })))
      const [r1, r2] = await Promise.all([stream.write(`ks-size-mixed${sfx}`, mixed), stream.write(`ks-size-other${sfx}`, other)])
      assert.deepEqual(r1, new Map([['message_too_large', 1]]))
      assert.equal(r2, undefined)
      await closeStream(stream)
      assertSame(await read(`ks-size-mixed${sfx}`, 3), [mixed[0]!, mixed[2]!, mixed[3]!])
      assertSame(await read(`ks-size-other${sfx}`, other.length), other)
    })

    test('a batch the broker finds too large is split; only the message it refuses alone is dropped', { timeout: TEST_TIMEOUT }, async (t) => {
      const topic = `ks-size-broker${sfx}`
      const otherTopic = `ks-size-broker-other${sfx}`
      const admin = new Kafka({ clientId: 'kahets-test-admin', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin()
      await admin.connect()
      try {
        // Below our message.max.bytes: only the broker knows this topic's limit.
        await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '3000' }] }], waitForLeaders: true })
      } finally {
        await admin.disconnect()
      }
      await createTopic(broker.bootstrap, otherTopic)
      const stream = newStream()
      const round = (r: number): { sent: Frame[], other: Frame[] } => ({
        sent: frames(messages(topic, 12, (i) => ({ key: `k${i}`, payload: Buffer.alloc(i === 7 ? 5000 : 600, r * 16 + i) }))),
        other: frames(messages(otherTopic, 10, (i) => ({ key: null, payload: Buffer.from(`round${r} x${i}`) }))),
      })
      const first = round(1)
      const second = round(2)
      for (const { sent, other } of [first, second]) {
        // Written together, so they may share a request.
        const [r1, r2] = await Promise.all([stream.write(topic, sent), stream.write(otherTopic, other)])
        assert.deepEqual(r1, new Map([['message_too_large', 1]]))
        assert.equal(r2, undefined)
      }
      await closeStream(stream)
      const drop7 = (f: Frame[]): Frame[] => f.filter((_, i) => i !== 7)
      assertSame(await read(topic, 22), [...drop7(first.sent), ...drop7(second.sent)])

      // The first shared request's refusal may follow the other topic's accepted append (kafkajs
      // reports a produce response all-or-nothing), so round 1 may arrive twice; the refused topic
      // is sent alone afterwards, so round 2 arrives exactly once.
      const got = await read(otherTopic, 20)
      const values = got.map((m) => m.value!.toString())
      for (const f of first.other) assert.ok(values.includes(f.payload.toString()), `${f.payload.toString()} missing`)
      for (const f of second.other) assert.equal(values.filter((v) => v === f.payload.toString()).length, 1, `${f.payload.toString()} not exactly once`)
      t.diagnostic(`other topic: ${got.length} messages for 20 written`)
      assert.ok(logLines.some((l) => l.includes(`"bucket":"${topic}"`) && l.includes('MESSAGE_TOO_LARGE')), 'refusal logged with the bucket')
    })

    test('a request one partition refuses and another takes: the taken one is in Kafka once', {
      timeout: TEST_TIMEOUT,
      skip: client === 'kafkajs' ? 'kafkajs reports a produce request all or nothing (docs/kafka-clients.md)' : false,
    }, async () => {
      // One broker: both topics' batches go in one produce request to it. The broker refuses the
      // compacted topic's batch (INVALID_RECORD: a message without a key) and appends the
      // other's. Sending that request again whole, as platformatic's own retries did, would put
      // the taken topic's messages in Kafka twice.
      const taken = `ks-partly-taken${sfx}`
      const compacted = `ks-partly-compacted${sfx}`
      await createTopic(broker.bootstrap, taken)
      await createTopic(broker.bootstrap, compacted, 1, { 'cleanup.policy': 'compact' })
      const stream = newStream({ lingerMs: 200 })
      const good = frames(messages(taken, 100, (i) => ({ key: `k${i % 3}`, payload: Buffer.from(`taken${i}`) })))
      const keyless = frames(messages(compacted, 4, (i) => ({ key: null, payload: Buffer.from(`keyless${i}`) })))
      const requestsBefore = stream.produceRequests
      const [r1, r2] = await Promise.all([stream.write(taken, good), stream.write(compacted, keyless)])
      assert.equal(r1, undefined)
      assert.deepEqual(r2, new Map([['topic_rejected', 4]]), 'each keyless message refused alone, then dropped')
      assert.ok(stream.produceRequests - requestsBefore >= 2, 'the refused topic went again on its own')
      await closeStream(stream)
      assertSame(await read(taken, good.length), good)
      if (hasKcat()) assert.equal(await kcatCount(broker.bootstrap, taken), good.length, 'no message of the taken topic twice')
      assert.ok(logLines.some((l) => l.includes(`"bucket":"${compacted}"`) && l.includes('INVALID_RECORD')), 'refusal logged with the bucket')
    })

    test('an invalid topic is refused and counted without stalling the topic beside it', { timeout: TEST_TIMEOUT }, async () => {
      // Kafka allows 249 characters; one name per client, so each client's refusal is logged by it.
      const invalid = (client === 'kafkajs' ? 'x' : 'y').repeat(250)
      const stream = newStream()
      const bad = frames(messages(invalid, 5, (i) => ({ key: null, payload: Buffer.from(`bad${i}`) })))
      const good = frames(messages(`ks-valid-beside${sfx}`, 200, (i) => ({ key: `k${i % 3}`, payload: Buffer.from(`good${i}`) })))
      // Written together, so they share a request first.
      const [r1, r2] = await Promise.all([stream.write(invalid, bad), stream.write(`ks-valid-beside${sfx}`, good.slice(0, 100))])
      assert.deepEqual(r1, new Map([['topic_rejected', 5]]))
      assert.equal(r2, undefined)
      // And again: kafkajs must not have kept the bad topic in its metadata set.
      const [r3, r4] = await Promise.all([stream.write(invalid, bad.slice(0, 2)), stream.write(`ks-valid-beside${sfx}`, good.slice(100))])
      assert.deepEqual(r3, new Map([['topic_rejected', 2]]))
      assert.equal(r4, undefined)
      await closeStream(stream)
      assertSame(await read(`ks-valid-beside${sfx}`, good.length), good)
      const refusals = logLines.filter((l) => l.includes(`"bucket":"${invalid}"`) && l.includes('INVALID_TOPIC_EXCEPTION'))
      assert.ok(refusals.length >= 1, 'refusal logged with the bucket name')
    })

    test('a broker that stops answering (SIGSTOP) fails the write after one request timeout', { timeout: TEST_TIMEOUT }, async (t) => {
      const topic = `ks-hung${sfx}`
      const stream = newStream({ requestTimeoutMs: 1000 })
      assert.equal(await stream.write(topic, frames([{ bucket: topic, key: null, payload: Buffer.from('before') }])), undefined)
      // The broker helper keeps the JVM's PID beside its data dir; only that process is signalled.
      const pid = Number(readFileSync(path.join(path.dirname(broker.dataDir), `kafka-${broker.port}.pid`), 'utf8').trim())
      assert.ok(Number.isInteger(pid) && pid > 1)
      process.kill(pid, 'SIGSTOP')
      try {
        const stoppedAt = Date.now()
        // The kernel still accepts connections for a stopped process: only timeouts can tell.
        await assert.rejects(stream.write(topic, frames([{ bucket: topic, key: null, payload: Buffer.from('during') }])),
          (e: unknown) => e instanceof KahetsError && e.code === ErrorCodes.STREAM_UNAVAILABLE && e.retriable)
        const ms = Date.now() - stoppedAt
        t.diagnostic(`write rejected ${ms} ms after SIGSTOP (request.timeout.ms 1000)`)
        assert.ok(ms < 10_000, `took ${ms} ms`)
        assert.equal(await stream.probe(), false)
      } finally {
        process.kill(pid, 'SIGCONT')
      }
      await waitFor(async () => { await stream.reset(); return await stream.probe() }, { timeoutMs: 60_000, intervalMs: 200, what: 'probe() true after SIGCONT' })
      assert.equal(await stream.write(topic, frames([{ bucket: topic, key: null, payload: Buffer.from('after') }])), undefined)
      await closeStream(stream)
      // "during" may or may not have reached the log before the broker froze: at-least-once.
      const values = (await read(topic, 3)).map((m) => m.value!.toString())
      assert.equal(values[0], 'before')
      assert.equal(values.at(-1), 'after')
    })
  })
}

// Last: it takes the shared broker down and up again (once per client, each restarting it).
for (const { client, sfx } of CLIENTS) {
  describe(`client ${client}`, () => {
    const newStream = (overrides: Partial<KafkaSettings> = {}, id = 'kafka-test'): BatchingKafkaStream => makeStream(client, overrides, id)


    test('broker killed: writes reject STREAM_UNAVAILABLE, probe false, then back after start and reset', { timeout: TEST_TIMEOUT }, async (t) => {
      const topic = `ks-outage${sfx}`
      const stream = newStream()
      const earlier = frames(messages(topic, 10, (i) => ({ key: null, payload: Buffer.from(`before${i}`) })))
      assert.equal(await stream.write(topic, earlier), undefined)

      await broker.kill()
      const killedAt = Date.now()
      const during = frames(messages(topic, 10, (i) => ({ key: null, payload: Buffer.from(`during${i}`) })))
      const isUnavailable = (e: unknown): boolean => e instanceof KahetsError && e.code === ErrorCodes.STREAM_UNAVAILABLE && e.retriable
      await assert.rejects(stream.write(topic, during), isUnavailable)
      const detectMs = Date.now() - killedAt
      t.diagnostic(`write rejected ${detectMs} ms after SIGKILL`)
      assert.ok(detectMs < 10_000, `took ${detectMs} ms to notice the broker was gone`)
      // Until reset(), the stream says so at once instead of trying again.
      await assert.rejects(stream.write(topic, during), isUnavailable)
      await stream.reset()
      assert.equal(await stream.probe(), false)

      await broker.start()
      // The stream actor's recovery loop: reset, then probe.
      await waitFor(async () => { await stream.reset(); return await stream.probe() }, { timeoutMs: 60_000, intervalMs: 500, what: 'probe() true after the broker restarted' })
      const later = frames(messages(topic, 10, (i) => ({ key: `k${i}`, payload: Buffer.from(`after${i}`) })))
      assert.equal(await stream.write(topic, later), undefined)
      await closeStream(stream)
      assertSame(await read(topic, 20), [...earlier, ...later])
    })
  })
}
