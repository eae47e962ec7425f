// Kafka's record batch (message format v2, KIP-98), encoded in one pass into one buffer: the
// keys and payloads are copied once from the frames' chunks, and nothing is allocated per
// record. A record's timestamp (CreateTime) is the frame's receivedAt.
// A client library that builds each record as its own small buffer and concatenates them spends
// most of its time allocating and collecting garbage at 100 B messages; this is that step done
// once per batch.
//
//   baseOffset int64 · batchLength int32 · partitionLeaderEpoch int32 · magic int8 (2) ·
//   crc uint32 (CRC-32C of everything after it) · attributes int16 · lastOffsetDelta int32 ·
//   baseTimestamp int64 · maxTimestamp int64 · producerId int64 · producerEpoch int16 ·
//   baseSequence int32 · records count int32 · records (compressed as a whole when a codec is set)
//
//   record: length varint · attributes int8 · timestampDelta varlong · offsetDelta varint ·
//           key length varint (-1: null) · key · value length varint · value · headers count varint
import { createRequire } from 'node:module'
import { crc32c as platformaticCrc32c } from '@platformatic/kafka'
import type { Frame } from '../protocol/frame.ts'

/** Compression of the records section: returns the compressed bytes. */
export type Compress = (records: Buffer) => Buffer

/** Kafka's codec ids, in the low three bits of the batch attributes. */
export const CODEC_IDS = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const
export type CodecName = keyof typeof CODEC_IDS

const HEADER_BYTES = 61
const CRC_FROM = 21 // the crc covers attributes … end
const NO_PRODUCER_ID = -1n
const NO_PRODUCER_EPOCH = -1
const NO_SEQUENCE = -1
const NO_PARTITION_LEADER_EPOCH = -1

const require = createRequire(import.meta.url)
/**
 * CRC-32C from @node-rs/crc32 (SSE 4.2 / ARM CRC instructions, prebuilt in its npm package),
 * called on the batch itself; @platformatic/kafka's own crc32c (the same library behind a
 * copy of the data, or WebAssembly where it has no build) is the fallback.
 */
export const crc32c: (data: Buffer) => number = (() => {
  try {
    return (require('@node-rs/crc32') as { crc32c (data: Uint8Array): number }).crc32c
  } catch {
    return platformaticCrc32c
  }
})()

/** Bytes of an unsigned varint. */
function uvarintBytes (n: number): number {
  let bytes = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    bytes++
  }
  return bytes
}

/** Zig-zag of a signed integer (|n| < 2^52), as a non-negative number. */
function zigzag (n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1
}

function writeUvarint (buf: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n % 128) | 0x80
    n = Math.floor(n / 128)
  }
  buf[at++] = n
  return at
}

/**
 * Bytes the records section of `records` takes, uncompressed. Each record's body size, key
 * length and value length go into `sizes` (3 per record), so that writeRecords does not ask
 * the frames again.
 */
function measureRecords (records: readonly Frame[], baseTimestamp: number, sizes: Int32Array): number {
  let total = 0
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!
    const keyLength = r.keyLength
    const valueLength = r.payloadLength
    const body = 1 + // attributes
      uvarintBytes(zigzag(r.receivedAt - baseTimestamp)) +
      uvarintBytes(zigzag(i)) + // offsetDelta
      uvarintBytes(zigzag(keyLength)) + (keyLength > 0 ? keyLength : 0) +
      uvarintBytes(zigzag(valueLength)) + valueLength +
      1 // headers count 0
    sizes[3 * i] = body
    sizes[3 * i + 1] = keyLength
    sizes[3 * i + 2] = valueLength
    total += uvarintBytes(zigzag(body)) + body
  }
  return total
}

/** Writes the records section at `at`. */
function writeRecords (buf: Buffer, at: number, records: readonly Frame[], baseTimestamp: number, sizes: Int32Array): void {
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!
    at = writeUvarint(buf, at, zigzag(sizes[3 * i]!))
    buf[at++] = 0
    at = writeUvarint(buf, at, zigzag(r.receivedAt - baseTimestamp))
    at = writeUvarint(buf, at, zigzag(i))
    const keyLength = sizes[3 * i + 1]!
    if (keyLength < 0) {
      buf[at++] = 1 // zig-zag of -1: no key
    } else {
      at = writeUvarint(buf, at, zigzag(keyLength))
      at += r.copyKey(buf, at)
    }
    at = writeUvarint(buf, at, zigzag(sizes[3 * i + 2]!))
    at += r.copyPayload(buf, at)
    buf[at++] = 0
  }
}

/**
 * One record batch holding `records` (at least one), in order, as a producer without
 * idempotence writes it (no producer id, epoch or sequence), with CreateTime timestamps.
 */
export function encodeRecordBatch (records: readonly Frame[], codec: CodecName = 'none', compress?: Compress): Buffer {
  if (records.length === 0) throw new Error('a record batch holds at least one record')
  const baseTimestamp = records[0]!.receivedAt
  let maxTimestamp = baseTimestamp
  for (const r of records) if (r.receivedAt > maxTimestamp) maxTimestamp = r.receivedAt
  const sizes = new Int32Array(3 * records.length)
  const size = measureRecords(records, baseTimestamp, sizes)
  let buf: Buffer
  if (codec === 'none') {
    buf = Buffer.allocUnsafe(HEADER_BYTES + size)
    writeRecords(buf, HEADER_BYTES, records, baseTimestamp, sizes)
  } else {
    if (compress === undefined) throw new Error(`codec ${codec} needs a compress function`)
    const plain = Buffer.allocUnsafe(size)
    writeRecords(plain, 0, records, baseTimestamp, sizes)
    const packed = compress(plain)
    buf = Buffer.allocUnsafe(HEADER_BYTES + packed.length)
    packed.copy(buf, HEADER_BYTES)
  }
  buf.writeBigInt64BE(0n, 0) // baseOffset: the broker assigns offsets
  buf.writeInt32BE(buf.length - 12, 8) // batchLength: the bytes after this field
  buf.writeInt32BE(NO_PARTITION_LEADER_EPOCH, 12)
  buf.writeInt8(2, 16) // magic
  buf.writeInt16BE(CODEC_IDS[codec], 21) // attributes: codec, CreateTime, not transactional
  buf.writeInt32BE(records.length - 1, 23) // lastOffsetDelta
  buf.writeBigInt64BE(BigInt(baseTimestamp), 27)
  buf.writeBigInt64BE(BigInt(maxTimestamp), 35)
  buf.writeBigInt64BE(NO_PRODUCER_ID, 43)
  buf.writeInt16BE(NO_PRODUCER_EPOCH, 51)
  buf.writeInt32BE(NO_SEQUENCE, 53)
  buf.writeInt32BE(records.length, 57)
  buf.writeUInt32BE(crc32c(buf.subarray(CRC_FROM)), 17)
  return buf
}
