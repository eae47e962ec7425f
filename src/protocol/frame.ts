// A decoded frame. `raw` is the whole frame as it came off the wire, length prefix
// included, so file streams write it back without re-encoding (SPEC §1: a file is a
// concatenation of frames). key and payload are views into raw, never copies.
export interface Frame {
  readonly bucket: string
  readonly key: Buffer | null
  readonly payload: Buffer
  readonly raw: Buffer
  /** Milliseconds since the epoch when kahets received the frame (the Kafka timestamp). */
  readonly receivedAt: number
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
