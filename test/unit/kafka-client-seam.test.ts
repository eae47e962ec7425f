// The Kafka stream through its client seam (kafka-client.ts) with a fake client: what the
// stream asks of a client, and where it places messages. The real clients against a real
// broker: test/integration/kafka-stream.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as platformatic from '@platformatic/kafka'
import { pino } from 'pino'
import { KAFKA_DEFAULTS, type KafkaSettings } from '../../src/config/buckets.ts'
import { ErrorCodes, KahetsError } from '../../src/errors.ts'
import { encodeFrames, type OutgoingMessage } from '../../src/protocol/encoder.ts'
import type { Frame } from '../../src/protocol/frame.ts'
import { BatchingKafkaStream } from '../../src/streams/kafka-batching.ts'
import { PartlyAcknowledged, type KafkaClient, type KafkaClientFactory, type PartitionBatch, type TopicPartitions } from '../../src/streams/kafka-client.ts'
import { classifyKafkaError } from '../../src/streams/kafka-errors.ts'
import { crc32 } from '../../src/streams/kafka-partitioner.ts'
import { acknowledgedPartitions } from '../../src/streams/platformatic-client.ts'
import { decodeAll } from '../helpers/frames.ts'

const log = pino({ level: 'silent' })
const settings: KafkaSettings = { ...KAFKA_DEFAULTS, brokers: ['127.0.0.1:1'], ssl: null, sasl: null, lingerMs: 0 }

class FakeClient implements KafkaClient {
  readonly calls: string[] = []
  readonly sent: PartitionBatch[][] = []
  closed: boolean | null = null
  produceError: unknown = null
  constructor (readonly purpose: 'stream' | 'probe', readonly partitions: ReadonlyMap<string, TopicPartitions>, readonly reachable = true) {}
  async connect (): Promise<void> {
    this.calls.push('connect')
    if (!this.reachable) throw new Error('connect ECONNREFUSED 127.0.0.1:1')
  }

  async metadata (topics: readonly string[]): Promise<ReadonlyMap<string, TopicPartitions>> {
    this.calls.push(`metadata ${topics.join(',')}`)
    return new Map(topics.flatMap((t) => { const p = this.partitions.get(t); return p === undefined ? [] : [[t, p] as const] }))
  }

  async produce (batches: readonly PartitionBatch[]): Promise<void> {
    this.calls.push('produce')
    if (this.produceError !== null) throw this.produceError
    this.sent.push([...batches])
  }

  async close (force: boolean): Promise<void> {
    this.closed = force
  }
}

function fakes (partitions: Record<string, TopicPartitions>, reachable = () => true): { made: FakeClient[], factory: KafkaClientFactory } {
  const made: FakeClient[] = []
  const factory: KafkaClientFactory = (_settings, _log, purpose) => {
    const c = new FakeClient(purpose, new Map(Object.entries(partitions)), reachable())
    made.push(c)
    return c
  }
  return { made, factory }
}

function frames (msgs: OutgoingMessage[]): Frame[] {
  return decodeAll(encodeFrames(msgs)).frames
}

test('a keyed message goes to crc32(key) mod partitions, the keyless ones of a request to one led partition', async () => {
  const { made, factory } = fakes({ t: { count: 4, led: [1, 3] } })
  const stream = new BatchingKafkaStream('k', settings, log, factory)
  const keyed = Array.from({ length: 40 }, (_, i) => ({ bucket: 't', key: `key-${i % 8}`, payload: Buffer.from(`k${i}`) }))
  const keyless = Array.from({ length: 10 }, (_, i) => ({ bucket: 't', key: null, payload: Buffer.from(`n${i}`) }))
  assert.equal(await stream.write('t', frames([...keyed, ...keyless])), undefined)
  await stream.close()
  const client = made[0]!
  assert.equal(client.purpose, 'stream')
  assert.deepEqual(client.calls, ['connect', 'metadata t', 'produce'])
  const batches = client.sent[0]!
  const keylessPartitions = new Set<number>()
  for (const b of batches) {
    assert.equal(b.topic, 't')
    for (const f of b.frames) {
      if (f.key === null) keylessPartitions.add(b.partition)
      else assert.equal(b.partition, crc32(f.key) % 4, `partition of ${f.key.toString()}`)
    }
  }
  assert.equal(keylessPartitions.size, 1, 'keyless messages of one request share a partition')
  assert.ok([1, 3].includes([...keylessPartitions][0]!), 'and it is one with a leader')
  assert.equal(batches.reduce((n, b) => n + b.frames.length, 0), 50)
  assert.equal(client.closed, false, 'close() lets the client finish')
})

test('per-partition order is the order written', async () => {
  const { made, factory } = fakes({ t: { count: 3, led: [0, 1, 2] } })
  const stream = new BatchingKafkaStream('k', settings, log, factory)
  const msgs = Array.from({ length: 300 }, (_, i) => ({ bucket: 't', key: `key-${i % 5}`, payload: Buffer.from(String(i)) }))
  assert.equal(await stream.write('t', frames(msgs)), undefined)
  await stream.close()
  for (const b of made[0]!.sent.flat()) {
    const seq = b.frames.map((f) => Number(f.payload.toString()))
    assert.deepEqual(seq, [...seq].sort((x, y) => x - y))
  }
})

