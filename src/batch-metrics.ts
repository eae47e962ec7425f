// Histograms of the batches streams settle (docs/operations-health.md): how long the oldest
// frame of each write waited from the moment kahets read it off the socket until the stream
// settled the write (file written and fsynced, Kafka acknowledged, backup fsynced), and how
// many messages and bytes each write carried. One observation per write and histogram, never
// per message: a write carries up to a bucket's whole batch (docs/configuration.md#buckets-file), so this costs
// a few hundred nanoseconds per batch. Replays are left out (their frames were read long ago).
import { Histogram } from 'prom-client'

const SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
const MESSAGES = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000]
// 1 KiB to 64 MiB, ×4 apart.
const BYTES = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => 1024 * 4 ** (n - 1))

export class BatchMetrics {
  readonly settleSeconds = new Histogram({
    name: 'kahets_write_settled_seconds',
    help: 'Per stream write: seconds from reading its oldest frame off the socket to the stream settling the write (file fsynced, Kafka acknowledged).',
    labelNames: ['stream'],
    buckets: SECONDS,
    registers: [],
  })

  readonly messages = new Histogram({
    name: 'kahets_batch_messages',
    help: 'Messages per write a stream settled.',
    labelNames: ['stream'],
    buckets: MESSAGES,
    registers: [],
  })

  readonly bytes = new Histogram({
    name: 'kahets_batch_bytes',
    help: 'Wire bytes per write a stream settled.',
    labelNames: ['stream'],
    buckets: BYTES,
    registers: [],
  })

  readonly #declared = new Set<string>()

  /** Every histogram of a stream, from zero, so it is in /metrics before its first write. */
  declare (stream: string): void {
    // zero() resets a series: a stream already counting (kept by a reload) keeps its counts.
    if (this.#declared.has(stream)) return
    this.#declared.add(stream)
    for (const h of [this.settleSeconds, this.messages, this.bytes]) h.zero({ stream })
  }

  /** A write of `frames` frames and `bytes` bytes settled `seconds` after its oldest frame was read. */
  observe (stream: string, seconds: number, frames: number, bytes: number): void {
    this.#declared.add(stream)
    const labels = { stream }
    this.settleSeconds.observe(labels, Math.max(0, seconds))
    this.messages.observe(labels, frames)
    this.bytes.observe(labels, bytes)
  }
}
