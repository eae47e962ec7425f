// What MAXMEMORY charges is what is held: frames that would keep a much larger socket chunk
// alive are copied out of it; frames that fill their chunk are left where they are.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compact } from '../../src/protocol/compact.ts'
import { FrameDecoder } from '../../src/protocol/decoder.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { WireFrame, type Frame } from '../../src/protocol/frame.ts'

function decodeChunk (buckets: string[]): Frame[] {
  const chunk = encodeFrames(buckets.map((bucket, i) => ({ bucket, key: null, payload: Buffer.alloc(100, i) })))
  const out: Frame[] = []
  new FrameDecoder({ frames: (b) => { out.push(...b) }, invalid: () => assert.fail('invalid') }).push(chunk)
  return out
}

test('frames that fill their chunk are not copied', () => {
  const frames = decodeChunk(['a', 'a', 'a', 'b'])
  const a = frames.filter((f) => f.bucket === 'a')
  assert.equal(compact(a), a)
})

test('a few frames of a larger chunk are copied into a buffer of their own, unchanged', () => {
  const frames = decodeChunk(['a', 'a', 'a', 'b', 'a', 'a'])
  const b = frames.filter((f) => f.bucket === 'b')
  const held = compact(b)
  assert.notEqual(held, b)
  assert.equal(held.length, 1)
  const f = held[0] as WireFrame
  assert.equal(f.origin.chunk.length, f.size, 'the new buffer holds this frame only')
  assert.deepEqual([f.bucket, f.raw, f.receivedAt, f.payload], [b[0]!.bucket, b[0]!.raw, b[0]!.receivedAt, b[0]!.payload])
})

test('a sampled slice of several chunks is copied into one buffer, in order', () => {
  const first = decodeChunk(Array.from({ length: 20 }, () => 's'))
  const second = decodeChunk(Array.from({ length: 20 }, () => 's'))
  const picked = [first[3]!, first[11]!, second[0]!, second[19]!]
  const held = compact(picked)
  assert.deepEqual(held.map((f) => f.raw), picked.map((f) => f.raw))
  const chunks = new Set(held.map((f) => (f as WireFrame).origin.chunk))
  assert.equal(chunks.size, 1)
  assert.equal([...chunks][0]!.length, picked.reduce((n, f) => n + f.size, 0))
})
