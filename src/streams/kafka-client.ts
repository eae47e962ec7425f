// The seam between the `kafka` stream (kafka-batching.ts: batching, placement, what a refusal
// means) and a Kafka client library. One implementation per library, chosen with
// kahets.client (docs/kafka-clients.md): platformatic-client.ts (the default) and
// kafkajs-client.ts. The stream owns one client at a time and replaces it on reset(); a probe
// uses a throwaway one.
//
//   connect ──▶ metadata(topics) ──▶ produce(batches, one per partition) ──▶ close
//
// Errors keep the client's own shape (classifyKafkaError reads the protocol error code of
// either); a refusal the client can only state in words is turned into a TopicRefusal here.
import type { KafkaSettings } from '../config/buckets.ts'
import type { Logger } from '../log.ts'
import type { Frame } from '../protocol/frame.ts'

/** What kahets needs to place a topic's messages: its partitions, and which have a leader now. */
export interface TopicPartitions {
  readonly count: number
  /** Partitions with a leader (where messages without a key go); empty when none has one. */
  readonly led: readonly number[]
}

/**
 * The messages of one topic partition, in order: one record batch (record-batch.ts) in the
 * produce request to that partition's leader.
 */
export interface PartitionBatch {
  readonly topic: string
  readonly partition: number
  readonly frames: readonly Frame[]
}

export interface KafkaClient {
  /** Connects to the bootstrap servers (idempotent; a failed attempt may be retried). */
  connect (): Promise<void>
  /**
   * The partitions of these topics, auto-creating those that do not exist; from the client's
   * cache unless `refresh` (after a leader change: forget cached leaders and ask the cluster,
   * rejecting when no broker answers). An empty list asks the cluster for its brokers only: a
   * broker answers, or it does not (the probe).
   */
  metadata (topics: readonly string[], refresh?: boolean): Promise<ReadonlyMap<string, TopicPartitions>>
  /**
   * Sends each batch to its partition's leader (one produce request per leader), resolving
   * once every leader acknowledged as `acks` asks. Rejects with PartlyAcknowledged when the
   * client can tell that some leaders took their batches, else with the client's error (all
   * or nothing). The client may retry what comes before the request (metadata, the leader's
   * connection: KAFKAJS_RETRY); kafkajs also retries a failed request whole, platformatic never
   * does (pre-encoded-producer.ts), so only its unacknowledged partitions are sent again.
   */
  produce (batches: readonly PartitionBatch[]): Promise<void>
  /** Disconnects; `force` abandons requests in flight (a replaced client, a probe). */
  close (force: boolean): Promise<void>
}

/**
 * produce() reached several leaders and failed on some: `acknowledged` were taken, the other
 * batches failed with `cause` (where classifyKafkaError finds the protocol error). Sending only
 * the others again duplicates nothing. (@platformatic/kafka reports this; kafkajs cannot.)
 */
export class PartlyAcknowledged extends Error {
  readonly acknowledged: ReadonlySet<PartitionBatch>
  constructor (acknowledged: ReadonlySet<PartitionBatch>, cause: unknown) {
    super('produce request partly acknowledged', { cause })
    this.name = 'PartlyAcknowledged'
    this.acknowledged = acknowledged
  }
}

/** `probe`: a throwaway client that does not retry (PROBE_TIMEOUT_MS bounds it anyway). */
export type KafkaClientFactory = (settings: KafkaSettings, log: Logger, purpose: 'stream' | 'probe') => KafkaClient
