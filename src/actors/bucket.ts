// One bucket actor per bucket name in use (docs/architecture.md#how-it-works): frames wait here until `batch` of them
// arrived, or FLUSH_BYTES of them, or `batchTimeout` ms passed since the first, then fan out
// by slice to the streams. A bucket with a payload schema screens each frame first
// (docs/configuration.md#payload-schemas): what fails goes to its dead-letter stream, or is dropped.
import type { BucketConfig, SliceBy } from '../config/buckets.ts'
import { jsonPath } from '../config/buckets.ts'
import type { PayloadSchema } from '../config/payload-schema.ts'
import type { Logger } from '../log.ts'
import { RateLimitedLog } from '../log.ts'
import type { MemoryBudget } from '../memory-budget.ts'
import { memoryCharge, type Frame } from '../protocol/frame.ts'
import { compact } from '../protocol/compact.ts'
import type { BucketStats, FlowStats } from '../stats.ts'
import { Actor, type Supervisor } from './actor.ts'
import { Charge, NO_RECEIPTS, type Delivery } from './delivery.ts'
import { refuseFrame, refuseFrames, type Receipt } from '../receipts.ts'
import type { StreamActor } from './stream-actor.ts'
import { keyInSlice } from './key-slice.ts'

/**
 * A bucket also flushes once it holds this many wire bytes, whatever `batch` says: 1000
 * messages of 8 KiB (kahego's PHP example) are 8 MB, which a slow trickle of them would take
 * the whole batchTimeout to gather and then hand a stream at once. Measured at half rate,
 * 8 KiB to Kafka (bench, 1/8/64 clients): p99 57.5/58.9/79.8 ms before.
 */
export const FLUSH_BYTES = 1024 * 1024

export interface Binding {
  readonly stream: StreamActor
  readonly slice: number
  /** "key": a frame with a key is in the slice when its key is (key-slice.ts); else at random. */
  readonly sliceBy: SliceBy
  readonly flow: FlowStats
}

export type BucketMsg =
  | { readonly type: 'frames', readonly frames: readonly Frame[], readonly bytes: number, readonly receipt?: Receipt | null }
  | { readonly type: 'timeout' }

export type BucketSignal =
  | { readonly kind: 'flush' }
  | { readonly kind: 'reconfigure', readonly config: BucketConfig, readonly bindings: readonly Binding[], readonly deadLetter: Binding | null, readonly done: () => void }

export interface BucketOptions {
  name: string
  config: BucketConfig
  bindings: readonly Binding[]
  /** The stream rejected payloads go to (config.deadLetter), with this bucket's flow to it. */
  deadLetter?: Binding | null
  stats: BucketStats
  budget: MemoryBudget
  log: Logger
  supervisor: Supervisor
  random?: () => number
}

const overflowLog = new RateLimitedLog()
const rejectLog = new RateLimitedLog()
const NO_FRAMES: readonly Frame[] = Object.freeze([])

/** REFUSED's reason for a rejected payload (docs/protocol.md). */
const REFUSAL = { not_json: 'not_json', invalid: 'schema_invalid' } as const

export class BucketActor extends Actor<BucketMsg, BucketSignal> {
  readonly bucket: string
  #config: BucketConfig
  #bindings: readonly Binding[]
  #deadLetter: Binding | null
  readonly #stats: BucketStats
  readonly #budget: MemoryBudget
  readonly #log: Logger
  readonly #random: () => number
  #pending: Frame[] = []
  #pendingBytes = 0
  // Bytes charged to MAXMEMORY for the pending frames: wire bytes plus per-frame overhead.
  #pendingCharge = 0
  #timer: NodeJS.Timeout | null = null
  // Receipts of durable acknowledged frames among #pending, each holding one hold of ours.
  #pendingReceipts: Receipt[] = []
  // Rejected frames waiting for the dead-letter stream; they leave with the pending frames.
  #rejected: Frame[] = []
  #rejectedBytes = 0

  constructor (opts: BucketOptions) {
    super(`bucket:${opts.name}`, opts.supervisor)
    this.bucket = opts.name
    this.#config = opts.config
    this.#bindings = opts.bindings
    this.#deadLetter = opts.deadLetter ?? null
    this.#stats = opts.stats
    this.#budget = opts.budget
    this.#log = opts.log
    this.#random = opts.random ?? Math.random
  }

