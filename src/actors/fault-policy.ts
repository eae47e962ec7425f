// The one place that decides what a failed stream write means (issue 10, "Fault scope"). It
// reads the error's `scope` and `retriable` (src/errors.ts), set where the error was first
// understood (an errno in rotating-file.ts, a Kafka error type in kafka-errors.ts); nothing
// here or in its callers parses a message.
//
//   scope        retriable  decision
//   destination  no         drop that write's frames, counted (topic_rejected for Kafka
//                           topics, destination_rejected otherwise); the lane goes on
//   destination  yes        divert that bucket's lane: its frames go to the backup (held in
//                           the lane when there is none) and the destination is tried again
//                           at the next probe tick; the other lanes go on
//   stream       any        the whole stream: failover to the backup, or restart (hold and
//                           retry) when it has none; the supervisor applies it (actor.ts)
import { ErrorCodes, KahetsError } from '../errors.ts'
import type { DropReason } from '../stats.ts'

export type FaultDecision =
  | { readonly action: 'drop', readonly reason: DropReason }
  | { readonly action: 'divert' }
  | { readonly action: 'failover' }
  | { readonly action: 'restart' }

export function decideFault (error: unknown, hasBackup: boolean): FaultDecision {
  if (error instanceof KahetsError && error.scope === 'destination') {
    if (error.retriable) return { action: 'divert' }
    return { action: 'drop', reason: error.code === ErrorCodes.TOPIC_REJECTED ? 'topic_rejected' : 'destination_rejected' }
  }
  return { action: hasBackup ? 'failover' : 'restart' }
}
