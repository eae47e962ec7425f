// Message contents shared by every load generator of the bench (kahets clients, the raw sink's
// clients, the direct kafkajs producer), so that all of them move the same bytes.
//
// Payloads are random upper-case letters, as Kafka's ProducerPerformance generates them, fresh
// per record: compression then sees the same entropy for every contender (about 4.7 bits per
// byte: snappy and lz4 gain a little, as with text that is not repetitive). A pool of a few MiB
// is cut into messages; it is larger than any codec window (64 KiB for snappy and lz4), so
// cycling through it never hands a codec a repeat it could exploit.
import { randomBytes } from 'node:crypto'
import { encodeFrames } from '../../src/protocol/encoder.ts'

const POOL_BYTES = 4 << 20
/** Frames per pre-encoded chunk are chosen so that one chunk is about this big: one write each. */
const CHUNK_BYTES = 64 << 10

export function randomLetters (bytes: number): Buffer {
  const b = randomBytes(bytes)
  for (let i = 0; i < b.length; i++) b[i] = 65 + (b[i]! % 26)
  return b
}

/** Hands out consecutive `size`-byte slices of one letters pool, wrapping around. */
export class PayloadSource {
  readonly size: number
  readonly #pool: Buffer
  #at = 0
  #lap = 0

  constructor (size: number, poolBytes = POOL_BYTES) {
    this.size = size
    // At least 64 payloads even for the largest messages.
    this.#pool = randomLetters(Math.max(poolBytes, size * 64))
  }

  /** A view (no copy) of the next payload. */
  next (): Buffer {
    if (this.#at + this.size > this.#pool.length) {
      // Each lap starts at another offset, so consecutive laps do not cut the same payloads.
      this.#lap++
      this.#at = (this.#lap * 7919) % this.size
    }
    const p = this.#pool.subarray(this.#at, this.#at + this.size)
    this.#at += this.size
    return p
  }
}

/**
 * JSON events for the payload-schema rows (issue 14; bench/event.schema.json): each payload is
 * one event of exactly `size` bytes, `page` padded with the letters pool, id, kind and user
 * varying from one to the next.
 */
export class JsonEventSource {
  readonly size: number
  readonly #letters: PayloadSource
  #n = 0

  constructor (size: number, poolBytes = POOL_BYTES) {
    this.size = size
    this.#letters = new PayloadSource(size, poolBytes)
  }

  next (): Buffer {
    const n = this.#n++
    const head = `{"id":${1_000_000 + (n % 9_000_000)},"kind":"${KINDS[n % KINDS.length]}","user":"u-${String(n % 10_000_000).padStart(7, '0')}","ts":${1_764_480_000_000 + n},"page":"/`
    const pad = this.size - head.length - 2
    if (pad < 0) throw new RangeError(`a JSON event needs at least ${head.length + 2} bytes, not ${this.size}`)
    return Buffer.concat([Buffer.from(head), this.#letters.next().subarray(0, pad), Buffer.from('"}')])
  }
}

const KINDS = ['click', 'view', 'buy'] as const

export interface FrameChunks {
  /** Distinct pre-encoded chunks, each `framesPerChunk` whole frames back to back. */
  readonly chunks: readonly Buffer[]
  readonly framesPerChunk: number
  /** Bytes of one frame on the wire (every frame of a run has the same size). */
  readonly frameBytes: number
}

/**
 * Pre-encodes the frames a throughput client writes, so that the client spends its CPU on
 * write() calls only and leaves the cores to kahets. Since all frames have the same size, the
 * first k frames of a chunk are `chunk.subarray(0, k * frameBytes)`.
 */
export function frameChunks (bucket: string, size: number, poolBytes = POOL_BYTES, payloads: 'letters' | 'json' = 'letters'): FrameChunks {
  const source = payloads === 'json' ? new JsonEventSource(size, poolBytes) : new PayloadSource(size, poolBytes)
  const frameBytes = 4 + 2 + bucket.length + size
  const framesPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / frameBytes))
  const count = Math.max(2, Math.ceil(poolBytes / (framesPerChunk * frameBytes)))
  const chunks: Buffer[] = []
  for (let c = 0; c < count; c++) {
    chunks.push(encodeFrames(Array.from({ length: framesPerChunk }, () => ({ bucket, payload: source.next() }))))
  }
  return { chunks, framesPerChunk, frameBytes }
}

// ------------------------------------------------------------------ send-time stamps

/** Width of the stamp at the start of a latency run's payloads: microseconds since the epoch. */
export const STAMP_BYTES = 16

/**
 * Writes the wall-clock time `atMs` (performance.timeOrigin + performance.now(): sub-ms, and
 * comparable with the broker's clock on the same host) as 16 ASCII digits of microseconds.
 * Digits keep the payload text-like, like the letters around them.
 */
export function writeStamp (payload: Buffer, atMs: number): void {
  payload.write(String(Math.round(atMs * 1000)).padStart(STAMP_BYTES, '0').slice(-STAMP_BYTES), 0, 'latin1')
}

/** The stamp written by writeStamp, in ms; NaN when the payload carries none. */
export function readStamp (payload: Buffer): number {
  if (payload.length < STAMP_BYTES) return NaN
  return Number(payload.toString('latin1', 0, STAMP_BYTES)) / 1000
}
