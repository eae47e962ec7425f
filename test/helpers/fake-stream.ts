// A stream that keeps what it is given in memory and fails on demand: for unit tests of the
// stream, bucket and manager actors (test/unit), never the only proof that a feature works.
import { ErrorCodes, KahetsError } from '../../src/errors.ts'
import type { Frame } from '../../src/protocol/frame.ts'
import type { Stream } from '../../src/streams/stream.ts'

export class FakeStream implements Stream {
  readonly type = 'file' as const
  /** Payloads written, per bucket, in order. */
  readonly written = new Map<string, string[]>()
  /** Buckets whose writes fail with this error. */
  readonly refuse = new Map<string, KahetsError>()
  /** The whole stream fails every write and probe. */
  down = false
  listClosedFiles?: () => Promise<string[]>

  constructor (keepsFiles = false) {
    if (keepsFiles) this.listClosedFiles = async () => []
  }

  async write (bucket: string, frames: readonly Frame[]): Promise<undefined> {
    await Promise.resolve()
    if (this.down) throw new KahetsError(ErrorCodes.STREAM_WRITE_FAILED, 'disk full', { retriable: true })
    const refusal = this.refuse.get(bucket)
    if (refusal !== undefined) throw refusal
    const list = this.written.get(bucket) ?? []
    for (const f of frames) list.push(f.payload.toString())
    this.written.set(bucket, list)
    return undefined
  }

  async probe (): Promise<boolean> { return !this.down }
  async reset (): Promise<void> {}
  async close (): Promise<void> {}
}
