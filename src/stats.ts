// Loss accounting (docs/guarantees.md#accounting, docs/operations.md#metrics-and-health). For every (bucket, stream) flow, always:
//   received = delivered + sampledOut + backedUp + dropped (all reasons) + inFlight
// A flow's `received` counts the frames its bucket accepted while bound to that stream (a
// SIGHUP can change the binding), so the identity holds per flow. A payload its bucket's
// schema rejects is received and dropped (schema_rejected) on the bucket's own flows, and
// received on the (bucket, deadLetter) flow if it has one (docs/configuration.md#payload-schemas). Plain
// numbers on the hot path; the metrics endpoint reads them.
import { BatchMetrics } from './batch-metrics.ts'

export const DROP_REASONS = ['unknown_bucket', 'too_many_buckets', 'max_memory', 'stream_failed', 'message_too_large', 'topic_rejected', 'destination_rejected', 'shutdown', 'schema_rejected'] as const
export type DropReason = typeof DROP_REASONS[number]

function add<K> (counts: Map<K, number>, key: K, n: number): void {
  counts.set(key, (counts.get(key) ?? 0) + n)
}

export class FlowStats {
  received = 0
  delivered = 0
  sampledOut = 0
  backedUp = 0
  replayed = 0
  /**
   * Frames read back from a backup file that the stream then refused for good (e.g. larger
   * than its message.max.bytes). Outside the identity: they were counted as backedUp.
   */
  readonly replayRefused = new Map<DropReason, number>()
  readonly dropped = new Map<DropReason, number>()
  /** When frames of this flow were last lost, by reason (drops and replay refusals): /healthz reads it. */
  readonly lastLostAt = new Map<DropReason, number>()

  drop (reason: DropReason, n: number): void {
    add(this.dropped, reason, n)
    this.lastLostAt.set(reason, Date.now())
  }

  refuseOnReplay (reason: DropReason, n: number): void {
    add(this.replayRefused, reason, n)
    this.lastLostAt.set(reason, Date.now())
  }

  get droppedTotal (): number {
    let t = 0
    for (const n of this.dropped.values()) t += n
    return t
  }
}

export class BucketStats {
  received = 0
  receivedBytes = 0
  /** Payloads the bucket's schema rejected, by reason (not_json, invalid), dead-lettered or not. */
  readonly schemaRejected = new Map<string, number>()
  readonly flows = new Map<string, FlowStats>()

  flow (stream: string): FlowStats {
    let f = this.flows.get(stream)
    if (f === undefined) {
      f = new FlowStats()
      this.flows.set(stream, f)
    }
    return f
  }
}

export class Stats {
  readonly buckets = new Map<string, BucketStats>()
  /** Per stream write: latency from socket to settled, messages, bytes (batch-metrics.ts). */
  readonly batches = new BatchMetrics()
  readonly invalidFrames = new Map<string, number>()
  truncatedFrames = 0
  oversizedFrames = 0
  connectionsTotal = 0
  connections = 0
  /** Frames of buckets nobody serves (no bucket, no defaultBucket). */
  unknownBucketFrames = 0

  bucket (name: string): BucketStats {
    let b = this.buckets.get(name)
    if (b === undefined) {
      b = new BucketStats()
      this.buckets.set(name, b)
    }
    return b
  }

  /**
   * Creates the flows of the buckets a configuration names (at start and after each SIGHUP),
   * so that their counters are in /metrics from zero: a rate() or increase() over a series
   * that appears only with its first drop misses that drop. The defaultBucket's buckets
   * are named by clients, so they appear with their first frame.
   */
  declare (buckets: Iterable<{ readonly id: string, readonly streams: readonly string[], readonly deadLetter: string | null }>): void {
    for (const b of buckets) {
      const stats = this.bucket(b.id)
      for (const s of b.streams) stats.flow(s)
      if (b.deadLetter !== null) stats.flow(b.deadLetter)
    }
  }

  invalid (reason: string): void {
    add(this.invalidFrames, reason, 1)
  }
}
