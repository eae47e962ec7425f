// Frames are views into the socket chunk they were read from (frame.ts), so one held frame
// keeps its whole chunk (up to 64 KiB) alive while MAXMEMORY charges only the frame's own
// bytes. Where a few frames would hold a much larger chunk — a chunk shared by several
// buckets, a chunk whose other bytes went to an unfinished frame, a stream's sampled slice
// (slice < 1) — they are copied out into one buffer of their own, so what is charged is what
// is held (docs/guarantees.md#bounded-memory). The common case — one bucket filling whole chunks,
// slice 1 — copies nothing.
import { type Frame, FrameOrigin, WireFrame } from './frame.ts'
import { retag } from '../receipts.ts'

/** Frames holding less than this share of the chunk they are read from are copied out. */
const MIN_SHARE = 0.5

/**
 * `frames` in order, those that hold less than half of their chunk (counted per run of
 * neighbours from one chunk) copied into one new buffer; `frames` itself when none does.
 */
export function compact (frames: readonly Frame[]): readonly Frame[] {
  let wasted: Set<Buffer> | null = null
  let copyBytes = 0
  for (let i = 0; i < frames.length;) {
    const f = frames[i]!
    if (!(f instanceof WireFrame)) { i++; continue }
    const chunk = f.origin.chunk
    let held = 0
    let j = i
    for (; j < frames.length; j++) {
      const g = frames[j]!
      if (!(g instanceof WireFrame) || g.origin.chunk !== chunk) break
      held += g.end - g.start
    }
    if (held < chunk.length * MIN_SHARE) {
      (wasted ??= new Set()).add(chunk)
      copyBytes += held
    }
    i = j
  }
  if (wasted === null) return frames
  const buf = Buffer.allocUnsafe(copyBytes)
  const out: Frame[] = []
  let at = 0
  let origin: FrameOrigin | null = null
  for (const f of frames) {
    if (!(f instanceof WireFrame) || !wasted.has(f.origin.chunk)) {
      out.push(f)
      continue
    }
    if (origin === null || origin.receivedAt !== f.receivedAt) origin = new FrameOrigin(buf, f.receivedAt)
    const start = at
    at += f.origin.chunk.copy(buf, at, f.start, f.end)
    const copy = new WireFrame(f.bucket, origin, start, at)
    retag(f, copy)
    out.push(copy)
  }
  return out
}
