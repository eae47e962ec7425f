// The spool: the file format of backup files (issue 10). Bytes at rest carry their own proof:
// a file header names the format and its version, and every record carries a CRC-32C (as
// Kafka's record batch v2 does), so a reader delivers nothing that fails its check,
// re-synchronises at the next valid record after damage, and counts what it skipped. Pure:
// the encoder and the incremental decoder never touch a file.
//
//   file     = header *record
//   header   = magic:"KHTSPOOL" (8 bytes) version:u8 (1) reserved:3 (zero)
//              crc:u32le                       ; CRC-32C of the 12 bytes before it
//   record   = length:u32le crc:u32le body      ; length = bytes after the length field
//   body     = timestamp:u64le frame            ; crc = CRC-32C of body
//   timestamp = milliseconds since the epoch when kahets received the frame (its Kafka
//              timestamp, kept across the replay)
//   frame    = the frame exactly as on the wire (decoder.ts): n:u32le bucketLen:u8 bucket
//              keyLen:u8 key payload, with n = length - 16
//
// A record starts with a u32 little-endian length of the bytes after it, like a wire frame,
// so whatever cuts a file back to whole frames (rotating-file.ts) cuts it back to whole
// records too. The frame is kept whole inside the record so that a replayed record is a
// frame again without a copy, and its own length is one more check: a length field that
// was damaged almost never agrees with it.
//
// "KHTS" read as a u32le length is 1,398,034,507: no frame file (kahego's or a file
// stream's) can start with it, so the magic tells the two formats apart whatever the file
// is called.
//
// Reading back: a record whose length is implausible, whose inner length disagrees, whose
// CRC fails, or whose frame is invalid, is damage; the decoder then looks for the next
// offset where a whole record verifies and reports the bytes in between as one damaged
// range. A record cut short by the end of the input (kahets killed mid-write) is a torn
// tail, the normal crash case, not damage.
import { createRequire } from 'node:module'
import { type Frame, FrameOrigin, WireFrame, LENGTH_BYTES, isValidBucketBytes } from './frame.ts'

export const SPOOL_MAGIC = Buffer.from('KHTSPOOL', 'latin1')
export const SPOOL_VERSION = 1
export const SPOOL_HEADER_BYTES = 16
/** length + crc + timestamp: what a record adds to its frame. */
export const SPOOL_RECORD_OVERHEAD = 16
// crc + timestamp + the smallest frame (n, bucketLen, one bucket byte, keyLen).
const MIN_RECORD_LENGTH = 4 + 8 + LENGTH_BYTES + 3
// A frame was at most MAX_FRAME_BYTES when accepted; this only keeps a damaged length field
// from making the reader wait for (and hold) gigabytes.
export const SPOOL_MAX_RECORD_BYTES = 64 * 1024 * 1024

const require = createRequire(import.meta.url)

// CRC-32C (Castagnoli) in JavaScript, slicing by 8 bytes: eight 256-entry tables.
const CRC_TABLES = (() => {
  const t = new Int32Array(256 * 8)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    t[n] = c
  }
  for (let n = 0; n < 256; n++) for (let k = 1; k < 8; k++) t[k * 256 + n] = (t[(k - 1) * 256 + n]! >>> 8) ^ t[t[(k - 1) * 256 + n]! & 0xff]!
  return t
})()

