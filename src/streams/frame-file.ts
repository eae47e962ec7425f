// Reads a frame file (a backup or file-stream file: frames back to back in the wire format,
// SPEC §1) in bounded chunks, handing whole frames on in order. A file that ends inside a
// frame — kahets was killed mid-write — has a torn tail: it is reported, never fatal.
import { open } from 'node:fs/promises'
import { ProtocolError } from '../errors.ts'
import { FrameDecoder } from '../protocol/decoder.ts'
import type { Frame } from '../protocol/frame.ts'

export interface FrameFileResult {
  frames: number
  /** Bytes after the last whole frame (a torn write), or of a corrupt length and all after it. */
  tornBytes: number
  invalid: number
}

// A backup frame was at most MAX_FRAME_BYTES when accepted; this only guards against a
// corrupt length field making the reader allocate gigabytes.
const REPLAY_MAX_FRAME_BYTES = 64 * 1024 * 1024

export async function readFrameFile (
  path: string,
  onFrames: (frames: Frame[]) => Promise<void>,
  opts: { chunkBytes?: number } = {},
): Promise<FrameFileResult> {
  const chunkBytes = opts.chunkBytes ?? 1024 * 1024
  let batch: Frame[] = []
  const result: FrameFileResult = { frames: 0, tornBytes: 0, invalid: 0 }
  // Bytes of whole frames (valid or skipped); whatever the file holds beyond them is torn.
  let consumed = 0
  const decoder = new FrameDecoder({
    frames: (frames) => {
      for (const f of frames) {
        batch.push(f)
        consumed += f.size
      }
    },
    invalid: (_reason, bytes) => {
      result.invalid++
      consumed += bytes
    },
  }, { maxFrameBytes: REPLAY_MAX_FRAME_BYTES })
  const fh = await open(path, 'r')
  let size: number
  try {
    size = (await fh.stat()).size
    let position = 0
    while (position < size) {
      // A fresh buffer per chunk: decoded frames are views into it and outlive this loop.
      const chunk = Buffer.allocUnsafe(Math.min(chunkBytes, size - position))
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, position)
      if (bytesRead === 0) break
      position += bytesRead
      try {
        decoder.push(chunk.subarray(0, bytesRead))
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err
        break
      }
      if (batch.length > 0) {
        const frames = batch
        batch = []
        result.frames += frames.length
        await onFrames(frames)
      }
    }
    if (batch.length > 0) {
      result.frames += batch.length
      await onFrames(batch)
    }
    decoder.end()
  } finally {
    await fh.close()
  }
  result.tornBytes = size - consumed
  return result
}
