// A decoded frame. `raw` is the whole frame as it came off the wire, length prefix
// included, so file streams write it back without re-encoding (SPEC §1: a file is a
// concatenation of frames). key and payload are views into raw, never copies.
export interface Frame {
  readonly bucket: string
  readonly key: Buffer | null
  readonly payload: Buffer
  readonly raw: Buffer
  /** raw.length, without making the view. */
  readonly size: number
  /** Milliseconds since the epoch when kahets received the frame (the Kafka timestamp). */
  readonly receivedAt: number
  /** Bytes of the key, -1 when the frame has none; without making the view. */
  readonly keyLength: number
  /** Bytes of the payload, without making the view. */
  readonly payloadLength: number
  /** Copies the key (if any) into target at `at`; returns the bytes copied. */
  copyKey (target: Buffer, at: number): number
  /** Copies the payload into target at `at`; returns the bytes copied. */
  copyPayload (target: Buffer, at: number): number
}

/**
 * The decoder's Frame: a position in the chunk it was read from. Views (raw, key, payload)
 * are made only when a stream asks for them: a file stream writes runs of neighbouring
 * frames as one slice of their chunk, and the Kafka stream copies key and payload from the
 * chunk into its record batch; neither makes per-frame views. Queued frames then cost one
 * small object each.
 */
export class WireFrame implements Frame {
  readonly bucket: string
  /** The buffer the frame sits in, from `start` to `end` (length prefix included). */
  readonly chunk: Buffer
  readonly start: number
  readonly end: number
  readonly receivedAt: number
  readonly #keyStart: number
  readonly #payloadStart: number

  constructor (bucket: string, chunk: Buffer, start: number, end: number, keyStart: number, payloadStart: number, receivedAt: number) {
    this.bucket = bucket
    this.chunk = chunk
    this.start = start
    this.end = end
    this.#keyStart = keyStart
    this.#payloadStart = payloadStart
    this.receivedAt = receivedAt
  }

  get size (): number {
    return this.end - this.start
  }

  get raw (): Buffer {
    return this.chunk.subarray(this.start, this.end)
  }

  get key (): Buffer | null {
    return this.#payloadStart === this.#keyStart ? null : this.chunk.subarray(this.#keyStart, this.#payloadStart)
  }

  get payload (): Buffer {
    return this.chunk.subarray(this.#payloadStart, this.end)
  }

  get keyLength (): number {
    return this.#payloadStart === this.#keyStart ? -1 : this.#payloadStart - this.#keyStart
  }

  get payloadLength (): number {
    return this.end - this.#payloadStart
  }

  copyKey (target: Buffer, at: number): number {
    return this.chunk.copy(target, at, this.#keyStart, this.#payloadStart)
  }

  copyPayload (target: Buffer, at: number): number {
    return this.chunk.copy(target, at, this.#payloadStart, this.end)
  }
}

/**
 * The wire bytes of frames as few buffers as possible: neighbouring frames of one chunk
 * become one slice (up to `maxRun` bytes), so a flush is a writev of a few large buffers.
 * Every buffer still starts and ends on a frame boundary.
 */
export function wireRuns (frames: readonly Frame[], maxRun = 64 * 1024): Buffer[] {
  const out: Buffer[] = []
  let chunk: Buffer | null = null
  let start = 0
  let end = 0
  for (const f of frames) {
    if (f instanceof WireFrame) {
      if (f.chunk === chunk && f.start === end && f.end - start <= maxRun) {
        end = f.end
        continue
      }
      if (chunk !== null) out.push(chunk.subarray(start, end))
      chunk = f.chunk
      start = f.start
      end = f.end
    } else {
      if (chunk !== null) out.push(chunk.subarray(start, end))
      chunk = null
      out.push(f.raw)
    }
  }
  if (chunk !== null) out.push(chunk.subarray(start, end))
  return out
}

/**
 * What a frame costs in memory beyond its wire bytes: the frame object, the Buffer view of
 * its bytes and its slot in the queues. MAXMEMORY charges it too, so that the bound holds
 * for many small messages as well as for few large ones (about 128 bytes a frame).
 */
export const FRAME_OVERHEAD_BYTES = 128

/** What MAXMEMORY charges for `frames` frames of `bytes` wire bytes in all. */
export function memoryCharge (frames: number, bytes: number): number {
  return bytes + frames * FRAME_OVERHEAD_BYTES
}

export const LENGTH_BYTES = 4
export const MAX_NAME_BYTES = 255
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024

// Bucket names are Kafka topic names: [A-Za-z0-9._-], not "." or "..", so a bucket name
// can never carry a path separator or walk up a directory.
const BUCKET_BYTE = new Uint8Array(256)
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-') BUCKET_BYTE[c.charCodeAt(0)] = 1

export function isValidBucketBytes (buf: Uint8Array, start: number, end: number): boolean {
  const len = end - start
  if (len < 1 || len > MAX_NAME_BYTES) return false
  for (let i = start; i < end; i++) if (BUCKET_BYTE[buf[i]!] !== 1) return false
  if (buf[start] === 0x2e && (len === 1 || (len === 2 && buf[start + 1] === 0x2e))) return false
  return true
}

export function isValidBucketName (name: string): boolean {
  const len = name.length
  if (len < 1 || len > MAX_NAME_BYTES || name === '.' || name === '..') return false
  for (let i = 0; i < len; i++) {
    const c = name.charCodeAt(i)
    if (c > 255 || BUCKET_BYTE[c] !== 1) return false
  }
  return true
}
