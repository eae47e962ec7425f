// A decoded frame. `raw` is the whole frame as it came off the wire, length prefix
// included, so file streams write it back without re-encoding (docs/protocol.md#data-frames: a file is a
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

/** The buffer a decoder push() read frames from, and when: shared by all of its frames. */
export class FrameOrigin {
  readonly chunk: Buffer
  /** Milliseconds since the epoch when kahets received the chunk. */
  readonly receivedAt: number

  constructor (chunk: Buffer, receivedAt: number) {
    this.chunk = chunk
    this.receivedAt = receivedAt
  }
}

/**
 * The decoder's Frame: a position in the chunk it was read from. Views (raw, key, payload)
 * are made only when a stream asks for them: a file stream writes runs of neighbouring
 * frames as one slice of their chunk, and the Kafka stream copies key and payload from the
 * chunk into its record batch; neither makes per-frame views.
 *
 * Queued frames cost one small object each, and at a million messages a second that object
 * is most of what the garbage collector sees: it holds four references (the chunk and the
 * receive time live in the FrameOrigin its chunk's frames share, and the key and payload
 * offsets are read from the frame's own length bytes when asked), 56 bytes instead of 96.
 */
export class WireFrame implements Frame {
  readonly bucket: string
  readonly origin: FrameOrigin
  /** Where the frame sits in origin.chunk, from `start` to `end` (length prefix included). */
  readonly start: number
  readonly end: number

  constructor (bucket: string, origin: FrameOrigin, start: number, end: number) {
    this.bucket = bucket
    this.origin = origin
    this.start = start
    this.end = end
  }

  get receivedAt (): number {
    return this.origin.receivedAt
  }

  get size (): number {
    return this.end - this.start
  }

  get raw (): Buffer {
    return this.origin.chunk.subarray(this.start, this.end)
  }

  get key (): Buffer | null {
    const chunk = this.origin.chunk
    const at = keyStart(chunk, this.start)
    const keyLength = chunk[at - 1]!
    return keyLength === 0 ? null : chunk.subarray(at, at + keyLength)
  }

  get payload (): Buffer {
    const chunk = this.origin.chunk
    return chunk.subarray(payloadStart(chunk, this.start), this.end)
  }

  get keyLength (): number {
    const chunk = this.origin.chunk
    const keyLength = chunk[keyStart(chunk, this.start) - 1]!
    return keyLength === 0 ? -1 : keyLength
  }

  get payloadLength (): number {
    return this.end - payloadStart(this.origin.chunk, this.start)
  }

  /** What `scan` says of the payload's bytes, read in place (no view made). */
  scanPayload<T> (scan: (buf: Buffer, start: number, end: number) => T): T {
    const chunk = this.origin.chunk
    return scan(chunk, payloadStart(chunk, this.start), this.end)
  }

  /** The payload decoded as UTF-8 (invalid bytes as U+FFFD), without making the view. */
  payloadText (): string {
    const chunk = this.origin.chunk
    return chunk.toString('utf8', payloadStart(chunk, this.start), this.end)
  }

  copyKey (target: Buffer, at: number): number {
    const chunk = this.origin.chunk
    const from = keyStart(chunk, this.start)
    const length = chunk[from - 1]!
    // A short key is copied here: Buffer.copy costs ~40 ns a call whatever the size (bench).
    if (length <= SHORT_COPY) {
      for (let k = 0; k < length; k++) target[at + k] = chunk[from + k]!
      return length
    }
    return chunk.copy(target, at, from, from + length)
  }

  copyPayload (target: Buffer, at: number): number {
    const chunk = this.origin.chunk
    return chunk.copy(target, at, payloadStart(chunk, this.start), this.end)
  }
}

/** Bytes up to which a loop copies faster than Buffer.copy. */
const SHORT_COPY = 24

// body = bucketLen:u8 bucket keyLen:u8 key payload (decoder.ts checked it). Plain functions,
// not private getters: the record batch encoder asks for these per message.
/** Where the key of the frame at `start` begins in its chunk. */
function keyStart (chunk: Buffer, start: number): number {
  return start + LENGTH_BYTES + 2 + chunk[start + LENGTH_BYTES]!
}

/** Where the payload of the frame at `start` begins in its chunk. */
function payloadStart (chunk: Buffer, start: number): number {
  const at = keyStart(chunk, start)
  return at + chunk[at - 1]!
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
      if (f.origin.chunk === chunk && f.start === end && f.end - start <= maxRun) {
        end = f.end
        continue
      }
      if (chunk !== null) out.push(chunk.subarray(start, end))
      chunk = f.origin.chunk
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
