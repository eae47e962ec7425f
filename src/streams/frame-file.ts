// Reads a file kahets (or kahego) wrote, in bounded chunks, handing whole verified frames on
// in order. Two formats, told apart by the first bytes, never by the file name:
// - the spool (protocol/spool.ts), which backup files are written in: every record is
//   checked, damage is skipped and reported as byte ranges, the read goes on at the next
//   record that verifies;
// - plain frames (the wire format, decoder.ts), which file streams write and which kahego's
//   backups (`.bckstm`) and kahets's before the spool are: no checksum, so only frames whose
//   fields do not fit, and a length no frame can have, are detectable damage; after such a
//   length nothing can be trusted and the rest of the file is reported damaged.
// A file that ends inside a record or frame — kahets was killed mid-write — has a torn tail:
// reported, not damage.
import { open, mkdir, link, unlink } from 'node:fs/promises'
import path from 'node:path'
import { type Frame, FrameOrigin, WireFrame, LENGTH_BYTES, isValidBucketBytes } from '../protocol/frame.ts'
import { type DamagedRange, SpoolDecoder, SPOOL_HEADER_BYTES, SPOOL_MAGIC, SPOOL_RECORD_OVERHEAD } from '../protocol/spool.ts'

export type FrameFileFormat = 'spool' | 'frames'

export interface FrameFileResult {
  format: FrameFileFormat
  /** The file's size. */
  bytes: number
  /** Frames delivered (verified). */
  frames: number
  /** Bytes after the last whole record or frame, cut short by the end of the file (a torn write). */
  tornBytes: number
  /** Runs of bytes that held no valid record, in file order (each lost at least one record). */
  damaged: DamagedRange[]
  corruptBytes: number
  /** Why nothing could be read, if so (a spool version this kahets does not know). */
  unreadable: string | null
  /** Every byte accounted for: no damage, nothing unreadable (a torn tail is allowed). */
  whole: boolean
}

// A frame was at most MAX_FRAME_BYTES when accepted; this only guards against a corrupt
// length field making the reader allocate gigabytes.
const MAX_FRAME_FILE_FRAME = 64 * 1024 * 1024

/** A header whose magic has at most this many bytes wrong is a spool header that was damaged. */
const MAGIC_BYTES_WRONG_MAX = 3

export function detectFormat (head: Buffer): FrameFileFormat {
  if (head.length < SPOOL_HEADER_BYTES) return head.length > 0 && SPOOL_MAGIC.subarray(0, head.length).equals(head.subarray(0, SPOOL_MAGIC.length)) ? 'spool' : 'frames'
  let wrong = 0
  for (let i = 0; i < SPOOL_MAGIC.length; i++) if (head[i] !== SPOOL_MAGIC[i]) wrong++
  return wrong <= MAGIC_BYTES_WRONG_MAX ? 'spool' : 'frames'
}

interface Decoder {
  push (chunk: Buffer): void
  /** Returns the torn tail's bytes. */
  end (): number
}

/** Plain frames, checked as decoder.ts checks them, with the file offsets of what fails. */
class PlainFrameDecoder implements Decoder {
  #buf: Buffer = Buffer.alloc(0)
  #base = 0
  #lost = false
  readonly #frames: (batch: Frame[]) => void
  readonly #damaged: (range: DamagedRange) => void
  readonly #size: number

  constructor (size: number, frames: (batch: Frame[]) => void, damaged: (range: DamagedRange) => void) {
    this.#size = size
    this.#frames = frames
    this.#damaged = damaged
  }

