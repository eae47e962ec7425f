// The batching layer's leader-change handling (issue 12, docs/kafka.md) with a scripted client:
// a produce that fails while the cluster answers is sent again in order; one that fails while
// no broker answers, or past message.timeout.ms, fails the write (the stream then fails over).
// The real thing, a leader SIGKILLed on a 3-node cluster, is test/integration/kafka-cluster.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import pino from 'pino'
import { parseBucketsConfig, type KafkaSettings } from '../../src/config/buckets.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { BatchingKafkaStream } from '../../src/streams/kafka-batching.ts'
import { PartlyAcknowledged, type KafkaClient, type PartitionBatch, type TopicPartitions } from '../../src/streams/kafka-client.ts'
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
/** As the clients report a topic-level answer: its name and its numeric protocol code. */
const leaderNotAvailable = (): Error => Object.assign(new Error('LEADER_NOT_AVAILABLE'), { type: 'LEADER_NOT_AVAILABLE', code: 5 })
const refused = (): Error => Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })
const reset = (): Error => Object.assign(new Error('socket closed'), { code: 'ECONNRESET' })

/**
 * produce() fails with the next scripted error, then succeeds; what succeeded is recorded in
 * order. The topic has two partitions, so a request can be acknowledged by one leader only.
 */
class ScriptedClient implements KafkaClient {
  readonly failures: Error[]
  /** Instead of failing whole, the next request reports partition 0's batch acknowledged. */
  partlyOnce = false
  metadataAnswers = true
  /** metadata(…, refresh = true) calls: the stream asking for the current leaders. */
  refreshes = 0
  readonly delivered: string[] = []

  constructor (failures: Error[]) {
    this.failures = failures
  }

  async connect (): Promise<void> {}

  async metadata (topics: readonly string[], refresh = false): Promise<ReadonlyMap<string, TopicPartitions>> {
    if (refresh) {
      this.refreshes++
      if (!this.metadataAnswers) throw refused()
    }
    return new Map(topics.map((t) => [t, { count: 2, led: [0, 1] }]))
  }

  async produce (batches: readonly PartitionBatch[]): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve))
    const record = (b: PartitionBatch): void => { for (const f of b.frames) this.delivered.push(f.payload.toString()) }
    if (this.partlyOnce) {
      this.partlyOnce = false
      const taken = batches.filter((b) => b.partition === 0)
      taken.forEach(record)
      throw new PartlyAcknowledged(new Set(taken), refused())
    }
    const failure = this.failures.shift()
    if (failure !== undefined) throw failure
    batches.forEach(record)
  }

  async close (): Promise<void> {}
}

function scripted (id: string, s: KafkaSettings, failures: Error[]): { stream: BatchingKafkaStream, client: ScriptedClient } {
  const client = new ScriptedClient(failures)
  return { stream: new BatchingKafkaStream(id, s, log, () => client), client }
}

const frames = (from: number, n: number, key = (_i: number): string => 'k') =>
  decodeAll(encodeFrames(Array.from({ length: n }, (_, i) => ({ bucket: 't', key: key(from + i), payload: String(from + i) })))).frames

test('NOT_LEADER_OR_FOLLOWER and refused connections while the cluster answers: sent again, in order, nothing failed', async () => {
  const { stream, client } = scripted('retry-order', settings({ 'batch.num.messages': '10', acks: '1' }), [protocolError('NOT_LEADER_OR_FOLLOWER'), refused(), refused()])
  const writes = [stream.write('t', frames(0, 10)), stream.write('t', frames(10, 10)), stream.write('t', frames(20, 10))]
  await Promise.all(writes)
  assert.deepEqual(client.delivered, Array.from({ length: 30 }, (_, i) => String(i)))
  assert.equal(client.refreshes, 3, 'the leaders were asked again after each failure')
  const stats = kafkaStreamStats('retry-order')
  assert.equal(stats.retries, 3)
  assert.equal(stats.resentUnknown, 0, 'none of those can have been written')
  await stream.close()
})

