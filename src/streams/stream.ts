// What every stream (Kafka topic, rotating files) offers the stream actor. A stream knows
// how to move frames; when to fail over, retry or drop is the actor's supervisor's call.
import type { Frame } from '../protocol/frame.ts'
import type { DropReason } from '../stats.ts'

/**
 * Frames a stream refused for good while the stream itself is fine (a message over
 * message.max.bytes, a topic Kafka will not create): counted and dropped, never retried,
 * and never a reason to fail over (issue 3).
 */
export type Rejections = ReadonlyMap<DropReason, number>

export interface FileUsage {
  readonly files: number
  readonly bytes: number
  /** When kahets received the oldest message in them (ms since the epoch); null when none. */
  readonly oldestAt: number | null
}

export interface Stream {
  readonly type: 'file' | 'kafka'
  /**
   * Delivers frames of one bucket, in order. Resolves once they are durable (file: written
   * and fsynced) or acknowledged (Kafka), with the frames it refused for good, if any.
   * Rejects with a KahetsError when the stream failed; nothing of a rejected call counts as
   * delivered.
   */
  write (bucket: string, frames: readonly Frame[]): Promise<Rejections | undefined>
  /** True when the stream can take writes again (used while failed over). */
  probe (): Promise<boolean>
  /** Rebuilds connections after a failure; a file stream closes its files (the next write opens new ones). */
  reset (): Promise<void>
  /** File streams: every file this stream wrote that is not open now, oldest first (for replay). */
  listClosedFiles? (): Promise<string[]>
  /** File streams: the files this stream holds, open ones included (a backup's spool, for /metrics). */
  usage? (): Promise<FileUsage>
  /** File streams: moves a file that could not be read whole out of the replay's way; returns where to. */
  quarantine? (file: string): Promise<string>
  close (): Promise<void>
}
