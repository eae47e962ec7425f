// Frame decoder for the client → kahets byte stream (docs/protocol.md#data-frames). Pure: it never sees a
// socket, so it is tested with bytes alone.
//
//   frame   = length:u32le body          ; length = byte length of body
//   body    = bucketLen:u8 bucket keyLen:u8 key payload
//   bucket  = 1*255 ( ALPHA / DIGIT / "." / "_" / "-" ) , not "." or ".."
//   key     = keyLen bytes               ; keyLen 0 = null key
//   payload = length - 2 - bucketLen - keyLen bytes (may be empty)
//
// bucketLen 0 marks a control frame (docs/protocol.md, acknowledged mode): its body goes to
// the sink's `control`, in order with the data frames around it. An invalid body is
// skipped whole (its length is trusted, so the stream stays in sync); a length above
// maxFrameBytes means the stream cannot be trusted and the decoder stops.
//
// An unfinished frame is held in one buffer (heldBytes, charged to MAXMEMORY by the session).
// A frame of up to EAGER_BYTES gets its whole buffer at once. A larger one first holds only
// the bytes that came with it, and gets its whole buffer when the next chunk arrives: a
// connection paused for memory pressure then holds at most what it had read, not a whole
// frame it announced (docs/guarantees.md#bounded-memory).
import { ErrorCodes, ProtocolError } from '../errors.ts'
import { type Frame, FrameOrigin, WireFrame, LENGTH_BYTES, DEFAULT_MAX_FRAME_BYTES, isValidBucketBytes } from './frame.ts'

/** Frames up to this size (a socket chunk) get their whole buffer when they begin. */
export const EAGER_BYTES = 64 * 1024

/** `hello`: a HELLO that is not the first frame, or one kahets cannot serve (docs/protocol.md). */
export type InvalidReason = 'bad_bucket' | 'fields_overflow' | 'control_frame' | 'hello'

export interface FrameSink {
  /** Whole frames decoded from one push(), in arrival order. Never called with an empty list. */
  frames (batch: Frame[]): void
  /**
   * A frame that was skipped; `bytes` is its whole size on the wire. Frames decoded before
   * it were handed to `frames` first, so callbacks come in wire order.
   */
  invalid (reason: InvalidReason, bytes: number): void
  /** A control frame (bucketLen 0): `body` is what follows the 0, opcode first; in wire order too. */
  control? (body: Buffer, bytes: number): void
}

export class FrameDecoder {
  readonly #sink: FrameSink
  readonly #maxFrameBytes: number
  readonly #now: () => number
  readonly #mayHoldWhole: (total: number) => boolean
  // A frame that straddles chunks is assembled here: one allocation per such frame, two for
  // one larger than EAGER_BYTES (see above). #partialTotal is its whole size on the wire.
  #partial: Buffer | null = null
  #partialFill = 0
  #partialTotal = 0
  #partialsStarted = 0
  // The length field itself may be split; it is gathered in this small buffer first.
  readonly #header = Buffer.alloc(LENGTH_BYTES)
  #headerFill = 0
  #failed = false
  // Clients send long runs of one bucket: the last name's bytes and string are kept so a
  // repeat costs a byte comparison, not a validation and a new string.
  readonly #lastBucketBytes = Buffer.alloc(255)
  #lastBucketLen = 0
  #lastBucket = ''

  /**
   * `mayHoldWhole(total)` is asked before a large unfinished frame gets its whole buffer
   * (the session asks MAXMEMORY); while it says no, the frame holds only the bytes read.
   */
  constructor (sink: FrameSink, opts: { maxFrameBytes?: number, now?: () => number, mayHoldWhole?: (total: number) => boolean } = {}) {
    this.#sink = sink
    this.#maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    this.#now = opts.now ?? Date.now
    this.#mayHoldWhole = opts.mayHoldWhole ?? (() => true)
  }

  /** Bytes of an unfinished frame held back, waiting for the rest. */
  get pendingBytes (): number {
    return this.#partial !== null ? this.#partialFill : this.#headerFill
  }

  /** Memory held for the unfinished frame: its buffer, which may be larger than pendingBytes. */
  get heldBytes (): number {
    return this.#partial !== null ? this.#partial.length : this.#headerFill
  }

  /**
   * The unfinished frame has its whole buffer: reading the rest of it costs no more memory.
   * `partialsStarted` tells one unfinished frame from the next.
   */
  get holdsWholeBuffer (): boolean {
    return this.#partial !== null && this.#partial.length === this.#partialTotal
  }

  get partialsStarted (): number {
    return this.#partialsStarted
  }

  /** The whole size of the unfinished frame, 0 when its length is not known yet. */
  get partialTotal (): number {
    return this.#partial !== null ? this.#partialTotal : 0
  }

