import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile, writeFile, mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { firstRecordTime, quarantineFile, readFrameFile } from '../../src/streams/frame-file.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { FrameOrigin, WireFrame, type Frame } from '../../src/protocol/frame.ts'
import { encodeSpoolRecords, spoolHeader } from '../../src/protocol/spool.ts'
import { makeTempDir } from '../helpers/kahets.ts'

const msgs = Array.from({ length: 3000 }, (_, i) => ({ bucket: i % 2 ? 'a' : 'b', key: i % 3 ? `k${i}` : null, payload: Buffer.alloc(i % 700, i % 256) }))
const wire = encodeFrames(msgs)

function asFrames (bytes: Buffer, receivedAt: number): Frame[] {
  const origin = new FrameOrigin(bytes, receivedAt)
  const out: Frame[] = []
  for (let at = 0; at < bytes.length;) {
    const end = at + 4 + bytes.readUInt32LE(at)
    out.push(new WireFrame(bytes.toString('latin1', at + 5, at + 5 + bytes[at + 4]!), origin, at, end))
    at = end
  }
  return out
}
const spool = Buffer.concat([spoolHeader(), ...encodeSpoolRecords(asFrames(wire, 1_700_000_000_000))])

async function read (bytes: Buffer, chunkBytes: number): Promise<{ frames: Frame[], result: Awaited<ReturnType<typeof readFrameFile>> }> {
  const dir = await makeTempDir()
  const file = join(dir, 'f.frames')
  await writeFile(file, bytes)
  const frames: Frame[] = []
  const result = await readFrameFile(file, async (batch) => { frames.push(...batch) }, { chunkBytes })
  return { frames, result }
}

const whole = (format: 'spool' | 'frames', bytes: number, frames: number) => ({ format, bytes, frames, tornBytes: 0, damaged: [], corruptBytes: 0, unreadable: null, whole: true })

test('a whole file comes back frame by frame, whatever the chunk size, in both formats', async () => {
  for (const chunkBytes of [7, 4096, 1 << 20]) {
    const plain = await read(wire, chunkBytes)
    assert.deepEqual(plain.result, whole('frames', wire.length, 3000))
    assert.deepEqual(Buffer.concat(plain.frames.map((f) => f.raw)), wire)
    const sp = await read(spool, chunkBytes)
    assert.deepEqual(sp.result, whole('spool', spool.length, 3000))
    assert.deepEqual(Buffer.concat(sp.frames.map((f) => f.raw)), wire)
    assert.ok(sp.frames.every((f) => f.receivedAt === 1_700_000_000_000), 'the spool keeps each record\'s time')
  }
})

test('one byte at a time', async () => {
  const small = encodeFrames(msgs.slice(0, 50))
  const { frames, result } = await read(small, 1)
  assert.deepEqual(result, whole('frames', small.length, 50))
  assert.deepEqual(Buffer.concat(frames.map((f) => f.raw)), small)
})

test('a torn last frame is reported, not damage, and the whole frames before it kept', async () => {
  const head = encodeFrames(msgs.slice(0, 100))
  const torn = Buffer.concat([head, encodeFrames(msgs.slice(100, 101)).subarray(0, 7)])
  const { frames, result } = await read(torn, 64)
  assert.equal(frames.length, 100)
  assert.deepEqual(result, { ...whole('frames', torn.length, 100), tornBytes: 7 })
  const tornSpool = await read(spool.subarray(0, spool.length - 3), 4096)
  const lastRecord = 16 + encodeFrames(msgs.slice(2999)).length
  assert.deepEqual(tornSpool.result, { ...whole('spool', spool.length - 3, 2999), tornBytes: lastRecord - 3 })
})

test('plain frames: a length no frame can have is damage to the end of the file, not a torn tail', async () => {
  const head = encodeFrames(msgs.slice(0, 10))
  const bytes = Buffer.concat([head, Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3])])
  const { frames, result } = await read(bytes, 1024)
  assert.equal(frames.length, 10)
  assert.deepEqual(result.damaged, [{ start: head.length, end: bytes.length }])
  assert.equal(result.whole, false)
})

