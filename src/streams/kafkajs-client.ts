// The Kafka client seam (kafka-client.ts) over kafkajs (kahets.client: kafkajs; the design
// card's client; docs/kafka-clients.md). kafkajs encodes the records itself: it has no public
// way to send a batch encoded elsewhere, and kahets does not patch its protocol code for one.
// Each batch's messages carry their partition, chosen by kahets (kafka-partitioner.ts), so
// kafkajs's partitioner only passes it through.
// First: it must replace a kafkajs module before kafkajs is loaded.
import './kafkajs-patches.ts'
import {
  CompressionTypes,
  Kafka,
  logLevel,
  type Admin,
  type KafkaConfig,
  type LogEntry,
  type Message,
  type Producer,
} from 'kafkajs'
import type { KafkaSettings } from '../config/buckets.ts'
import { ConfigError } from '../errors.ts'
import { RateLimitedLog, type Logger } from '../log.ts'
import { registerCodecs } from './kafka-codecs.ts'
import { classifyKafkaError } from './kafka-errors.ts'
import type { KafkaClient, KafkaClientFactory, PartitionBatch, TopicPartitions } from './kafka-client.ts'
import { connectionTimeoutMs, tlsOptions } from './kafka-security.ts'
import { CONNECTION_TIMEOUT_MS, KAFKAJS_RETRY } from './kafka-timeouts.ts'

const COMPRESSION: Record<KafkaSettings['compression'], CompressionTypes> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

/** kahets has placed every message already (kafka-partitioner.ts). */
const givenPartition = () => ({ message }: { message: Message }): number => message.partition!

function ssl (settings: KafkaSettings): KafkaConfig['ssl'] {
  // The ssl.* files were read while the buckets file was parsed (src/config/kafka-security.ts).
  return tlsOptions(settings) ?? undefined
}