  push (chunk: Buffer): void {
    if (this.#lost) return
    const buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
    const origin = new FrameOrigin(buf, Date.now())
    const out: Frame[] = []
    let pos = 0
    while (buf.length - pos >= LENGTH_BYTES) {
      const n = buf.readUInt32LE(pos)
      if (n > MAX_FRAME_FILE_FRAME) {
        this.#lost = true
        this.#damaged({ start: this.#base + pos, end: this.#size })
        pos = buf.length
        break
      }
      const end = pos + LENGTH_BYTES + n
      if (end > buf.length) break
      const b = n >= 1 ? buf[pos + LENGTH_BYTES]! : 0
      const keyLenAt = pos + LENGTH_BYTES + 1 + b
      if (b === 0 || keyLenAt >= end || keyLenAt + 1 + buf[keyLenAt]! > end || !isValidBucketBytes(buf, pos + LENGTH_BYTES + 1, keyLenAt)) {
        this.#damaged({ start: this.#base + pos, end: this.#base + end })
      } else {
        out.push(new WireFrame(buf.toString('latin1', pos + LENGTH_BYTES + 1, keyLenAt), origin, pos, end))
      }
      pos = end
    }
    this.#buf = buf.subarray(pos)
    this.#base += pos
    if (out.length > 0) this.#frames(out)
  }

  end (): number {
    return this.#lost ? 0 : this.#buf.length
  }
}

/**
 * Reads `file`, calling onFrames with each batch of verified frames in file order (awaited:
 * the next chunk is read after it resolves). Never throws for what the file holds; throws
 * for I/O errors and for what onFrames throws.
 */
export async function readFrameFile (
  file: string,
  onFrames: (frames: Frame[]) => Promise<void>,
  opts: { chunkBytes?: number, onRead?: (bytes: number) => void, onFormat?: (format: FrameFileFormat) => void } = {},
): Promise<FrameFileResult> {
  const chunkBytes = opts.chunkBytes ?? 1024 * 1024
  const fh = await open(file, 'r')
  try {
    const size = (await fh.stat()).size
    const head = Buffer.alloc(Math.min(size, SPOOL_HEADER_BYTES))
    await fh.read(head, 0, head.length, 0)
    const format = detectFormat(head)
    opts.onFormat?.(format)
    const result: FrameFileResult = { format, bytes: size, frames: 0, tornBytes: 0, damaged: [], corruptBytes: 0, unreadable: null, whole: true }
    let batch: Frame[] = []
    const frames = (b: Frame[]): void => { for (const f of b) batch.push(f) }
    const damaged = (range: DamagedRange): void => {
      // Neighbouring runs (a zeroed stretch of plain frames is many empty ones) are one.
      const last = result.damaged[result.damaged.length - 1]
      if (last !== undefined && last.end === range.start) result.damaged[result.damaged.length - 1] = { start: last.start, end: range.end }
      else result.damaged.push(range)
      result.corruptBytes += range.end - range.start
    }
    let decoder: Decoder
    if (format === 'spool') {
      const spool = new SpoolDecoder({ frames, damaged })
      decoder = {
        push: (c) => { spool.push(c) },
        end: () => {
          const end = spool.end()
          if (end.unknownVersion !== null) result.unreadable = `spool version ${end.unknownVersion}; this kahets reads version 1`
          return end.tornBytes
        },
      }
    } else {
      decoder = new PlainFrameDecoder(size, frames, damaged)
    }
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return
      const b = batch
      batch = []
      result.frames += b.length
      await onFrames(b)
    }
    let position = 0
    while (position < size) {
      // A fresh buffer per chunk: decoded frames are views into it and outlive this loop.
      const chunk = Buffer.allocUnsafe(Math.min(chunkBytes, size - position))
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, position)
      if (bytesRead === 0) break
      position += bytesRead
      decoder.push(chunk.subarray(0, bytesRead))
      await flush()
      opts.onRead?.(bytesRead)
    }
    result.tornBytes = decoder.end()
    await flush()
    result.whole = result.damaged.length === 0 && result.unreadable === null
    return result
  } finally {
    await fh.close()
  }
}

/**
 * Moves a file that was not read whole out of the replay's way: to `quarantine/` under
 * root, keeping its path below root. One more directory level means the stream's template,
 * whose number of levels is fixed, never lists it again (rotating-file.ts). Returns the new path.
 */
export async function quarantineFile (root: string, file: string): Promise<string> {
  const resolvedRoot = path.resolve(root)
  let rel = path.relative(resolvedRoot, path.resolve(file))
  if (rel.startsWith('..') || path.isAbsolute(rel)) rel = path.basename(file)
  const base = path.join(resolvedRoot, QUARANTINE_DIR, rel)
  await mkdir(path.dirname(base), { recursive: true })
  // link + unlink, not rename: rename would replace a file quarantined earlier under the same name.
  for (let n = 0; ; n++) {
    const target = n === 0 ? base : `${base}.${n}`
    try {
      await link(file, target)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && n < 1000) continue
      throw err
    }
    await unlink(file)
    return target
  }
}

export const QUARANTINE_DIR = 'quarantine'

/**
 * When kahets received the first message of a file: a spool's first record carries it
 * (spool.ts); for plain frames, or a spool whose first record is not whole yet, the file's
 * last change stands in. null when the file has no record or cannot be read.
 */
export async function firstRecordTime (file: string): Promise<number | null> {
  let fh
  try {
    fh = await open(file, 'r')
  } catch {
    return null
  }
  try {
    const head = Buffer.alloc(SPOOL_HEADER_BYTES + SPOOL_RECORD_OVERHEAD)
    const { bytesRead } = await fh.read(head, 0, head.length, 0)
    if (bytesRead === 0) return null
    if (detectFormat(head.subarray(0, bytesRead)) === 'spool') {
      // header, then the first record: length:u32le crc:u32le timestamp:u64le
      if (bytesRead === head.length) return Number(head.readBigUInt64LE(SPOOL_HEADER_BYTES + 8))
      if (bytesRead <= SPOOL_HEADER_BYTES) return null
    }
    return (await fh.stat()).mtimeMs
  } catch {
    return null
  } finally {
    await fh.close()
  }
}
