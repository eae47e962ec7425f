// Encodes frames in the wire format of docs/protocol.md#data-frames; the inverse of FrameDecoder.
import { LENGTH_BYTES, MAX_NAME_BYTES, isValidBucketName } from './frame.ts'

export interface OutgoingMessage {
  bucket: string
  payload: Buffer | string
  key?: Buffer | string | null
}

/** Validates like the decoder will, so a client learns of a bad frame before sending it. */
export function frameLength (bucket: string, key: Buffer | string | null | undefined, payload: Buffer | string): number {
  if (!isValidBucketName(bucket)) throw new RangeError(`invalid bucket name ${JSON.stringify(bucket)}: 1..255 bytes of [A-Za-z0-9._-], not "." or ".."`)
  const keyBytes = key == null ? 0 : Buffer.byteLength(key)
  if (keyBytes > MAX_NAME_BYTES) throw new RangeError(`key is ${keyBytes} bytes; at most ${MAX_NAME_BYTES}`)
  return LENGTH_BYTES + 2 + bucket.length + keyBytes + Buffer.byteLength(payload)
}

/** Writes one frame at `offset` of `target`; returns the offset after it. */
export function writeFrame (target: Buffer, offset: number, msg: OutgoingMessage): number {
  const keyBytes = msg.key == null ? 0 : Buffer.byteLength(msg.key)
  const payloadBytes = Buffer.byteLength(msg.payload)
  const n = 2 + msg.bucket.length + keyBytes + payloadBytes
  let o = target.writeUInt32LE(n, offset)
  o = target.writeUInt8(msg.bucket.length, o)
  o += target.write(msg.bucket, o, 'latin1')
  o = target.writeUInt8(keyBytes, o)
  if (msg.key != null) o += typeof msg.key === 'string' ? target.write(msg.key, o, 'utf8') : msg.key.copy(target, o)
  o += typeof msg.payload === 'string' ? target.write(msg.payload, o, 'utf8') : msg.payload.copy(target, o)
  return o
}

export function encodeFrame (msg: OutgoingMessage): Buffer {
  const buf = Buffer.allocUnsafe(frameLength(msg.bucket, msg.key, msg.payload))
  writeFrame(buf, 0, msg)
  return buf
}

/** Encodes many frames into one buffer (one allocation, one write). */
export function encodeFrames (msgs: readonly OutgoingMessage[]): Buffer {
  let total = 0
  for (const m of msgs) total += frameLength(m.bucket, m.key, m.payload)
  const buf = Buffer.allocUnsafe(total)
  let o = 0
  for (const m of msgs) o = writeFrame(buf, o, m)
  return buf
}
