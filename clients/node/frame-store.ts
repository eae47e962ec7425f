// The frames an acknowledged client keeps until kahets settles them (docs/protocol.md), in
// as few objects as possible: frames are written back to back into large chunks, and only
// their lengths are kept apart. Keeping a frame costs no allocation of its own, and sending
// the frames not yet written is usually one view of one chunk, not a concat.
//
// Offsets are absolute (bytes appended since the store was made), so that a writer can
// remember how far it got while frames are dropped from the front.

/** Chunks are at least this large; a larger frame gets a chunk of its own size. */
const CHUNK_BYTES = 256 * 1024

interface Chunk {
  readonly buf: Buffer
  /** Absolute offset of buf[0]. */
  readonly start: number
  used: number
}

export class FrameStore {
  #chunks: Chunk[] = []
  #lengths: number[] = []
  #head = 0
  #start = 0
  #end = 0

  /** Frames kept. */
  get frames (): number { return this.#lengths.length - this.#head }
  /** Bytes kept. */
  get bytes (): number { return this.#end - this.#start }
  /** Absolute offset of the first kept frame. */
  get start (): number { return this.#start }
  /** Absolute offset after the last kept frame. */
  get end (): number { return this.#end }

  /** Room for one frame of `length` bytes, kept from now on: write it at `buf[at…]`. */
  reserve (length: number): { buf: Buffer, at: number } {
    let c = this.#chunks[this.#chunks.length - 1]
    if (c === undefined || c.buf.length - c.used < length) {
      c = { buf: Buffer.allocUnsafe(Math.max(CHUNK_BYTES, length)), start: this.#end, used: 0 }
      this.#chunks.push(c)
    }
    const at = c.used
    c.used += length
    this.#end += length
    this.#lengths.push(length)
    return { buf: c.buf, at }
  }

  /** Forgets the oldest `n` frames (kahets settled them). */
  drop (n: number): void {
    const lengths = this.#lengths
    for (let i = 0; i < n && this.#head < lengths.length; i++) this.#start += lengths[this.#head++]!
    if (this.#head > 4096 && this.#head * 2 > lengths.length) {
      this.#lengths = lengths.slice(this.#head)
      this.#head = 0
    }
    while (this.#chunks.length > 0 && this.#chunks[0]!.start + this.#chunks[0]!.used <= this.#start) this.#chunks.shift()
  }

  /** The kept bytes from absolute offset `from` to the end, as one Buffer (a view when they lie in one chunk). */
  bytesFrom (from: number): Buffer {
    const parts: Buffer[] = []
    for (const c of this.#chunks) {
      const cEnd = c.start + c.used
      if (cEnd <= from) continue
      parts.push(c.buf.subarray(Math.max(0, from - c.start), c.used))
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts)
  }
}