/** CRC-32C of b[start, end) in JavaScript. */
export function crc32cPortable (b: Uint8Array, start = 0, end = b.length): number {
  const t = CRC_TABLES
  let c = -1
  let i = start
  for (; i + 8 <= end; i += 8) {
    const lo = c ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24))
    c = t[1792 + (lo & 0xff)]! ^ t[1536 + ((lo >>> 8) & 0xff)]! ^ t[1280 + ((lo >>> 16) & 0xff)]! ^ t[1024 + (lo >>> 24)]! ^
      t[768 + b[i + 4]!]! ^ t[512 + b[i + 5]!]! ^ t[256 + b[i + 6]!]! ^ t[b[i + 7]!]!
  }
  for (; i < end; i++) c = t[(c ^ b[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

/**
 * CRC-32C from @node-rs/crc32 (SSE 4.2 / ARM CRC instructions, prebuilt); the JavaScript
 * one where it cannot load. Not record-batch.ts's loader: that one falls back on
 * @platformatic/kafka, which a process writing only files should not load (create-stream.ts).
 */
export const crc32c: (data: Uint8Array) => number = (() => {
  try {
    return (require('@node-rs/crc32') as { crc32c (data: Uint8Array): number }).crc32c
  } catch {
    return (data: Uint8Array) => crc32cPortable(data)
  }
})()

// Below this many bytes the JavaScript CRC is faster than a native call and the view it
// needs (measured on 2 busy cores: 112 B records 200 ns vs 350-550 ns; 100 KB 170 µs vs 30 µs).
const NATIVE_CRC_FROM = 256

/** CRC-32C of buf[start, end), by whichever way is faster for its size. */
function crcRange (buf: Buffer, start: number, end: number): number {
  return end - start < NATIVE_CRC_FROM ? crc32cPortable(buf, start, end) : crc32c(buf.subarray(start, end))
}

/** The file header, written once when a spool file is created. */
export function spoolHeader (): Buffer {
  const h = Buffer.alloc(SPOOL_HEADER_BYTES)
  SPOOL_MAGIC.copy(h, 0)
  h[8] = SPOOL_VERSION
  h.writeUInt32LE(crc32c(h.subarray(0, 12)), 12)
  return h
}

export function hasSpoolMagic (head: Buffer): boolean {
  return head.length >= SPOOL_MAGIC.length && head.subarray(0, SPOOL_MAGIC.length).equals(SPOOL_MAGIC)
}

/**
 * Frames as spool records, in buffers of about `maxBuffer` bytes, each a whole number of
 * records (RotatingFile rotates between buffers, never inside one).
 */
export function encodeSpoolRecords (frames: readonly Frame[], maxBuffer = 64 * 1024): Buffer[] {
  const out: Buffer[] = []
  let i = 0
  while (i < frames.length) {
    let end = i
    let bytes = 0
    do {
      bytes += SPOOL_RECORD_OVERHEAD + frames[end]!.size
      end++
    } while (end < frames.length && bytes + SPOOL_RECORD_OVERHEAD + frames[end]!.size <= maxBuffer)
    const buf = Buffer.allocUnsafe(bytes)
    let at = 0
    for (; i < end; i++) at = writeRecord(buf, at, frames[i]!)
    out.push(buf)
  }
  return out
}

function writeRecord (buf: Buffer, at: number, f: Frame): number {
  const size = f.size
  buf.writeUInt32LE(size + 12, at)
  // The crc goes in last, once the body it covers is in place.
  const body = at + 8
  const ts = f.receivedAt
  buf.writeUInt32LE(ts % 0x100000000, body)
  buf.writeUInt32LE(Math.floor(ts / 0x100000000), body + 4)
  if (f instanceof WireFrame) f.origin.chunk.copy(buf, body + 8, f.start, f.end)
  else f.raw.copy(buf, body + 8)
  const end = body + 8 + size
  buf.writeUInt32LE(crcRange(buf, body, end), at + 4)
  return end
}

export interface DamagedRange {
  /** Byte offsets in the file: [start, end). */
  readonly start: number
  readonly end: number
}

export interface SpoolSink {
  /** Verified frames from one push(), in file order. Never called with an empty list. */
  frames (batch: Frame[]): void
  /** A run of bytes that held no verifiable record, once the next valid record (or the end) closes it. */
  damaged (range: DamagedRange): void
}

export interface SpoolEnd {
  /** Bytes of a record cut short by the end of the input (a torn tail); 0 if none. */
  tornBytes: number
  /** The header was missing or failed its check (its bytes are reported as damage too). */
  headerDamaged: boolean
  /** The header names a version this reader does not know; nothing was delivered. */
  unknownVersion: number | null
}

type Check = 'record' | 'short' | 'stub' | 'bad'

/**
 * Is there a whole, verified record at `pos`; the start of one that `buf` cuts short (its
 * length and its frame's length agree, the rest is missing); a stub too short to tell (under
 * 20 bytes, the length plausible); or not one?
 */
function checkRecord (buf: Buffer, pos: number, maxRecordBytes: number): Check {
  const left = buf.length - pos
  if (left < LENGTH_BYTES) return 'stub'
  const length = buf.readUInt32LE(pos)
  if (length < MIN_RECORD_LENGTH || length > maxRecordBytes) return 'bad'
  if (left < SPOOL_RECORD_OVERHEAD + LENGTH_BYTES) return 'stub'
  if (buf.readUInt32LE(pos + SPOOL_RECORD_OVERHEAD) !== length - 12 - LENGTH_BYTES) return 'bad'
  const total = LENGTH_BYTES + length
  if (left < total) return 'short'
  if (buf.readUInt32LE(pos + 4) !== crcRange(buf, pos + 8, pos + total)) return 'bad'
  // The frame inside, as decoder.ts checks it: a record with a good crc and a bad frame was
  // written wrong, and is damage all the same.
  const bucketLenAt = pos + SPOOL_RECORD_OVERHEAD + LENGTH_BYTES
  const b = buf[bucketLenAt]!
  const keyLenAt = bucketLenAt + 1 + b
  if (b === 0 || keyLenAt >= pos + total || keyLenAt + 1 + buf[keyLenAt]! > pos + total) return 'bad'
  if (!isValidBucketBytes(buf, bucketLenAt + 1, keyLenAt)) return 'bad'
  return 'record'
}

function equalsLatin1 (buf: Buffer, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (buf[at + i] !== text.charCodeAt(i)) return false
  return true
}

/**
 * Incremental spool decoder: push() the file's bytes in order, end() at its end. Frames are
 * views into the pushed chunks (or into the buffer that joined a record split across them).
 */
export class SpoolDecoder {
  readonly #sink: SpoolSink
  readonly #maxRecordBytes: number
  /** Unconsumed bytes; `#base` is the file offset of their first byte. */
  #buf: Buffer = Buffer.alloc(0)
  #base = 0
  #headerDone = false
  #headerDamaged = false
  #unknownVersion: number | null = null
  /** File offset where the current damaged run began; null while in sync. */
  #damageStart: number | null = null
  #lastOrigin: FrameOrigin | null = null
  #lastBucket = ''

  constructor (sink: SpoolSink, opts: { maxRecordBytes?: number } = {}) {
    this.#sink = sink
    this.#maxRecordBytes = opts.maxRecordBytes ?? SPOOL_MAX_RECORD_BYTES
  }

  push (chunk: Buffer): void {
    if (this.#unknownVersion !== null || chunk.length === 0) return
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
    this.#run(false)
  }

  end (): SpoolEnd {
    const tornBytes = this.#unknownVersion === null ? this.#run(true) : 0
    this.#buf = Buffer.alloc(0)
    return { tornBytes, headerDamaged: this.#headerDamaged, unknownVersion: this.#unknownVersion }
  }

  /** Decodes what it can; at the end, returns the torn tail's bytes. */
  #run (atEnd: boolean): number {
    const out: Frame[] = []
    try {
      return this.#decode(out, atEnd)
    } finally {
      if (out.length > 0) this.#sink.frames(out)
    }
  }

  #decode (out: Frame[], atEnd: boolean): number {
    const buf = this.#buf
    let pos = 0
    if (!this.#headerDone) {
      if (buf.length < SPOOL_HEADER_BYTES) {
        if (!atEnd) return 0
        this.#headerDone = true
        // Nothing, or the start of a header: a file created just before a crash.
        if (buf.equals(spoolHeader().subarray(0, buf.length))) return buf.length
        this.#headerDamaged = true
        this.#sink.damaged({ start: 0, end: buf.length })
        return 0
      }
      this.#headerDone = true
      if (hasSpoolMagic(buf) && buf.readUInt32LE(12) === crc32c(buf.subarray(0, 12))) {
        if (buf[8] !== SPOOL_VERSION) {
          this.#unknownVersion = buf[8]!
          return 0
        }
      } else {
        this.#headerDamaged = true
        this.#damageStart = 0
      }
      pos = SPOOL_HEADER_BYTES
    }
    // At the end, the first record start the input cut short: a torn tail, unless a valid
    // record follows it (then it was damage that happened to look like a start). After
    // damage, only a start whose two lengths agree counts; a stub is more damage.
    let shortAt: number | null = null
    while (pos < buf.length) {
      const check = checkRecord(buf, pos, this.#maxRecordBytes)
      if ((check === 'short' || check === 'stub') && !atEnd) break
      if (check !== 'record') {
        if (check === 'short' || (check === 'stub' && this.#damageStart === null)) shortAt ??= pos
        this.#damageStart ??= this.#base + pos
        pos++
        continue
      }
      shortAt = null
      if (this.#damageStart !== null) this.#closeDamage(this.#base + pos)
      const total = LENGTH_BYTES + buf.readUInt32LE(pos)
      out.push(this.#frame(buf, pos, total))
      pos += total
    }
    let torn = 0
    if (atEnd) {
      const end = shortAt ?? buf.length
      torn = buf.length - end
      if (this.#damageStart !== null) this.#closeDamage(this.#base + end)
      pos = buf.length
    }
    this.#buf = buf.subarray(pos)
    this.#base += pos
    return torn
  }

  #frame (buf: Buffer, pos: number, total: number): Frame {
    const ts = buf.readUInt32LE(pos + 8) + buf.readUInt32LE(pos + 12) * 0x100000000
    // Records of one write share their timestamp; so do their frames' origins.
    let origin = this.#lastOrigin
    if (origin === null || origin.chunk !== buf || origin.receivedAt !== ts) {
      origin = new FrameOrigin(buf, ts)
      this.#lastOrigin = origin
    }
    const start = pos + SPOOL_RECORD_OVERHEAD
    const bucketStart = start + LENGTH_BYTES + 1
    const bucketEnd = bucketStart + buf[start + LENGTH_BYTES]!
    // A file holds long runs of one bucket: a repeat costs a comparison, not a new string.
    const last = this.#lastBucket
    if (last.length !== bucketEnd - bucketStart || !equalsLatin1(buf, bucketStart, last)) {
      this.#lastBucket = buf.toString('latin1', bucketStart, bucketEnd)
    }
    return new WireFrame(this.#lastBucket, origin, start, pos + total)
  }

  #closeDamage (end: number): void {
    const start = this.#damageStart!
    this.#damageStart = null
    if (end > start) this.#sink.damaged({ start, end })
  }
}
