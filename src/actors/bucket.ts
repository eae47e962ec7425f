// One bucket actor per bucket name in use (SPEC §3): frames wait here until `batch` of them
// arrived, or FLUSH_BYTES of them, or `batchTimeout` ms passed since the first, then fan out
// by slice to the streams.
import type { BucketConfig, SliceBy } from '../config/buckets.ts'
import type { Logger } from '../log.ts'
import { RateLimitedLog } from '../log.ts'
import type { MemoryBudget } from '../memory-budget.ts'
import { memoryCharge, type Frame } from '../protocol/frame.ts'
import { compact } from '../protocol/compact.ts'
import type { BucketStats, FlowStats } from '../stats.ts'
import { Actor, type Supervisor } from './actor.ts'
import { Charge, NO_RECEIPTS, type Delivery } from './delivery.ts'
import { refuseFrames, type Receipt } from '../receipts.ts'
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
  | { readonly kind: 'reconfigure', readonly config: BucketConfig, readonly bindings: readonly Binding[], readonly done: () => void }

export interface BucketOptions {
  name: string
  config: BucketConfig
  bindings: readonly Binding[]
  stats: BucketStats
  budget: MemoryBudget
  log: Logger
  supervisor: Supervisor
  random?: () => number
}

const overflowLog = new RateLimitedLog()

export class BucketActor extends Actor<BucketMsg, BucketSignal> {
  readonly bucket: string
  #config: BucketConfig
  #bindings: readonly Binding[]
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

  constructor (opts: BucketOptions) {
    super(`bucket:${opts.name}`, opts.supervisor)
    this.bucket = opts.name
    this.#config = opts.config
    this.#bindings = opts.bindings
    this.#stats = opts.stats
    this.#budget = opts.budget
    this.#log = opts.log
    this.#random = opts.random ?? Math.random
  }

  get pending (): { frames: number, bytes: number } { return { frames: this.#pending.length, bytes: this.#pendingBytes } }
  /** Is the bucket currently feeding this stream? (Its pending frames count for that flow.) */
  feeds (streamId: string): boolean { return this.#bindings.some((b) => b.stream.id === streamId) }

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
    const charge = memoryCharge(frames.length, bytes)
    if (!this.#budget.tryAcquire(charge)) {
      this.#overflow(frames, bytes, receipt)
      receipt?.release()
      return
    }
    // Acknowledged frames (receipts.ts): *accepted* once taken; *durable* once the batch they
    // leave in is done with by every stream (its Charge holds the receipt).
    if (receipt !== null) {
      if (receipt.durable) this.#pendingReceipts.push(receipt)
      else receipt.release()
    }
    for (const f of frames) this.#pending.push(f)
    this.#pendingBytes += bytes
    this.#pendingCharge += charge
    if (this.#pending.length >= this.#config.batch || this.#pendingBytes >= FLUSH_BYTES) this.#flush()
    else if (this.#timer === null) {
      this.#timer = setTimeout(() => { if (this.state !== 'stopped') this.tell({ type: 'timeout' }) }, this.#config.batchTimeout)
      this.#timer.unref()
    }
  }

  // MAXMEMORY's intake limit reached (SPEC §4): never block the client because Kafka is slow.
  // Each stream's share goes straight to that stream's backup, charged until the file has it
  // (memory-budget.ts), or is dropped and counted when the stream has none.
  #overflow (frames: readonly Frame[], bytes: number, receipt: Receipt | null): void {
    let dropped = 0
    for (const b of this.#bindings) {
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
    if (frames.length === 0) return
    const bytes = this.#pendingBytes
    const receipts = this.#pendingReceipts
    const charge = new Charge(this.#budget, this.#pendingCharge, this.#bindings.length, receipts)
    if (receipts.length > 0) {
      this.#pendingReceipts = []
      for (const r of receipts) r.release()
    }
    this.#pending = []
    this.#pendingBytes = 0
    this.#pendingCharge = 0
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
