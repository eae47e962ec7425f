// The batching layer's leader-change handling (issue 12, docs/kafka.md) with a scripted client:
// a produce that fails while the cluster answers is sent again in order; one that fails while
// no broker answers, or past message.timeout.ms, fails the write (the stream then fails over).
// The real thing, a leader SIGKILLed on a 3-node cluster, is test/integration/kafka-cluster.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import pino from 'pino'
import { parseBucketsConfig, type KafkaSettings } from '../../src/config/buckets.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { BatchingKafkaStream, PartlyProduced, type Chunk, type Item } from '../../src/streams/kafka-batching.ts'
import { kafkaStreamStats } from '../../src/streams/kafka-stream-stats.ts'
import { decodeAll } from '../helpers/frames.ts'

const log = pino({ level: 'silent' })

function settings (extra: Record<string, string> = {}): KafkaSettings {
  const c = parseBucketsConfig({
    streamsConfigs: { k: { type: 'kafka', settings: { 'bootstrap.servers': '127.0.0.1:1', 'queue.buffering.max.ms': '0', ...extra } } },
    buckets: [{ id: 't', streams: ['k'] }],
  })
  const s = c.streams.get('k')!
  assert.ok(s.type === 'kafka')
  return s.settings
}

/** Broker answers by their protocol name, as both clients report them. */
const protocolError = (type: string): Error => Object.assign(new Error(type), { type })
const refused = (): Error => Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })
const reset = (): Error => Object.assign(new Error('socket closed'), { code: 'ECONNRESET' })

/** produce() fails with the next scripted error, then succeeds; what succeeded is recorded in order. */
class ScriptedStream extends BatchingKafkaStream {
  readonly failures: Error[]
  /** Instead of failing whole, the next request reports its first half acknowledged. */
  partlyOnce = false
  metadataAnswers = true
  metadataRequests = 0
  readonly delivered: string[] = []

  constructor (id: string, s: KafkaSettings, failures: Error[]) {
    super(id, s, log)
    this.failures = failures
  }

  protected async produce (chunks: Chunk[]): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve))
    if (this.partlyOnce) {
      this.partlyOnce = false
      const items = chunks.flatMap((c) => c.items)
      const half = items.slice(0, Math.floor(items.length / 2))
      for (const i of half) this.delivered.push(i.frame.payload.toString())
      throw new PartlyProduced(new Set<Item>(half), refused())
    }
    const failure = this.failures.shift()
    if (failure !== undefined) throw failure
    for (const c of chunks) for (const i of c.items) this.delivered.push(i.frame.payload.toString())
  }

  protected async refreshMetadata (): Promise<void> {
    this.metadataRequests++
    if (!this.metadataAnswers) throw refused()
  }

  protected async disconnect (): Promise<void> {}
  async probe (): Promise<boolean> { return true }
  async reset (): Promise<void> { this.newGeneration() }
}

const frames = (from: number, n: number) =>
  decodeAll(encodeFrames(Array.from({ length: n }, (_, i) => ({ bucket: 't', key: 'k', payload: String(from + i) })))).frames

test('NOT_LEADER_OR_FOLLOWER and refused connections while the cluster answers: sent again, in order, nothing failed', async () => {
  const s = new ScriptedStream('retry-order', settings({ 'batch.num.messages': '10' }), [protocolError('NOT_LEADER_OR_FOLLOWER'), refused(), refused()])
  const writes = [s.write('t', frames(0, 10)), s.write('t', frames(10, 10)), s.write('t', frames(20, 10))]
  await Promise.all(writes)
  assert.deepEqual(s.delivered, Array.from({ length: 30 }, (_, i) => String(i)))
  assert.equal(s.metadataRequests, 3)
  const stats = kafkaStreamStats('retry-order')
  assert.equal(stats.retries, 3)
  assert.equal(stats.resentUnknown, 0, 'none of those can have been written')
  await s.close()
})

test('a connection lost mid-request is retried and counted as a possible duplicate', async () => {
  const s = new ScriptedStream('retry-unknown', settings(), [reset()])
  await s.write('t', frames(0, 5))
  assert.equal(s.delivered.length, 5)
  assert.equal(kafkaStreamStats('retry-unknown').resentUnknown, 5)
  await s.close()
})

test('a request acknowledged by some leaders and not others: only the rest is sent again', async () => {
  const s = new ScriptedStream('retry-partly', settings(), [])
  s.partlyOnce = true
  await s.write('t', frames(0, 10))
  assert.deepEqual(s.delivered, Array.from({ length: 10 }, (_, i) => String(i)), 'each message once')
  assert.equal(kafkaStreamStats('retry-partly').retries, 1)
  await s.close()
})

test('no broker answers the metadata request: the write fails at once (the stream fails over)', async () => {
  const s = new ScriptedStream('retry-down', settings(), [refused(), refused()])
  s.metadataAnswers = false
  const started = performance.now()
  await assert.rejects(s.write('t', frames(0, 5)), /cluster not answering/)
  assert.ok(performance.now() - started < 1000)
  assert.deepEqual(s.delivered, [])
  await assert.rejects(s.write('t', frames(5, 1)), /unavailable/, 'later writes fail until reset()')
})

test('still failing after message.timeout.ms: the write fails', async () => {
  const failures = Array.from({ length: 100 }, () => protocolError('NOT_ENOUGH_REPLICAS'))
  const s = new ScriptedStream('retry-timeout', settings({ 'message.timeout.ms': '1000', 'request.timeout.ms': '500' }), failures)
  const started = performance.now()
  await assert.rejects(s.write('t', frames(0, 5)), /message\.timeout\.ms/)
  const took = performance.now() - started
  assert.ok(took >= 1000 && took < 3000, `failed over after ${Math.round(took)} ms`)
})

test('message.timeout.ms and topic.metadata.refresh.interval.ms: defaults, aliases, bounds', () => {
  const d = settings()
  assert.equal(d.messageTimeoutMs, 30_000)
  assert.equal(d.metadataRefreshIntervalMs, 300_000)
  assert.equal(settings({ 'delivery.timeout.ms': '12000' }).messageTimeoutMs, 12_000)
  assert.equal(settings({ 'metadata.max.age.ms': '1000' }).metadataRefreshIntervalMs, 1000)
  const problems = (extra: Record<string, string>): string[] => {
    try {
      settings(extra)
    } catch (err) {
      return (err as { problems: Array<{ path: string, message: string }> }).problems.map((p) => `${p.path}: ${p.message}`)
    }
    return []
  }
  assert.match(problems({ 'message.timeout.ms': '0' }).join(), /\["message\.timeout\.ms"\]: not a whole number 1000\.\.3600000/)
  assert.match(problems({ 'message.timeout.ms': '2000', 'request.timeout.ms': '5000' }).join(), /less than request\.timeout\.ms/)
  assert.match(problems({ 'topic.metadata.refresh.interval.ms': '99999999' }).join(), /topic\.metadata\.refresh\.interval\.ms"\]: not a whole number 100\.\.3600000/)
})
