// The Kafka client seam (kafka-client.ts) over @platformatic/kafka, the default
// (kahets.client: platformatic; docs/kafka-clients.md).
//
// The records are not encoded by platformatic: each partition's messages become one record
// batch written by record-batch.ts, and PreEncodedProducer puts those batches in the produce
// request. platformatic still finds leaders, connects, retries and refreshes stale metadata.
//
// Differences from kafkajs that matter here:
// - send() takes a flat list of messages (here: batches, each naming its topic and partition)
//   and sends one produce request per partition leader; with one broker that is one request.
// - Its codecs are built in (gzip, snappy, lz4 through WebAssembly; zstd through node:zlib,
//   which Node 20 lacks): zstd is supplied here from @bokuweb/zstd-wasm when zlib has none.
// - Errors carry the protocol error code as `apiCode` and nest in `errors` and `cause`:
//   classifyKafkaError reads both shapes.
//
// Measured (bench/run.ts --only kafka/acks1/none/100B/8c --runs 3, 2 CPUs): kafkajs 80k msgs/s
// at 13.8 CPU s per 1M; platformatic encoding the records 130-134k at 8.0-8.2; platformatic
// sending kahets's own batches 368k at 2.5.
// First: platformatic calls Promise.withResolvers, which Node 20 lacks.
import './node20-compat.ts'
import zlib from 'node:zlib'
import {
  UserError,
  compressionsAlgorithms,
  type MessageToProduce,
  type ProducerOptions,
} from '@platformatic/kafka'
import type { KafkaSettings } from '../config/buckets.ts'
import { ConfigError, TopicRefusal } from '../errors.ts'
import { initZstd, zstdCompress, zstdDecompress } from './zstd.ts'
import { PartlyAcknowledged, type KafkaClient, type KafkaClientFactory, type PartitionBatch, type TopicPartitions } from './kafka-client.ts'
import { connectionTimeoutMs, tlsOptions } from './kafka-security.ts'
import { KAFKAJS_RETRY } from './kafka-timeouts.ts'
import { PreEncodedProducer } from './pre-encoded-producer.ts'
import { encodeRecordBatch, type Compress } from './record-batch.ts'

type Options = ProducerOptions<Buffer, Buffer, Buffer, Buffer>

// Node 20's zlib has no zstd; platformatic's codec table is a plain object (read at send time
// here), so the WebAssembly codec of zstd.ts fills the gap. The table's shape is checked by
// test/unit/kafka-client-internals.test.ts.
let zstdPatched: Promise<void> | null = null
function ensureZstd (): Promise<void> {
  if ('zstdCompressSync' in zlib) return Promise.resolve()
  return (zstdPatched ??= initZstd().then(() => {
    // Records arrive as a Buffer (DynamicBuffer.buffer); the codec type also allows a DynamicBuffer.
    const asBuffer = (data: unknown): Buffer => (Buffer.isBuffer(data) ? data : (data as { buffer: Buffer }).buffer)
    const codec = compressionsAlgorithms.zstd as { compressSync: (d: unknown) => Buffer, decompressSync: (d: unknown) => Buffer }
    codec.compressSync = (data) => zstdCompress(asBuffer(data))
    codec.decompressSync = (data) => zstdDecompress(asBuffer(data))
  }))
}

// Kafka's rule for topic names (org.apache.kafka.common.internals.Topic.validate).
const LEGAL_TOPIC = /^[a-zA-Z0-9._-]{1,249}$/

// Kafka's internal topics: the broker refuses a produce to them with INVALID_TOPIC_EXCEPTION
// (kafkajs gets that answer); platformatic never gets that far, since its metadata answer lists
// them with no partitions when they do not exist yet, so the broker's answer is given here.
const INTERNAL_TOPICS = new Set(['__consumer_offsets', '__transaction_state'])

