// What every stream (Kafka topic, rotating files) offers the stream actor. A stream knows
// how to move frames; when to fail over, retry or drop is the actor's supervisor's call.
import type { Frame } from '../protocol/frame.ts'

export interface Stream {
  readonly type: 'file' | 'kafka'
  /**
   * Delivers frames of one bucket, in order. Resolves once they are durable (file: written
   * and fsynced) or acknowledged (Kafka). Rejects with a KahetsError; nothing of a rejected
   * call counts as delivered.
   */
  write (bucket: string, frames: readonly Frame[]): Promise<void>
  /** True when the stream can take writes again (used while failed over). */
  probe (): Promise<boolean>
  /** Rebuilds connections or handles after a failure. */
  reset (): Promise<void>
  close (): Promise<void>
}
