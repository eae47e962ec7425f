// The `kafka` stream (SPEC §2) over @platformatic/kafka (kahets.client: platformatic): the same
// batching, ordering and refusal handling as the kafkajs stream (kafka-batching.ts); this file
// sends one request with platformatic's Producer, probes, resets and disconnects.
//
// The records are not encoded by platformatic: each topic's messages are split by partition
// (librdkafka's placement) and written as one record batch per partition by record-batch.ts,
// and PreEncodedProducer puts those batches in the produce request. platformatic still finds
// partitions and leaders, connects, retries and refreshes stale metadata.
//
// Differences from kafkajs that matter here:
// - send() takes a flat list of messages (here: batches, each naming its topic and partition)
//   and sends one produce request per partition leader; with one broker that is one request.
// - Its codecs are built in (gzip, snappy, lz4 through WebAssembly; zstd through node:zlib,
//   which Node 20 lacks): zstd is supplied here from @bokuweb/zstd-wasm when zlib has none.
// - Errors carry the protocol error name as `apiId` and nest in `errors`: classifyKafkaError
//   reads both shapes.
//
// Measured (bench/run.ts --only kafka/acks1/none/100B/8c --runs 3, 2 CPUs): kafkajs 80k msgs/s
// at 13.8 CPU s per 1M; platformatic encoding the records 130-134k at 8.0-8.2; platformatic
// sending kahets's own batches 368k at 2.5.
import zlib from 'node:zlib'
import {
  UserError,
  compressionsAlgorithms,
  type MessageToProduce,
  type ProducerOptions,
} from '@platformatic/kafka'
import type { KafkaSettings } from '../config/buckets.ts'
import { ConfigError, TopicRefusal } from '../errors.ts'
import { groupBy } from '../group-by.ts'
import type { Logger } from '../log.ts'
import { initZstd, zstdCompress, zstdDecompress } from './zstd.ts'
import {
  BatchingKafkaStream,
  CONNECTION_TIMEOUT_MS,
  DISCONNECT_TIMEOUT_MS,
  KAFKAJS_RETRY,
  crc32,
  withTimeout,
  PartlyProduced,
  type Chunk,
  type Item,
} from './kafka-batching.ts'
import { PreEncodedProducer } from './pre-encoded-producer.ts'
import { encodeRecordBatch, type Compress } from './record-batch.ts'

type PlatformaticProducer = PreEncodedProducer
type Options = ProducerOptions<Buffer, Buffer, Buffer, Buffer>

// Node 20's zlib has no zstd; platformatic's codec table is a plain object (read at send time
// by record-batch.ts's caller here), so the WebAssembly codec of zstd.ts fills the gap.
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
 * is retried, then refused.
 */
function refusalOf (err: unknown): unknown {
  if (err instanceof UserError && err.message.startsWith('Unknown topic ')) return new TopicRefusal('UNKNOWN_TOPIC_OR_PARTITION', err.message, err)
  return err
}

/**
 * The items of one topic by partition, as librdkafka's consistent_random partitioner places
 * them: a key goes to crc32(key) mod partitions (where kahego put it); messages without a key
 * go to one random partition per request, so they still travel as one batch.
 */
function partitionItems (items: Item[], partitions: number): Iterable<[number, Item[]]> {
  if (partitions === 1) return [[0, items]]
  const random = Math.floor(Math.random() * partitions)
  return groupBy(items, ({ frame }) => {
    const key = frame.key
    return key === null ? random : crc32(key) % partitions
  })
}

/** close(true): in-flight requests are abandoned (the promise overload is shadowed in its types). */
function closeNow (producer: PlatformaticProducer): Promise<void> {
  return new Promise((resolve, reject) => producer.close(true, (err) => { if (err) reject(err); else resolve() }))
}

export class PlatformaticKafkaStream extends BatchingKafkaStream {
  readonly #options: Options
  #producer: PlatformaticProducer

  constructor (id: string, settings: KafkaSettings, log: Logger) {
    super(id, settings, log)
    this.#options = {
      clientId: settings.clientId,
      bootstrapBrokers: settings.brokers.map((b) => b.replace(/^[a-z]+:\/\//i, '')),
      ...PlatformaticKafkaStream.#tls(settings),
      ...PlatformaticKafkaStream.#sasl(settings),
      connectTimeout: CONNECTION_TIMEOUT_MS,
      requestTimeout: settings.requestTimeoutMs,
      timeout: settings.requestTimeoutMs,
      // Outage detection in about a second, as with kafkajs (see KAFKAJS_RETRY).
      retries: KAFKAJS_RETRY.retries,
      retryDelay: KAFKAJS_RETRY.initialRetryTime,
      // kahets limits requests itself (maxInFlight); one per topic at a time keeps order.
      maxInflights: settings.maxInFlight,
      autocreateTopics: true,
      idempotent: false,
      // topic.metadata.refresh.interval.ms: a topic's partition count (and leaders) are asked
      // again once its cached metadata is this old, so added partitions are used (issue 12).
      metadataMaxAge: settings.metadataRefreshIntervalMs,
    }
    this.#producer = new PreEncodedProducer(this.#options)
  }

  static #tls (settings: KafkaSettings): Pick<Options, 'tls'> {
    if (settings.ssl === null) return {}
    // The CA file was read while the buckets file was parsed (src/config/buckets.ts).
    if (settings.ssl.ca === null) return { tls: {} }
    return { tls: { ca: [settings.ssl.ca] } }
  }

