// Acknowledged mode (docs/protocol.md, "Control frames"): how a connection learns that its
// data frames reached their level.
//
// A Receipt stands for the data frames of one connection decoded from one read (or one
// invalid frame), in wire order. Whoever still has to do something with them holds it:
//
//   session ──hold per bucket──▶ bucket ──(durable) the flushed batch's Charge holds it──▶
//   streams: delivered / backed up / dropped ──▶ Charge done ──release──▶ settled
//
// At level *accepted* the bucket releases its hold as soon as it has taken the frames (they
// are then flushed or backed up at shutdown); at level *durable* it hands the hold on to the
// Charge of the batch the frames leave in (delivery.ts), which is released when the last
// stream is done with that batch. A receipt settles once it is sealed (the session has
// handed out every part) and nobody holds it.
//
// Refusals are marked on the frames themselves, where they happen (an unknown bucket, a drop
// for memory with no backup, a topic or destination refused, a stream that gave up): a frame
// of an acknowledged connection carries a tag naming its receipt and index. Fire-and-forget
// frames carry none, so marking them costs a WeakMap lookup on drop paths only.
import type { Frame } from './protocol/frame.ts'

export interface ReceiptOwner {
  /** A receipt settled: the owner advances its connection's counts. */
  settled (receipt: Receipt): void
}

export class Receipt {
  readonly #owner: ReceiptOwner
  /** Index (since HELLO) of the receipt's first data frame. */
  readonly first: number
  readonly count: number
  readonly durable: boolean
  #holds = 0
  #sealed = false
  #done = false
  // Indexes of refused frames, made on the first refusal; a frame refused by two streams counts once.
  #refused: Set<number> | null = null
  /** The reason of the first refusal, for REFUSED. */
  reason = ''

  constructor (owner: ReceiptOwner, first: number, count: number, durable: boolean) {
    this.#owner = owner
    this.first = first
    this.count = count
    this.durable = durable
  }

  get done (): boolean { return this.#done }
  get refused (): number { return this.#refused?.size ?? 0 }
  /** The lowest refused index, or -1. */
  get firstRefused (): number {
    if (this.#refused === null) return -1
    let min = Infinity
    for (const i of this.#refused) if (i < min) min = i
    return min
  }

  hold (): void {
    this.#holds++
  }

  release (): void {
    if (this.#holds <= 0) throw new Error('receipt released more often than held')
    if (--this.#holds === 0 && this.#sealed) this.#settle()
  }

  /** Every part of the receipt was handed out. */
  seal (): void {
    this.#sealed = true
    if (this.#holds === 0) this.#settle()
  }

  refuse (index: number, reason: string): void {
    if (this.#done) return
    this.#refused ??= new Set()
    if (this.#refused.size === 0) this.reason = reason
    this.#refused.add(index)
  }

  #settle (): void {
    if (this.#done) return
    this.#done = true
    this.#owner.settled(this)
  }
}

interface Tag {
  readonly receipt: Receipt
  readonly index: number
}

const tags = new WeakMap<Frame, Tag>()

/** Frames `frames[i]` is data frame `receipt.first + offset + i` of its connection. */
export function tagFrames (frames: readonly Frame[], receipt: Receipt, offset: number): void {
  for (let i = 0; i < frames.length; i++) tags.set(frames[i]!, { receipt, index: receipt.first + offset + i })
}

/** A frame copied into a buffer of its own (compact.ts) keeps its connection's tag. */
export function retag (from: Frame, to: Frame): void {
  const tag = tags.get(from)
  if (tag !== undefined) tags.set(to, tag)
}

/** These frames were refused (dropped, whatever the reason): their connections learn it. */
export function refuseFrames (frames: readonly Frame[], reason: string): void {
  for (const f of frames) refuseFrame(f, reason)
}

export function refuseFrame (frame: Frame, reason: string): void {
  const tag = tags.get(frame)
  if (tag !== undefined) tag.receipt.refuse(tag.index, reason)
}