/**
 * The metadata of a topic that does not exist (auto-creation off, or not yet done) fails in
 * platformatic as "Unknown topic": the UNKNOWN_TOPIC_OR_PARTITION that kafkajs reports, which
 * is retried, then refused. 2.12.1 builds that UserError without the ProtocolError it came from
 * (no code, no cause), so its text is all there is to read; kafka-client-internals.test.ts
 * fails when that changes.
 */
function refusalOf (err: unknown): unknown {
  if (err instanceof UserError && err.message.startsWith('Unknown topic ')) return new TopicRefusal('UNKNOWN_TOPIC_OR_PARTITION', err.message, err)
  return err
}

function tls (settings: KafkaSettings): Pick<Options, 'tls'> {
  // The ssl.* files were read while the buckets file was parsed (src/config/kafka-security.ts).
  const options = tlsOptions(settings)
  return options === null ? {} : { tls: options }
}

function sasl (settings: KafkaSettings): Pick<Options, 'sasl'> {
  if (settings.sasl === null) return {}
  const { mechanism, username, password } = settings.sasl
  switch (mechanism) {
    case 'plain': return { sasl: { mechanism: 'PLAIN', username, password } }
    case 'scram-sha-256': return { sasl: { mechanism: 'SCRAM-SHA-256', username, password } }
    case 'scram-sha-512': return { sasl: { mechanism: 'SCRAM-SHA-512', username, password } }
    default: {
      const other: string = mechanism
      throw new ConfigError([{ path: 'sasl.mechanisms', message: `unsupported SASL mechanism "${other}" (use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)` }])
    }
  }
}