  get pending (): { frames: number, bytes: number } {
    return { frames: this.#pending.length + this.#rejected.length, bytes: this.#pendingBytes + this.#rejectedBytes }
  }

  /** Frames waiting here for this stream: in flight on the (bucket, stream) flow. */
  pendingFor (streamId: string): number {
    if (this.#deadLetter?.stream.id === streamId) return this.#rejected.length
    return this.#bindings.some((b) => b.stream.id === streamId) ? this.#pending.length : 0
  }

  protected override receive (msg: BucketMsg): void {
    switch (msg.type) {
      case 'frames':
        this.#accept(msg.frames, msg.bytes, msg.receipt ?? null)
        return
      case 'timeout':
        this.#timer = null
        this.#flush()
        return
      default: {
        const never: never = msg
        throw new Error(`unknown message ${JSON.stringify(never)}`)
      }
    }
  }

  protected override receiveSystem (msg: BucketSignal): void {
    switch (msg.kind) {
      case 'flush':
        this.#flush()
        return
      case 'reconfigure':
        // What is pending was accepted under the old streams: it leaves by them.
        this.#flush()
        this.#config = msg.config
        this.#bindings = msg.bindings
        this.#deadLetter = msg.deadLetter
        msg.done()
        return
      default: {
        const never: never = msg
        throw new Error(`unknown signal ${JSON.stringify(never)}`)
      }
    }
  }

  protected override onStop (): void {
    this.#flush()
  }

  #accept (frames: readonly Frame[], bytes: number, receipt: Receipt | null): void {
    this.#stats.received += frames.length
    this.#stats.receivedBytes += bytes
    for (const b of this.#bindings) b.flow.received += frames.length
    let valid = frames
    let validBytes = bytes
    let dead = NO_FRAMES
    let deadBytes = 0
    const schema = this.#config.schema
    if (schema !== null) {
      const screened = this.#screen(schema, frames)
      if (screened !== null) {
        // Rejected frames leave the bucket's own flows as drops; the dead-letter flow
        // receives them (docs/configuration.md#payload-schemas: the accounting).
        valid = screened.valid
        validBytes = bytes - screened.rejectedBytes
        for (const b of this.#bindings) b.flow.drop('schema_rejected', screened.rejected.length)
        if (this.#deadLetter !== null) {
          dead = screened.rejected
          deadBytes = screened.rejectedBytes
          this.#deadLetter.flow.received += dead.length
        }
        if (valid.length + dead.length === 0) {
          receipt?.release()
          return
        }
      }
    }
    const charge = memoryCharge(valid.length + dead.length, validBytes + deadBytes)
    if (!this.#budget.tryAcquire(charge)) {
      if (valid.length > 0) this.#overflow(this.#bindings, valid, validBytes, receipt)
      if (dead.length > 0) this.#overflow([this.#deadLetter!], dead, deadBytes, receipt)
      receipt?.release()
      return
    }
    // Acknowledged frames (receipts.ts): *accepted* once taken; *durable* once the batch they
    // leave in is done with by every stream (its Charge holds the receipt).
    if (receipt !== null) {
      if (receipt.durable) this.#pendingReceipts.push(receipt)
      else receipt.release()
    }
    for (const f of valid) this.#pending.push(f)
    for (const f of dead) this.#rejected.push(f)
    this.#pendingBytes += validBytes
    this.#rejectedBytes += deadBytes
    this.#pendingCharge += charge
    if (this.#pending.length + this.#rejected.length >= this.#config.batch || this.#pendingBytes + this.#rejectedBytes >= FLUSH_BYTES) this.#flush()
    else if (this.#timer === null) {
      this.#timer = setTimeout(() => { if (this.state !== 'stopped') this.tell({ type: 'timeout' }) }, this.#config.batchTimeout)
      this.#timer.unref()
    }
  }

  // MAXMEMORY's intake limit reached (docs/guarantees.md#bounded-memory): never block the client because Kafka is slow.
  // Each stream's share goes straight to that stream's backup, charged until the file has it
  // (memory-budget.ts), or is dropped and counted when the stream has none.
  #overflow (bindings: readonly Binding[], frames: readonly Frame[], bytes: number, receipt: Receipt | null): void {
    let dropped = 0
    for (const b of bindings) {
      const share = this.#share(b, frames, bytes)
      if (share === null) continue
      if (b.stream.canSpill) {
        const charge = memoryCharge(share.frames.length, share.bytes)
        this.#budget.acquireSpill(charge)
        const receipts = receipt?.durable === true ? [receipt] : NO_RECEIPTS
        b.stream.spill({ bucket: this.bucket, ...share, flow: b.flow, charge: new Charge(this.#budget, charge, 1, receipts) })
      } else {
        b.flow.drop('max_memory', share.frames.length)
        refuseFrames(share.frames, 'max_memory')
        dropped += share.frames.length
      }
    }
    overflowLog.error(this.#log, `overflow:${this.bucket}`, { bucket: this.bucket, frames: frames.length, dropped, maxMemory: this.#budget.limit },
      dropped > 0 ? 'MAXMEMORY reached: messages dropped (no backup stream)' : 'MAXMEMORY reached: messages spilled to the backup stream')
  }

  #flush (): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer)
      this.#timer = null
    }
    const frames = this.#pending
    const dead = this.#rejected
    if (frames.length === 0 && dead.length === 0) return
    const bytes = this.#pendingBytes
    const deadBytes = this.#rejectedBytes
    // The Charge keeps the array it is given: a batch without receipts must not keep
    // #pendingReceipts, or it would release the next batch's receipts, never held by it.
    const receipts = this.#pendingReceipts.length > 0 ? this.#pendingReceipts : NO_RECEIPTS
    if (receipts.length > 0) this.#pendingReceipts = []
    // One charge for the batch and its rejects: a durable receipt waits for the dead-letter
    // stream too (docs/protocol.md, "Levels").
    const refs = (frames.length > 0 ? this.#bindings.length : 0) + (dead.length > 0 ? 1 : 0)
    const charge = new Charge(this.#budget, this.#pendingCharge, refs, receipts)
    for (const r of receipts) r.release()
    this.#pending = []
    this.#pendingBytes = 0
    this.#pendingCharge = 0
    if (dead.length > 0) {
      this.#rejected = []
      this.#rejectedBytes = 0
      const dl = this.#deadLetter!
      dl.stream.write({ bucket: this.bucket, frames: dead, bytes: deadBytes, flow: dl.flow, charge })
    }
    if (frames.length === 0) return
    for (const b of this.#bindings) {
      const share = this.#share(b, frames, bytes)
      if (share === null) {
        charge.done()
        continue
      }
      const delivery: Delivery = { bucket: this.bucket, ...share, flow: b.flow, charge }
      b.stream.write(delivery)
    }
  }

  /**
   * Checks every frame's payload against the schema: null when all pass (the fast case makes
   * no arrays), else the frames that passed and those that did not. Each rejection is counted,
   * refused (acknowledged mode) and logged, rate-limited per bucket and reason.
   */
  #screen (schema: PayloadSchema, frames: readonly Frame[]): { valid: readonly Frame[], rejected: readonly Frame[], rejectedBytes: number } | null {
    let valid: Frame[] | null = null
    let rejected: Frame[] | null = null
    let rejectedBytes = 0
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!
      const failure = schema.check(f)
      if (failure === null) {
        valid?.push(f)
        continue
      }
      if (valid === null || rejected === null) {
        valid = frames.slice(0, i)
        rejected = []
      }
      rejected.push(f)
      rejectedBytes += f.size
      const counts = this.#stats.schemaRejected
      counts.set(failure.reason, (counts.get(failure.reason) ?? 0) + 1)
      refuseFrame(f, REFUSAL[failure.reason])
      rejectLog.warn(this.#log, `schema:${this.bucket}:${failure.reason}`, {
        bucket: this.bucket,
        reason: failure.reason,
        path: jsonPath(failure.path),
        error: failure.message,
        schema: schema.file,
        deadLetter: this.#deadLetter?.stream.id ?? null,
      }, failure.reason === 'not_json' ? 'payload is not JSON' : 'payload does not match the bucket\'s schema')
    }
    return rejected === null ? null : { valid: valid!, rejected, rejectedBytes }
  }

  /** A stream's slice of the frames (sampled per frame, or per key), counting what it leaves out; null if none. */
  #share (b: Binding, frames: readonly Frame[], bytes: number): { frames: readonly Frame[], bytes: number } | null {
    if (b.slice >= 1) return { frames, bytes }
    const picked: Frame[] = []
    if (b.sliceBy === 'key') {
      for (const f of frames) if (f.keyLength > 0 ? keyInSlice(f.key!, b.slice) : this.#random() < b.slice) picked.push(f)
    } else {
      for (const f of frames) if (this.#random() < b.slice) picked.push(f)
    }
    b.flow.sampledOut += frames.length - picked.length
    // A sampled slice would keep whole socket chunks alive for a fraction of their frames.
    return picked.length === 0 ? null : { frames: compact(picked), bytes: sumBytes(picked) }
  }
}

function sumBytes (frames: readonly Frame[]): number {
  let n = 0
  for (const f of frames) n += f.size
  return n
}
