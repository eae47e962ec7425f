// The `kafka` stream (SPEC §2) over kafkajs: one kafkajs producer per stream definition, shared
// by every bucket that uses it; the topic is the bucket name. Batching, ordering and what a
// refusal means are in kafka-batching.ts (shared with the @platformatic/kafka client); this
// file sends one request with kafkajs, probes, resets and disconnects.
// First: it must replace a kafkajs module before kafkajs is loaded.
import './kafkajs-patches.ts'
import {
  CompressionTypes,
  Kafka,
  logLevel,
  type KafkaConfig,
  type LogEntry,
  type Message,
  type PartitionerArgs,
  type Producer,
} from 'kafkajs'
import type { KafkaSettings } from '../config/buckets.ts'
import { ConfigError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { registerCodecs } from './kafka-codecs.ts'
import {
  BatchingKafkaStream,
  CONNECTION_TIMEOUT_MS,
  DISCONNECT_TIMEOUT_MS,
  KAFKAJS_RETRY,
  crc32,
  withTimeout,
  type Chunk,
} from './kafka-batching.ts'

export { classifyKafkaError, crc32 } from './kafka-batching.ts'

const COMPRESSION: Record<KafkaSettings['compression'], CompressionTypes> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

// librdkafka's default partitioner (consistent_random), see crc32 in kafka-batching.ts.
const consistentRandom = () => ({ partitionMetadata, message }: PartitionerArgs): number => {
  if (message.partition != null) return message.partition
  if (message.key != null) {
    const key = typeof message.key === 'string' ? Buffer.from(message.key) : message.key
    return crc32(key) % partitionMetadata.length
  }
  const live = partitionMetadata.filter((p) => p.leader >= 0)
  const pool = live.length > 0 ? live : partitionMetadata
  return pool[Math.floor(Math.random() * pool.length)]!.partitionId
}

export class KafkaStream extends BatchingKafkaStream {
  readonly #config: KafkaConfig
  #kafka: Kafka
  #producer: Producer
  #connecting: Promise<void> | null = null

  constructor (id: string, settings: KafkaSettings, log: Logger) {
    super(id, settings, log)
    registerCodecs()
    this.#config = {
      clientId: settings.clientId,
      brokers: settings.brokers.map((b) => b.replace(/^[a-z]+:\/\//i, '')),
      ssl: KafkaStream.#ssl(settings),
      sasl: KafkaStream.#sasl(settings),
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      authenticationTimeout: Math.max(CONNECTION_TIMEOUT_MS, settings.requestTimeoutMs),
      requestTimeout: settings.requestTimeoutMs,
      enforceRequestTimeout: true,
      retry: KAFKAJS_RETRY,
      logLevel: logLevel.WARN,
      logCreator: () => (entry: LogEntry) => this.#kafkajsLog(entry),
    }
    this.#kafka = new Kafka(this.#config)
    this.#producer = this.#newProducer()
  }

  static #ssl (settings: KafkaSettings): KafkaConfig['ssl'] {
    if (settings.ssl === null) return undefined
    // The CA file was read while the buckets file was parsed (src/config/buckets.ts).
    if (settings.ssl.ca === null) return true
    return { ca: [settings.ssl.ca] }
  }

  static #sasl (settings: KafkaSettings): KafkaConfig['sasl'] {
    if (settings.sasl === null) return undefined
    const { mechanism, username, password } = settings.sasl
    switch (mechanism) {
      case 'plain': return { mechanism, username, password }
      case 'scram-sha-256': return { mechanism, username, password }
      case 'scram-sha-512': return { mechanism, username, password }
      default: {
        // The buckets file passes sasl.mechanisms through as written; kafkajs knows these three.
        const other: string = mechanism
        throw new ConfigError([{ path: 'sasl.mechanisms', message: `unsupported SASL mechanism "${other}" (use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)` }])
      }
    }
  }

  async probe (): Promise<boolean> {
    if (this.closed) return false
    const admin = this.#kafka.admin({ retry: { retries: 0 } })
    const attempt = (async () => {
      await admin.connect()
      await admin.describeCluster()
      await this.#connect()
    })()
    return await this.probeWith(attempt, () => admin.disconnect())
  }

  protected async refreshMetadata (): Promise<void> {
    // kafkajs's producer refreshes its own metadata when a request fails on a stale leader or a
    // lost connection; this only asks whether any broker of the cluster still answers.
    const admin = this.#kafka.admin({ retry: { retries: 0 } })
    try {
      await admin.connect()
      await admin.describeCluster()
    } finally {
      await admin.disconnect().catch(() => {})
    }
  }

  async reset (): Promise<void> {
    // kafkajs does not always recover a producer whose broker went away (stale connections,
    // a cluster object stuck "connected"); a new one starts from the bootstrap servers.
    const old = this.#producer
    this.newGeneration()
    this.#connecting = null
    this.#kafka = new Kafka(this.#config)
    this.#producer = this.#newProducer()
    await withTimeout(old.disconnect(), DISCONNECT_TIMEOUT_MS, 'disconnect').catch(() => {})
  }

  protected async disconnect (): Promise<void> {
    await this.#producer.disconnect()
  }

  #newProducer (): Producer {
    return this.#kafka.producer({
      createPartitioner: consistentRandom,
      allowAutoTopicCreation: true,
      idempotent: false,
      // topic.metadata.refresh.interval.ms: added partitions are used after this (issue 12).
      metadataMaxAge: this.settings.metadataRefreshIntervalMs,
      retry: KAFKAJS_RETRY,
    })
  }

  #connect (): Promise<void> {
    if (this.#connecting === null) {
      const p = this.#producer.connect()
      this.#connecting = p
      p.catch(() => { if (this.#connecting === p) this.#connecting = null })
    }
    return this.#connecting
  }

  protected async produce (chunks: Chunk[], generation: number): Promise<void> {
    const producer = this.#producer
    await this.#connect()
    if (!this.isCurrent(generation)) throw new Error('producer replaced before the request was sent')
    this.produceRequestCount++
    const sending = producer.sendBatch({
      topicMessages: chunks.map((c) => ({
        topic: c.queue.topic,
        messages: c.items.map(({ frame }): Message => ({ key: frame.key, value: frame.payload, timestamp: String(frame.receivedAt) })),
      })),
      acks: this.settings.acks,
      compression: COMPRESSION[this.settings.compression],
      timeout: this.settings.requestTimeoutMs,
    })
    // A broker that accepts connections but does not answer (hung, stopped, a partition that
    // drops packets) would otherwise hold the write through all of kafkajs's retries, each a
    // full request timeout.
    await this.answered(sending, 'produce request')
  }

  #kafkajsLog ({ namespace, level, log }: LogEntry): void {
    const extra: Record<string, unknown> = { ...log }
    delete extra.message
    delete extra.timestamp
    const fields = { kafkajs: namespace, kafkajsLevel: level === logLevel.ERROR ? 'error' : 'warn', ...extra }
    // The connection layer reports every error response, also those handled here (a topic
    // being auto-created, a refused topic); what they meant is in our own log line.
    if (namespace === 'Connection') {
      this.log.debug(fields, `kafkajs: ${log.message}`)
      return
    }
    // kafkajs logs every failed attempt of every request; one line per kind per interval is
    // enough next to our own error, which says what it meant for the stream.
    this.rateLimited.warn(this.log, `kafkajs:${namespace}:${level}`, fields, `kafkajs: ${log.message}`)
  }
}