function options (settings: KafkaSettings, purpose: 'stream' | 'probe'): Options {
  return {
    clientId: settings.clientId,
    bootstrapBrokers: settings.brokers.map((b) => b.replace(/^[a-z]+:\/\//i, '')),
    ...tls(settings),
    ...sasl(settings),
    // Covers the TLS handshake and SASL exchange too (kafka-security.ts).
    connectTimeout: connectionTimeoutMs(settings),
    requestTimeout: settings.requestTimeoutMs,
    timeout: settings.requestTimeoutMs,
    // Outage detection in about a second, as with kafkajs (see KAFKAJS_RETRY).
    retries: purpose === 'probe' ? 0 : KAFKAJS_RETRY.retries,
    retryDelay: KAFKAJS_RETRY.initialRetryTime,
    // kahets limits requests itself (maxInFlight); one per topic at a time keeps order.
    maxInflights: settings.maxInFlight,
    autocreateTopics: true,
    idempotent: false,
    // topic.metadata.refresh.interval.ms: a topic's partition count (and leaders) are asked
    // again once its cached metadata is this old, so added partitions are used (issue 12).
    metadataMaxAge: settings.metadataRefreshIntervalMs,
  }
}

interface ProduceResponse {
  responses: Array<{ name: string, partitionResponses: Array<{ index: number, errorCode: number }> }>
}

/**
 * The partitions ("topic:partition") a failed send() still got acknowledged: those of the
 * leaders that answered without error (error.produced.offsets), and, in a response that failed
 * for some partitions, the partitions answered with error code 0 (the ResponseError keeps the
 * whole response).
 */
export function acknowledgedPartitions (err: unknown): Set<string> {
  const taken = new Set<string>()
  const offsets = (err as { produced?: { offsets?: Array<{ topic: string, partition: number }> } } | null)?.produced?.offsets ?? []
  for (const { topic, partition } of offsets) taken.add(`${topic}:${partition}`)
  const seen = new Set<unknown>()
  const visit = (e: unknown, depth: number): void => {
    if (e === null || typeof e !== 'object' || depth > 8 || seen.has(e)) return
    seen.add(e)
    const o = e as { response?: Partial<ProduceResponse>, errors?: unknown, cause?: unknown }
    if (Array.isArray(o.response?.responses)) {
      for (const { name, partitionResponses } of o.response.responses) {
        for (const { index, errorCode } of partitionResponses ?? []) if (errorCode === 0) taken.add(`${name}:${index}`)
      }
    }
    if (Array.isArray(o.errors)) for (const inner of o.errors) visit(inner, depth + 1)
    visit(o.cause, depth + 1)
  }
  visit(err, 0)
  return taken
}

export class PlatformaticClient implements KafkaClient {
  readonly #settings: KafkaSettings
  readonly #producer: PreEncodedProducer
  readonly #compress: Compress | undefined

  constructor (settings: KafkaSettings, purpose: 'stream' | 'probe') {
    this.#settings = settings
    this.#producer = new PreEncodedProducer(options(settings, purpose))
    const codec = settings.compression
    // Read at send time: ensureZstd() may replace the zstd codec's function first.
    this.#compress = codec === 'none' ? undefined : (records) => (compressionsAlgorithms[codec].compressSync as Compress)(records)
  }

  /** platformatic connects on its first request. */
  async connect (): Promise<void> {
    if (this.#settings.compression === 'zstd') await ensureZstd()
  }

  async metadata (topics: readonly string[], refresh = false): Promise<ReadonlyMap<string, TopicPartitions>> {
    for (const topic of topics) {
      // platformatic turns the broker's refusal of a topic name into "Unknown topic" with no
      // protocol code; the broker's own rule, checked here, says what kafkajs would report.
      if (!LEGAL_TOPIC.test(topic) || topic === '.' || topic === '..' || INTERNAL_TOPICS.has(topic)) {
        throw new TopicRefusal('INVALID_TOPIC_EXCEPTION', `invalid topic name ${JSON.stringify(topic)}`)
      }
    }
    try {
      // From platformatic's metadata cache: fetched (and the topics auto-created) only when a
      // topic is new or its metadata older than metadataMaxAge; forceUpdate replaces the
      // cached leaders send() routes by. An empty list always asks.
      const metadata = await this.#producer.metadata({ topics: [...topics], autocreateTopics: true, forceUpdate: refresh || topics.length === 0 })
      const result = new Map<string, TopicPartitions>()
      for (const topic of topics) {
        const t = metadata.topics.get(topic)
        if (t === undefined) continue
        const led: number[] = []
        for (let p = 0; p < t.partitionsCount; p++) if ((t.partitions[p]?.leader ?? -1) >= 0) led.push(p)
        result.set(topic, { count: t.partitionsCount, led })
      }
      return result
    } catch (err) {
      throw refusalOf(err)
    }
  }

  async produce (batches: readonly PartitionBatch[]): Promise<void> {
    const codec = this.#settings.compression
    const messages: Array<MessageToProduce<Buffer, Buffer, Buffer, Buffer>> = batches.map(({ topic, partition, frames }) =>
      ({ topic, partition, value: encodeRecordBatch(frames, codec, this.#compress) }))
    try {
      // Each message is one encoded batch (PreEncodedProducer writes the request around them).
      // A failed request is not sent again here, neither by platformatic's retries (see
      // pre-encoded-producer.ts) nor after it refreshed stale metadata (repeatOnStaleMetadata):
      // the stream sends again what no leader acknowledged.
      await this.#producer.send({ messages, acks: this.#settings.acks, autocreateTopics: true, repeatOnStaleMetadata: false })
    } catch (err) {
      const taken = acknowledgedPartitions(err)
      const acknowledged = new Set(batches.filter((b) => taken.has(`${b.topic}:${b.partition}`)))
      if (acknowledged.size > 0) throw new PartlyAcknowledged(acknowledged, refusalOf(err))
      throw refusalOf(err)
    }
  }

  async close (force: boolean): Promise<void> {
    await this.#producer.close(force)
  }
}

export const createPlatformaticClient: KafkaClientFactory = (settings, _log, purpose) => new PlatformaticClient(settings, purpose)