function sasl (settings: KafkaSettings): KafkaConfig['sasl'] {
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

export class KafkajsClient implements KafkaClient {
  readonly #settings: KafkaSettings
  readonly #log: Logger
  readonly #rateLimited = new RateLimitedLog()
  readonly #kafka: Kafka
  readonly #producer: Producer
  /** Partition counts: kafkajs's producer keeps its metadata to itself. */
  readonly #admin: Admin
  readonly #partitions = new Map<string, { at: number, partitions: TopicPartitions }>()
  #connecting: Promise<void> | null = null

  constructor (settings: KafkaSettings, log: Logger, purpose: 'stream' | 'probe') {
    registerCodecs()
    this.#settings = settings
    this.#log = log
    const retry = purpose === 'probe' ? { retries: 0 } : KAFKAJS_RETRY
    this.#kafka = new Kafka({
      clientId: settings.clientId,
      brokers: settings.brokers.map((b) => b.replace(/^[a-z]+:\/\//i, '')),
      ssl: ssl(settings),
      sasl: sasl(settings),
      // Covers the TLS handshake too (kafka-security.ts).
      connectionTimeout: connectionTimeoutMs(settings),
      authenticationTimeout: Math.max(CONNECTION_TIMEOUT_MS, settings.requestTimeoutMs),
      requestTimeout: settings.requestTimeoutMs,
      enforceRequestTimeout: true,
      retry,
      logLevel: logLevel.WARN,
      logCreator: () => (entry: LogEntry) => this.#kafkajsLog(entry),
    })
    // topic.metadata.refresh.interval.ms: kafkajs's own leaders, and the partition counts kept
    // here, are asked again once this old, so partitions added to a topic are used (issue 12).
    this.#producer = this.#kafka.producer({ createPartitioner: givenPartition, allowAutoTopicCreation: true, idempotent: false, metadataMaxAge: settings.metadataRefreshIntervalMs, retry })
    this.#admin = this.#kafka.admin({ retry })
  }

  connect (): Promise<void> {
    if (this.#connecting === null) {
      const p = Promise.all([this.#producer.connect(), this.#admin.connect()]).then(() => {})
      this.#connecting = p
      p.catch(() => { if (this.#connecting === p) this.#connecting = null })
    }
    return this.#connecting
  }

  async metadata (topics: readonly string[], refresh = false): Promise<ReadonlyMap<string, TopicPartitions>> {
    if (!refresh) return await this.#metadata(topics, false)
    try {
      return await this.#metadata(topics, true)
    } catch (err) {
      if (classifyKafkaError(err).kind !== 'broker') throw err
      // kafkajs asks one broker it picked for metadata and retries only that one: after a
      // leader's crash it can be the dead broker (its seed broker, when no other is connected).
      // Connecting again starts from the bootstrap servers and moves past one that refuses.
      await Promise.allSettled([this.#producer.disconnect(), this.#admin.disconnect()])
      this.#connecting = null
      return await this.#metadata(topics, true)
    }
  }

  async #metadata (topics: readonly string[], refresh: boolean): Promise<ReadonlyMap<string, TopicPartitions>> {
    await this.connect()
    if (topics.length === 0) {
      await this.#admin.describeCluster()
      return new Map()
    }
    const now = performance.now()
    // kafkajs's producer refreshes its own leaders when a request fails on a stale one; a
    // refresh here re-reads the partitions and fails when no broker answers.
    const stale = refresh ? [...topics] : topics.filter((t) => (this.#partitions.get(t)?.at ?? -Infinity) + this.#settings.metadataRefreshIntervalMs <= now)
    if (stale.length > 0) {
      // A produce of no messages: kafkajs creates the topics (allowAutoTopicCreation), waits
      // for their leaders and reports a refusal as it would for a real one; it sends nothing.
      await this.#producer.sendBatch({ topicMessages: stale.map((topic) => ({ topic, messages: [] })), acks: this.#settings.acks })
      const { topics: found } = await this.#admin.fetchTopicMetadata({ topics: stale })
      for (const t of found) {
        const led = t.partitions.filter((p) => p.leader >= 0).map((p) => p.partitionId).sort((a, b) => a - b)
        this.#partitions.set(t.name, { at: now, partitions: { count: t.partitions.length, led } })
      }
    }
    const result = new Map<string, TopicPartitions>()
    for (const t of topics) {
      const known = this.#partitions.get(t)
      if (known !== undefined) result.set(t, known.partitions)
    }
    return result
  }

  async produce (batches: readonly PartitionBatch[]): Promise<void> {
    await this.connect()
    const byTopic = new Map<string, Message[]>()
    for (const { topic, partition, frames } of batches) {
      let messages = byTopic.get(topic)
      if (messages === undefined) byTopic.set(topic, messages = [])
      for (const frame of frames) messages.push({ partition, key: frame.key, value: frame.payload, timestamp: String(frame.receivedAt) })
    }
    await this.#producer.sendBatch({
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      acks: this.#settings.acks,
      compression: COMPRESSION[this.#settings.compression],
      timeout: this.#settings.requestTimeoutMs,
    })
  }

  async close (): Promise<void> {
    // kafkajs has no way to abandon requests in flight; the caller bounds the wait.
    await Promise.allSettled([this.#producer.disconnect(), this.#admin.disconnect()])
  }

  #kafkajsLog ({ namespace, level, log }: LogEntry): void {
    const extra: Record<string, unknown> = { ...log }
    delete extra.message
    delete extra.timestamp
    const fields = { kafkajs: namespace, kafkajsLevel: level === logLevel.ERROR ? 'error' : 'warn', ...extra }
    // The connection layer reports every error response, also those handled here (a topic
    // being auto-created, a refused topic); what they meant is in our own log line.
    if (namespace === 'Connection') {
      this.#log.debug(fields, `kafkajs: ${log.message}`)
      return
    }
    // kafkajs logs every failed attempt of every request; one line per kind per interval is
    // enough next to our own error, which says what it meant for the stream.
    this.#rateLimited.warn(this.#log, `kafkajs:${namespace}:${level}`, fields, `kafkajs: ${log.message}`)
  }
}

export const createKafkajsClient: KafkaClientFactory = (settings, log, purpose) => new KafkajsClient(settings, log, purpose)