test('a topic the client knows without partitions is not sent: retried, then its writes fail over (destination)', async () => {
  const { made, factory } = fakes({ t: { count: 0, led: [] } })
  const stream = new BatchingKafkaStream('k', settings, log, factory)
  await assert.rejects(stream.write('t', frames([{ bucket: 't', key: null, payload: Buffer.from('x') }])),
    (e: unknown) => e instanceof KahetsError && e.code === ErrorCodes.DESTINATION_REJECTED && e.scope === 'destination')
  assert.ok(!made[0]!.calls.includes('produce'))
  await stream.close()
})

test('a failure without a protocol code breaks the stream; reset() replaces the client (old one closed, forced)', async () => {
  const { made, factory } = fakes({ t: { count: 1, led: [0] } })
  const stream = new BatchingKafkaStream('k', settings, log, factory)
  made[0]!.produceError = new Error('connection closed')
  await assert.rejects(stream.write('t', frames([{ bucket: 't', key: null, payload: Buffer.from('x') }])),
    (e: unknown) => e instanceof KahetsError && e.code === ErrorCodes.STREAM_UNAVAILABLE)
  await stream.reset()
  assert.equal(made.length, 2)
  assert.equal(made[0]!.closed, true)
  assert.equal(await stream.write('t', frames([{ bucket: 't', key: null, payload: Buffer.from('y') }])), undefined)
  assert.equal(made[1]!.sent.length, 1)
  await stream.close()
})

test('probe() asks a throwaway client for metadata of no topic and closes it, whatever the answer', async () => {
  let up = true
  const { made, factory } = fakes({}, () => up)
  const stream = new BatchingKafkaStream('k', settings, log, factory)
  assert.equal(await stream.probe(), true)
  const probe = made[1]!
  assert.equal(probe.purpose, 'probe')
  assert.deepEqual(probe.calls, ['connect', 'metadata '])
  up = false
  assert.equal(await stream.probe(), false)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(probe.closed, true)
  assert.equal(made[2]!.closed, true)
  await stream.close()
})

test('a partly acknowledged produce names its acknowledged batches and is classified by its cause', () => {
  const batch: PartitionBatch = { topic: 't', partition: 0, frames: [] }
  const cause = Object.assign(new Error('Producing messages failed.'), { errors: [{ apiId: 'NOT_LEADER_OR_FOLLOWER' }] })
  const err = new PartlyAcknowledged(new Set([batch]), cause)
  assert.ok(err.acknowledged.has(batch))
  assert.deepEqual(classifyKafkaError(err), classifyKafkaError(cause))
  const refused = { apiId: 'TOPIC_AUTHORIZATION_FAILED' }
  assert.deepEqual(classifyKafkaError(new PartlyAcknowledged(new Set(), refused)), classifyKafkaError(refused))
})

test('platformatic: the partitions a failed send still got acknowledged, from other leaders and from the failed response itself', () => {
  // The shape platformatic's send() fails with: one error per failed leader (each marked
  // not-retried by kahets around the broker's ResponseError), the other leaders' results in
  // error.produced.offsets.
  const response = {
    responses: [
      { name: 'old', partitionResponses: [{ index: 0, errorCode: 0 }] },
      { name: 'new', partitionResponses: [{ index: 0, errorCode: 6 }, { index: 1, errorCode: 0 }] },
    ],
  }
  const failedLeader = new platformatic.MultipleErrors('Produce request failed', [
    new platformatic.ResponseError(0, 11, { '/responses/1/partition_responses/0': [6, null] }, response),
  ], { canRetry: false })
  const err = Object.assign(new platformatic.MultipleErrors('Producing messages failed.', [failedLeader]), {
    produced: { offsets: [{ topic: 'other', partition: 2, offset: 10n }] },
  })
  assert.deepEqual([...acknowledgedPartitions(err)].sort(), ['new:1', 'old:0', 'other:2'])
  assert.equal(classifyKafkaError(err).kind, 'broker', 'NOT_LEADER_OR_FOLLOWER: a leader change')
  assert.deepEqual([...acknowledgedPartitions(new Error('connect ECONNREFUSED'))], [])
})

test('platformatic: a refused batch\'s record_errors (code -1) do not hide the partition\'s INVALID_RECORD', () => {
  // As the broker answers a keyless message on a compacted topic (produce v8+).
  const response = { responses: [{ name: 'c', partitionResponses: [{ index: 0, errorCode: 87 }] }] }
  const err = new platformatic.MultipleErrors('Producing messages failed.', [new platformatic.MultipleErrors('Produce request failed', [
    new platformatic.ResponseError(0, 11, {
      '/responses/0/partition_responses/0/record_errors/0': [-1, 'Compacted topic cannot accept message without key in topic partition c-0.'],
      '/responses/0/partition_responses/0': [87, 'One or more records have been rejected'],
    }, response),
  ], { canRetry: false })])
  assert.deepEqual(classifyKafkaError(err), { kind: 'record', type: 'INVALID_RECORD' })
})
