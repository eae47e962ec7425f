// Counters of what Kafka streams handled without the backup (issue 12, docs/kafka.md): produce
// requests retried on a new leader while the cluster still answered, and the messages those
// retries sent again although Kafka may already have written them (a lost connection or a dead
// leader says nothing about what it appended: those may be in Kafka twice). Kept per stream id
// for the life of the process (per-stream-registry.ts), so a rebuilt stream keeps counting up.
import { perStreamRegistry } from './per-stream-registry.ts'

export class KafkaStreamStats {
  /** Requests (one per topic) sent again after a leader change, a lost connection or too few in-sync replicas. */
  retries = 0
  /** Messages in those requests whose outcome Kafka never reported: each may be there twice. */
  resentUnknown = 0
}

const registry = perStreamRegistry(() => new KafkaStreamStats())

export function kafkaStreamStats (stream: string): KafkaStreamStats {
  return registry.get(stream)
}

export function allKafkaStreamStats (): ReadonlyMap<string, KafkaStreamStats> {
  return registry.all
}
