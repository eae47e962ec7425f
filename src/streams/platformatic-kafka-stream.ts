// The `kafka` stream (SPEC §2) over @platformatic/kafka (kahets.client: platformatic): the same
// batching, ordering and refusal handling as the kafkajs stream (kafka-batching.ts); this file
// sends one request with platformatic's Producer, probes, resets and disconnects.
//
// Differences from kafkajs that matter here:
// - send() takes a flat list of messages (each names its topic) and sends one produce request
//   per partition leader; with one broker that is one request, as with kafkajs's sendBatch.
// - Its codecs are built in (gzip, snappy, lz4 through WebAssembly; zstd through node:zlib,
//   which Node 20 lacks): zstd is supplied here from @bokuweb/zstd-wasm when zlib has none.
// - Errors carry the protocol error name as `apiId` and nest in `errors`: classifyKafkaError
//   reads both shapes.
//
// Measured (bench/run.ts --only kafka/acks1/none/100B/8c --runs 3, 2 CPUs, two rounds each):
// kafkajs 80.2k and 80.4k msgs/s at 13.82 and 13.71 CPU s per 1M; platformatic 134k and 130k
// msgs/s at 7.99 and 8.22 CPU s per 1M. Burst peak RSS was higher (507/444 MB vs 333/351).
import zlib from 'node:zlib'
import {
  Producer,
  UserError,
  compressionsAlgorithms,
  type MessageToProduce,
  type ProducerOptions,
} from '@platformatic/kafka'
import type { KafkaSettings } from '../config/buckets.ts'
import { ConfigError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { initZstd, zstdCompress, zstdDecompress } from './zstd.ts'
import {
  BatchingKafkaStream,
  CONNECTION_TIMEOUT_MS,
  DISCONNECT_TIMEOUT_MS,
  KAFKAJS_RETRY,
  PROBE_TIMEOUT_MS,
  crc32,
  readCaFile,
  withTimeout,
  type Chunk,
} from './kafka-batching.ts'

type PlatformaticProducer = Producer<Buffer, Buffer, Buffer, Buffer>
type Options = ProducerOptions<Buffer, Buffer, Buffer, Buffer>

// librdkafka's consistent_random (see crc32): platformatic takes the result modulo the topic's
// partition count, so crc32(key) lands where librdkafka (and kahego) put the key.
function consistentRandom (_message: MessageToProduce<Buffer, Buffer, Buffer, Buffer>, key: Buffer | undefined): number {
  if (key !== undefined) return crc32(key)
  return Math.floor(Math.random() * 0x7fffffff)
}

// Node 20's zlib has no zstd; platformatic's table is a plain object its record encoder reads
// at send time, so the WebAssembly codec the kafkajs stream uses (zstd.ts) fills the gap.
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

/** A refusal in kafkajs's shape (`type`), for what platformatic reports without its protocol code. */
class TopicRefusal extends Error {
  readonly type: string
  constructor (type: string, message: string, cause?: unknown) {
    super(message, { cause })
    this.type = type
  }
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
      partitioner: consistentRandom,
      // kafkajs applies no metadata age; platformatic's default (5 min) is kept.
    }
    this.#producer = new Producer(this.#options)
  }

  static #tls (settings: KafkaSettings): Pick<Options, 'tls'> {
    if (settings.ssl === null) return {}
    if (settings.ssl.caLocation === null) return { tls: {} }
    return { tls: { ca: [readCaFile(settings.ssl.caLocation)] } }
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
    const probe: PlatformaticProducer = new Producer({ ...this.#options, retries: 0 })
    const attempt = probe.metadata({ topics: [], forceUpdate: true })
    try {
      await withTimeout(attempt, PROBE_TIMEOUT_MS, 'probe')
      return true
    } catch (err) {
      this.log.debug({ err }, 'kafka probe failed')
      return false
    } finally {
      attempt.catch(() => {}).finally(() => { closeNow(probe).catch(() => {}) })
    }
  }

  async reset (): Promise<void> {
    const old = this.#producer
    this.newGeneration()
    this.#producer = new Producer(this.#options)
    await withTimeout(closeNow(old), DISCONNECT_TIMEOUT_MS, 'disconnect').catch(() => {})
  }

  protected async disconnect (): Promise<void> {
    await this.#producer.close()
  }

  protected async produce (chunks: Chunk[], generation: number): Promise<void> {
    const producer = this.#producer
    const compression = this.settings.compression
    if (compression === 'zstd') await ensureZstd()
    if (!this.isCurrent(generation)) throw new Error('producer replaced before the request was sent')
    const messages: Array<MessageToProduce<Buffer, Buffer, Buffer, Buffer>> = []
    for (const c of chunks) {
      const topic = c.queue.topic
      // platformatic turns the broker's refusal of a topic name into "Unknown topic" with no
      // protocol code; the broker's own rule, checked here, says what kafkajs would report.
      if (!LEGAL_TOPIC.test(topic) || topic === '.' || topic === '..') {
        throw new TopicRefusal('INVALID_TOPIC_EXCEPTION', `invalid topic name ${JSON.stringify(topic)}`)
      }
      for (const i of c.items) {
        messages.push(i.key === null
          ? { topic, value: i.value, timestamp: BigInt(i.receivedAt) }
          : { topic, key: i.key, value: i.value, timestamp: BigInt(i.receivedAt) })
      }
    }
    this.produceRequestCount++
    const sending = producer.send({ messages, acks: this.settings.acks, compression, autocreateTopics: true })
    // As with kafkajs: one unanswered request is enough to fail over (at-least-once).
    sending.catch(() => {})
    try {
      await withTimeout(sending, this.settings.requestTimeoutMs + CONNECTION_TIMEOUT_MS, 'produce request')
    } catch (err) {
      // The metadata of a topic that does not exist (auto-creation off, or not yet done): the
      // UNKNOWN_TOPIC_OR_PARTITION that kafkajs reports, which is retried, then refused.
      if (err instanceof UserError && err.message.startsWith('Unknown topic ')) throw new TopicRefusal('UNKNOWN_TOPIC_OR_PARTITION', err.message, err)
      throw err
    }
  }
}
