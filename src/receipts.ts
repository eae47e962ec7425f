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
import { type Frame, type FrameOrigin, WireFrame } from './protocol/frame.ts'

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
  /** The receipt's frames in wire order (session.ts sets them), to find a refused frame's index. */
  frames: readonly Frame[] = []
  // Refused frames, made on the first refusal; a frame refused by two streams counts once.
  #refused: Set<Frame> | null = null
  // Refused data frames kahets never made a Frame of (invalid ones).
  #refusedUnseen = 0
  /** The reason of the first refusal, for REFUSED. */
  reason = ''

  constructor (owner: ReceiptOwner, first: number, count: number, durable: boolean) {
    this.#owner = owner
    this.first = first
    this.count = count
    this.durable = durable
  }

  get done (): boolean { return this.#done }
  get refused (): number { return (this.#refused?.size ?? 0) + this.#refusedUnseen }
  /** The index (since HELLO) of the first refused frame, or -1. */
  get firstRefused (): number {
    if (this.#refusedUnseen > 0) return this.first
    if (this.#refused === null) return -1
    const i = this.frames.findIndex((f) => this.#refused!.has(f))
    return i < 0 ? this.first : this.first + i
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

  refuse (frame: Frame, reason: string): void {
    if (this.#done) return
    this.#refused ??= new Set()
    if (this.#refused.size === 0) this.reason = reason
    this.#refused.add(frame)
  }

  /** All of this receipt's frames were refused before they became Frames (invalid frames). */
  refuseUnseen (reason: string): void {
    if (this.#done || this.#refusedUnseen > 0) return
    if (this.refused === 0) this.reason = reason
    this.#refusedUnseen = this.count
  }

  #settle (): void {
    if (this.#done) return
    this.#done = true
    this.#owner.settled(this)
  }
}

// Which receipt a frame belongs to, found without a per-frame object: a decoded batch's
// frames all come from the chunk just read (and at most one from the buffer of a frame that
// chunk completed), and that chunk's FrameOrigin belongs to the batch's receipt alone. A
// frame copied out of its chunk (compact.ts) points back at the frame it copies.
const byOrigin = new WeakMap<FrameOrigin, Receipt>()
const copied = new WeakMap<Frame, Frame>()

/** `frames` are the receipt's data frames, in wire order: `frames[i]` is data frame `receipt.first + i`. */
export function tagFrames (frames: readonly Frame[], receipt: Receipt): void {
  receipt.frames = frames
  let last: FrameOrigin | null = null
  for (const f of frames) {
    if (!(f instanceof WireFrame) || f.origin === last) continue
    last = f.origin
    byOrigin.set(last, receipt)
  }
}

/** A frame copied into a buffer of its own (compact.ts) stays its connection's frame. */
export function retag (from: Frame, to: Frame): void {
  if (from instanceof WireFrame && byOrigin.has(from.origin)) copied.set(to, copied.get(from) ?? from)
}

/** These frames were refused (dropped, whatever the reason): their connections learn it. */
export function refuseFrames (frames: readonly Frame[], reason: string): void {
  for (const f of frames) refuseFrame(f, reason)
}

export function refuseFrame (frame: Frame, reason: string): void {
  const original = copied.get(frame) ?? frame
  if (!(original instanceof WireFrame)) return
  byOrigin.get(original.origin)?.refuse(original, reason)
}