test('plain frames: frames whose fields do not fit, and zeros, are damaged ranges; the read goes on', async () => {
  const a = encodeFrames(msgs.slice(0, 10))
  const b = encodeFrames(msgs.slice(10, 20))
  const bad = Buffer.from([0x03, 0, 0, 0, 0x05, 0x61, 0x61]) // bucketLen 5 in a 3-byte body
  const bytes = Buffer.concat([a, bad, Buffer.alloc(16), b])
  const { frames, result } = await read(bytes, 100)
  assert.equal(frames.length, 20)
  assert.deepEqual(result.damaged, [{ start: a.length, end: a.length + 7 + 16 }])
  assert.equal(result.corruptBytes, 23)
})

test('the format is told by the magic, not the name; a header with a flipped byte is still a spool', async () => {
  const damaged = Buffer.from(spool)
  damaged[2] ^= 0x01
  const { frames, result } = await read(damaged, 1 << 20)
  assert.equal(result.format, 'spool')
  assert.equal(frames.length, 3000)
  assert.deepEqual(result.damaged, [{ start: 0, end: 16 }])
  assert.equal(result.whole, false)
})

test('a 1,000-frame spool with a length off by -10 in the middle: 999 frames, not whole', async () => {
  const thousand = Buffer.concat([spoolHeader(), ...encodeSpoolRecords(asFrames(encodeFrames(msgs.slice(0, 1000)), 1))])
  let at = 16
  for (let i = 0; i < 500; i++) at += 4 + thousand.readUInt32LE(at)
  thousand.writeUInt32LE(thousand.readUInt32LE(at) - 10, at)
  const { frames, result } = await read(thousand, 4096)
  assert.equal(frames.length, 999)
  assert.deepEqual(frames.map((f) => f.payload), [...msgs.slice(0, 500), ...msgs.slice(501, 1000)].map((m) => m.payload))
  assert.equal(result.damaged.length, 1)
  assert.equal(result.damaged[0]!.start, at)
  assert.equal(result.whole, false)
})

test('quarantineFile keeps the path below root, never replaces an earlier one', async () => {
  const root = await makeTempDir()
  await mkdir(join(root, 'orders'))
  for (const content of ['one', 'two']) {
    await writeFile(join(root, 'orders', '1700000000-AbCdEfGh.frames'), content)
    await quarantineFile(root, join(root, 'orders', '1700000000-AbCdEfGh.frames'))
  }
  assert.ok(!existsSync(join(root, 'orders', '1700000000-AbCdEfGh.frames')))
  assert.equal(await readFile(join(root, 'quarantine', 'orders', '1700000000-AbCdEfGh.frames'), 'utf8'), 'one')
  assert.equal(await readFile(join(root, 'quarantine', 'orders', '1700000000-AbCdEfGh.frames.1'), 'utf8'), 'two')
})

test('firstRecordTime: a spool\'s first record time; a plain frame file\'s mtime; null with no record or no file', async () => {
  const dir = await makeTempDir()
  const file = (name: string): string => join(dir, name)
  await writeFile(file('s.frames'), spool)
  assert.equal(await firstRecordTime(file('s.frames')), 1_700_000_000_000)
  await writeFile(file('p.frames'), wire)
  assert.equal(await firstRecordTime(file('p.frames')), (await stat(file('p.frames'))).mtimeMs)
  await writeFile(file('h.frames'), spoolHeader())
  assert.equal(await firstRecordTime(file('h.frames')), null, 'a header alone holds no message')
  await writeFile(file('e.frames'), Buffer.alloc(0))
  assert.equal(await firstRecordTime(file('e.frames')), null)
  assert.equal(await firstRecordTime(file('missing.frames')), null)
})