test('acks=all: NOT_LEADER_OR_FOLLOWER may come after the old leader appended, so its retry counts as a possible duplicate', async () => {
  const { stream, client } = scripted('retry-acks-all', settings({ acks: 'all' }), [protocolError('NOT_LEADER_OR_FOLLOWER'), protocolError('NOT_ENOUGH_REPLICAS')])
  await stream.write('t', frames(0, 5))
  assert.equal(client.delivered.length, 5)
  const stats = kafkaStreamStats('retry-acks-all')
  assert.equal(stats.retries, 2)
  assert.equal(stats.resentUnknown, 5, 'only the NOT_LEADER_OR_FOLLOWER retry: NOT_ENOUGH_REPLICAS is checked before the append')
  await stream.close()
})

test('a connection lost mid-request is retried and counted as a possible duplicate', async () => {
  const { stream, client } = scripted('retry-unknown', settings(), [reset()])
  await stream.write('t', frames(0, 5))
  assert.equal(client.delivered.length, 5)
  assert.equal(kafkaStreamStats('retry-unknown').resentUnknown, 5)
  await stream.close()
})

test('a request acknowledged by some leaders and not others (PartlyAcknowledged): only the rest is sent again', async () => {
  const { stream, client } = scripted('retry-partly', settings(), [])
  client.partlyOnce = true
  // Twenty keys: both partitions get some.
  await stream.write('t', frames(0, 20, (i) => `key-${i}`))
  assert.deepEqual([...client.delivered].sort(), Array.from({ length: 20 }, (_, i) => String(i)).sort(), 'each message once')
  const stats = kafkaStreamStats('retry-partly')
  assert.equal(stats.retries, 1)
  assert.equal(stats.resentUnknown, 0, 'a refused connection wrote nothing, and the acknowledged part is not resent')
  await stream.close()
})

test('no broker answers the metadata request: the write fails at once (the stream fails over)', async () => {
  const { stream, client } = scripted('retry-down', settings(), [refused(), refused()])
  client.metadataAnswers = false
  const started = performance.now()
  await assert.rejects(stream.write('t', frames(0, 5)), /cluster not answering/)
  assert.ok(performance.now() - started < 1000)
  assert.deepEqual(client.delivered, [])
  await assert.rejects(stream.write('t', frames(5, 1)), /unavailable/, 'later writes fail until reset()')
})

test('still failing after message.timeout.ms: the write fails', async () => {
  const failures = Array.from({ length: 100 }, () => protocolError('NOT_ENOUGH_REPLICAS'))
  const { stream } = scripted('retry-timeout', settings({ 'message.timeout.ms': '1000', 'request.timeout.ms': '500' }), failures)
  const started = performance.now()
  await assert.rejects(stream.write('t', frames(0, 5)), /message\.timeout\.ms/)
  const took = performance.now() - started
  assert.ok(took >= 1000 && took < 3000, `failed over after ${Math.round(took)} ms`)
})

test('LEADER_NOT_AVAILABLE (an election) past the short topic schedule: retried with fresh metadata within message.timeout.ms, then delivered', async () => {
  // Five answers in a row take 5.75 s of back-off: longer than the four retries an unknown topic gets.
  const failures = Array.from({ length: 5 }, leaderNotAvailable)
  const { stream, client } = scripted('retry-election', settings(), failures)
  await stream.write('t', frames(0, 5))
  assert.deepEqual(client.delivered, ['0', '1', '2', '3', '4'])
  assert.ok(client.refreshes >= 5, `metadata asked again after each answer (${client.refreshes})`)
  await stream.close()
})

test('LEADER_NOT_AVAILABLE still after message.timeout.ms: only that topic is refused for now (its writes go to the backup)', async () => {
  const failures = Array.from({ length: 100 }, leaderNotAvailable)
  const { stream, client } = scripted('retry-election-timeout', settings({ 'message.timeout.ms': '1000', 'request.timeout.ms': '500' }), failures)
  await assert.rejects(stream.write('t', frames(0, 5)), (err: Error & { scope?: string }) => err.scope === 'destination' && /not available \(LEADER_NOT_AVAILABLE\)/.test(err.message))
  assert.deepEqual(client.delivered, [])
  await stream.close()
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