  static #sasl (settings: KafkaSettings): Pick<Options, 'sasl'> {
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

  async probe (): Promise<boolean> {
    if (this.closed) return false
    // A metadata request of no topic: the broker answers, or it does not. A throwaway
    // producer, so a probe never leaves the stream's own client half-connected.
    const probe: PlatformaticProducer = new PreEncodedProducer({ ...this.#options, retries: 0 })
    return await this.probeWith(probe.metadata({ topics: [], forceUpdate: true }), () => closeNow(probe))
  }

  protected async refreshMetadata (topics: string[]): Promise<void> {
    // forceUpdate replaces the cached leaders that send() routes by; the request goes to the
    // first bootstrap or known broker that accepts a connection.
    await this.#producer.metadata({ topics, forceUpdate: true, autocreateTopics: true })
  }

  async reset (): Promise<void> {
    const old = this.#producer
    this.newGeneration()
    this.#producer = new PreEncodedProducer(this.#options)
    await withTimeout(closeNow(old), DISCONNECT_TIMEOUT_MS, 'disconnect').catch(() => {})
  }

  protected async disconnect (): Promise<void> {
    await this.#producer.close()
  }

  protected async produce (chunks: Chunk[], generation: number): Promise<void> {
    const producer = this.#producer
    const codec = this.settings.compression
    if (codec === 'zstd') await ensureZstd()
    if (!this.isCurrent(generation)) throw new Error('producer replaced before the request was sent')
    const topics: string[] = []
    for (const c of chunks) {
      const topic = c.queue.topic
      // platformatic turns the broker's refusal of a topic name into "Unknown topic" with no
      // protocol code; the broker's own rule, checked here, says what kafkajs would report.
      if (!LEGAL_TOPIC.test(topic) || topic === '.' || topic === '..' || INTERNAL_TOPICS.has(topic)) {
        throw new TopicRefusal('INVALID_TOPIC_EXCEPTION', `invalid topic name ${JSON.stringify(topic)}`)
      }
      topics.push(topic)
    }
    const compress = codec === 'none' ? undefined : compressionsAlgorithms[codec].compressSync as Compress
    const byPartition = new Map<string, Item[]>()
    try {
      // The partition counts, from platformatic's metadata cache (fetched, and the topics
      // auto-created, only when a topic is new or its metadata older than metadataMaxAge).
      const metadata = await this.answered(producer.metadata({ topics, autocreateTopics: true }), 'metadata request')
      if (!this.isCurrent(generation)) throw new Error('producer replaced before the request was sent')
      const messages: Array<MessageToProduce<Buffer, Buffer, Buffer, Buffer>> = []
      for (const c of chunks) {
        const topic = c.queue.topic
        const partitions = metadata.topics.get(topic)?.partitionsCount ?? 0
        // Known but without partitions: still being created. Retried as LEADER_NOT_AVAILABLE,
        // then failed over (never dropped, as a topic Kafka says does not exist would be).
        if (partitions < 1) throw new TopicRefusal('LEADER_NOT_AVAILABLE', `no partitions yet for topic ${topic}`)
        for (const [partition, items] of partitionItems(c.items, partitions)) {
          byPartition.set(`${topic}:${partition}`, items)
          messages.push({ topic, partition, value: encodeRecordBatch(items.map((i) => i.frame), codec, compress) })
        }
      }
      this.produceRequestCount++
      // Each message is one encoded batch (PreEncodedProducer writes the request around them).
      await this.answered(producer.send({ messages, acks: this.settings.acks, autocreateTopics: true }), 'produce request')
    } catch (err) {
      // platformatic sends one request per leader; when some fail it still lists the
      // partitions the others acknowledged (error.produced.offsets): those are not sent again.
      const offsets = (err as { produced?: { offsets?: Array<{ topic: string, partition: number }> } } | null)?.produced?.offsets ?? []
      const delivered = new Set<Item>()
      for (const { topic, partition } of offsets) for (const item of byPartition.get(`${topic}:${partition}`) ?? []) delivered.add(item)
      if (delivered.size > 0) throw new PartlyProduced(delivered, refusalOf(err))
      throw refusalOf(err)
    }
  }
}
