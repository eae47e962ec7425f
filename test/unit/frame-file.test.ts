import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { readFrameFile } from '../../src/streams/frame-file.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import type { Frame } from '../../src/protocol/frame.ts'
import { makeTempDir } from '../helpers/kahets.ts'

const msgs = Array.from({ length: 3000 }, (_, i) => ({ bucket: i % 2 ? 'a' : 'b', key: i % 3 ? `k${i}` : null, payload: Buffer.alloc(i % 700, i % 256) }))
const wire = encodeFrames(msgs)

async function read (bytes: Buffer, chunkBytes: number): Promise<{ frames: Frame[], result: Awaited<ReturnType<typeof readFrameFile>> }> {
  const dir = await makeTempDir()
  const file = join(dir, 'f.frames')
  await writeFile(file, bytes)
  const frames: Frame[] = []
  const result = await readFrameFile(file, async (batch) => { frames.push(...batch) }, { chunkBytes })
  return { frames, result }
}

test('a whole file comes back frame by frame, whatever the chunk size', async () => {
  for (const chunkBytes of [7, 4096, 1 << 20]) {
    const { frames, result } = await read(wire, chunkBytes)
    assert.deepEqual(result, { frames: 3000, tornBytes: 0, invalid: 0 })
    assert.deepEqual(Buffer.concat(frames.map((f) => f.raw)), wire)
  }
})

test('one byte at a time', async () => {
  const small = encodeFrames(msgs.slice(0, 50))
  const { frames, result } = await read(small, 1)
  assert.deepEqual(result, { frames: 50, tornBytes: 0, invalid: 0 })
  assert.deepEqual(Buffer.concat(frames.map((f) => f.raw)), small)
})

test('a torn last frame is reported and the whole frames before it kept', async () => {
  const whole = encodeFrames(msgs.slice(0, 100))
  const torn = Buffer.concat([whole, encodeFrames(msgs.slice(100, 101)).subarray(0, 7)])
  const { frames, result } = await read(torn, 64)
  assert.equal(frames.length, 100)
  assert.deepEqual(result, { frames: 100, tornBytes: 7, invalid: 0 })
})

test('a corrupt length field stops the read without throwing', async () => {
  const whole = encodeFrames(msgs.slice(0, 10))
  const { frames, result } = await read(Buffer.concat([whole, Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3])]), 1024)
  assert.equal(frames.length, 10)
  assert.equal(result.tornBytes, 7)
})