  /**
   * Decodes `chunk`. Frames completed by it go to the sink in one batch. Throws
   * ProtocolError (FRAME_TOO_LARGE) after handing over the frames that preceded the bad
   * length; the decoder then refuses further input.
   */
  push (chunk: Buffer): void {
    if (this.#failed) throw new ProtocolError(ErrorCodes.FRAME_TOO_LARGE, 'decoder already failed on an oversized frame')
    const out: Frame[] = []
    const now = this.#now()
    let pos = 0
    try {
      pos = this.#continuePartial(chunk, pos, out, now)
      const origin = new FrameOrigin(chunk, now)
      const end = chunk.length
      while (pos < end) {
        if (end - pos < LENGTH_BYTES) {
          chunk.copy(this.#header, 0, pos, end)
          this.#headerFill = end - pos
          pos = end
          break
        }
        const n = chunk.readUInt32LE(pos)
        this.#checkLength(n)
        const total = LENGTH_BYTES + n
        if (end - pos >= total) {
          this.#emit(origin, pos, pos + total, out)
          pos += total
        } else {
          this.#startPartial(total, end - pos)
          this.#partialFill = chunk.copy(this.#partial!, 0, pos, end)
          pos = end
        }
      }
    } finally {
      if (out.length > 0) this.#sink.frames(out)
    }
  }

  /** The input ended. Returns the bytes of an unfinished frame that are lost (0 if none). */
  end (): number {
    const lost = this.pendingBytes
    this.#partial = null
    this.#partialFill = 0
    this.#headerFill = 0
    return lost
  }

  /** An unfinished frame of `total` bytes begins, `available` of them at hand. */
  #startPartial (total: number, available: number): void {
    this.#partial = Buffer.allocUnsafe(total <= EAGER_BYTES ? total : Math.min(total, available))
    this.#partialTotal = total
    this.#partialsStarted++
  }

  #continuePartial (chunk: Buffer, pos: number, out: Frame[], now: number): number {
    if (this.#headerFill > 0) {
      const take = Math.min(LENGTH_BYTES - this.#headerFill, chunk.length - pos)
      chunk.copy(this.#header, this.#headerFill, pos, pos + take)
      this.#headerFill += take
      pos += take
      if (this.#headerFill < LENGTH_BYTES) return pos
      const n = this.#header.readUInt32LE(0)
      this.#headerFill = 0
      this.#checkLength(n)
      this.#startPartial(LENGTH_BYTES + n, LENGTH_BYTES + chunk.length - pos)
      this.#header.copy(this.#partial!, 0)
      this.#partialFill = LENGTH_BYTES
    } else if (this.#partial !== null && this.#partial.length < this.#partialTotal) {
      // A large frame's next chunk arrived: it gets its whole buffer if the owner allows,
      // else just room for this chunk's bytes.
      const size = this.#mayHoldWhole(this.#partialTotal)
        ? this.#partialTotal
        : Math.min(this.#partialTotal, this.#partialFill + chunk.length - pos)
      const grown = Buffer.allocUnsafe(size)
      this.#partial.copy(grown, 0, 0, this.#partialFill)
      this.#partial = grown
    }
    const partial = this.#partial
    if (partial === null) return pos
    const take = Math.min(partial.length - this.#partialFill, chunk.length - pos)
    chunk.copy(partial, this.#partialFill, pos, pos + take)
    this.#partialFill += take
    pos += take
    if (this.#partialFill === this.#partialTotal) {
      this.#partial = null
      this.#partialFill = 0
      this.#emit(new FrameOrigin(partial, now), 0, partial.length, out)
    }
    return pos
  }

  #checkLength (n: number): void {
    if (n > this.#maxFrameBytes) {
      this.#failed = true
      this.#partial = null
      this.#headerFill = 0
      throw new ProtocolError(ErrorCodes.FRAME_TOO_LARGE, `frame of ${n} bytes exceeds MAX_FRAME_BYTES (${this.#maxFrameBytes})`)
    }
  }

  /** origin.chunk[start, end) is one whole frame, length prefix included. */
  #emit (origin: FrameOrigin, start: number, end: number, out: Frame[]): void {
    const chunk = origin.chunk
    const size = end - start
    const n = size - LENGTH_BYTES
    const b = n >= 1 ? chunk[start + LENGTH_BYTES]! : 0
    if (n < 1) {
      this.#invalid(out, 'fields_overflow', size)
      return
    }
    if (b === 0) {
      if (this.#sink.control === undefined) this.#invalid(out, 'control_frame', size)
      else {
        this.#handOver(out)
        this.#sink.control(chunk.subarray(start + LENGTH_BYTES + 1, end), size)
      }
      return
    }
    const bucketStart = start + LENGTH_BYTES + 1
    const keyLenAt = bucketStart + b
    if (keyLenAt >= end || keyLenAt + 1 + chunk[keyLenAt]! > end) {
      this.#invalid(out, 'fields_overflow', size)
      return
    }
    let bucket: string
    if (this.#isLastBucket(chunk, bucketStart, b)) bucket = this.#lastBucket
    else {
      if (!isValidBucketBytes(chunk, bucketStart, keyLenAt)) {
        this.#invalid(out, 'bad_bucket', size)
        return
      }
      bucket = chunk.toString('latin1', bucketStart, keyLenAt)
      chunk.copy(this.#lastBucketBytes, 0, bucketStart, keyLenAt)
      this.#lastBucketLen = b
      this.#lastBucket = bucket
    }
    out.push(new WireFrame(bucket, origin, start, end))
  }

  /** Frames decoded so far go to the sink before what comes after them. */
  #handOver (out: Frame[]): void {
    if (out.length > 0) this.#sink.frames(out.splice(0))
  }

  #invalid (out: Frame[], reason: InvalidReason, size: number): void {
    this.#handOver(out)
    this.#sink.invalid(reason, size)
  }

  #isLastBucket (raw: Buffer, start: number, len: number): boolean {
    if (len !== this.#lastBucketLen) return false
    const last = this.#lastBucketBytes
    for (let i = 0; i < len; i++) if (raw[start + i] !== last[i]) return false
    return true
  }
}
