import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { FrameOrigin, WireFrame, type Frame } from '../../src/protocol/frame.ts'
import { crc32c, crc32cPortable, encodeSpoolRecords, spoolHeader, SpoolDecoder, type DamagedRange, type SpoolEnd, SPOOL_HEADER_BYTES } from '../../src/protocol/spool.ts'

interface Decoded {
  frames: Array<{ bucket: string, key: string | null, payload: string, ts: number }>
  damaged: DamagedRange[]
  end: SpoolEnd
}

function decode (chunks: Buffer[]): Decoded {
  const frames: Decoded['frames'] = []
  const damaged: DamagedRange[] = []
  const d = new SpoolDecoder({
    frames: (batch) => {
      assert.ok(batch.length > 0, 'never an empty batch')
      for (const f of batch) frames.push({ bucket: f.bucket, key: f.key === null ? null : f.key.toString(), payload: f.payload.toString(), ts: f.receivedAt })
    },
    damaged: (r) => { damaged.push(r) },
  })
  for (const c of chunks) d.push(c)
  return { frames, damaged, end: d.end() }
}

/** Frames as the socket decoder makes them: wire bytes with a receive time. */
function wireFrames (msgs: Array<{ bucket: string, key?: string | null, payload: string }>, receivedAt = 1_700_000_000_123): Frame[] {
  const frames: Frame[] = []
  const wire = encodeFrames(msgs)
  const origin = new FrameOrigin(wire, receivedAt)
  let at = 0
  for (const m of msgs) {
    const size = wire.readUInt32LE(at) + 4
    frames.push(new WireFrame(m.bucket, origin, at, at + size))
    at += size
  }
  return frames
}

function spoolFile (msgs: Array<{ bucket: string, key?: string | null, payload: string }>): { bytes: Buffer, offsets: number[] } {
  const records = Buffer.concat(encodeSpoolRecords(wireFrames(msgs)))
  const offsets: number[] = []
  for (let at = 0; at < records.length; at += 4 + records.readUInt32LE(at)) offsets.push(SPOOL_HEADER_BYTES + at)
  return { bytes: Buffer.concat([spoolHeader(), records]), offsets }
}

const clean = { tornBytes: 0, headerDamaged: false, unknownVersion: null }

test('CRC-32C: the check value of "123456789" (RFC 3720), native and portable', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
  assert.equal(crc32cPortable(Buffer.from('123456789')), 0xe3069283)
  const data = randomBytes(1000)
  for (let end = 0; end <= 1000; end += 37) assert.equal(crc32cPortable(data, 3, end < 3 ? 3 : end), crc32c(data.subarray(3, end < 3 ? 3 : end)))
})

test('the header and one record, byte by byte', () => {
  const header = spoolHeader()
  assert.deepEqual([...header.subarray(0, 12)], [
    0x4b, 0x48, 0x54, 0x53, 0x50, 0x4f, 0x4f, 0x4c, // magic "KHTSPOOL"
    0x01, // version 1
    0x00, 0x00, 0x00, // reserved
  ])
  assert.equal(header.readUInt32LE(12), crc32c(header.subarray(0, 12)))
  const [record] = encodeSpoolRecords(wireFrames([{ bucket: 'a', key: 'k1', payload: 'hi' }], 0x0102030405))
  const frame = [
    0x07, 0x00, 0x00, 0x00, // frame length 7
    0x01, 0x61, // bucket "a"
    0x02, 0x6b, 0x31, // key "k1"
    0x68, 0x69, // payload "hi"
  ]
  const body = [
    0x05, 0x04, 0x03, 0x02, 0x01, 0x00, 0x00, 0x00, // timestamp 0x0102030405 ms
    ...frame,
  ]
  const crc = Buffer.alloc(4)
  crc.writeUInt32LE(crc32c(Buffer.from(body)))
  assert.deepEqual([...record!], [
    0x17, 0x00, 0x00, 0x00, // length 23 = crc 4 + body 19
    ...crc,
    ...body,
  ])
  assert.deepEqual(decode([header, record!]), { frames: [{ bucket: 'a', key: 'k1', payload: 'hi', ts: 0x0102030405 }], damaged: [], end: clean })
})

test('records come back whole and in order, split at every offset and one byte at a time', () => {
  const msgs = Array.from({ length: 20 }, (_, i) => ({ bucket: i % 2 ? 'a' : 'b.c', key: i % 3 ? `k${i}` : null, payload: 'p'.repeat(i) }))
  const { bytes } = spoolFile(msgs)
  const expected = msgs.map((m) => ({ bucket: m.bucket, key: m.key, payload: m.payload, ts: 1_700_000_000_123 }))
  for (let cut = 0; cut <= bytes.length; cut++) {
    assert.deepEqual(decode([bytes.subarray(0, cut), bytes.subarray(cut)]), { frames: expected, damaged: [], end: clean }, `split at ${cut}`)
  }
  assert.deepEqual(decode([...bytes].map((b) => Buffer.from([b]))), { frames: expected, damaged: [], end: clean })
})

test('encodeSpoolRecords cuts buffers only between records', () => {
  const frames = wireFrames(Array.from({ length: 1000 }, (_, i) => ({ bucket: 'a', payload: 'x'.repeat(i % 300) })))
  const buffers = encodeSpoolRecords(frames, 4096)
  assert.ok(buffers.length > 10)
  for (const b of buffers) {
    let at = 0
    while (at < b.length) at += 4 + b.readUInt32LE(at)
    assert.equal(at, b.length)
  }
  assert.equal(decode([spoolHeader(), ...buffers]).frames.length, 1000)
})

// The damage vectors of issue 10, finding 3: a 1,000-frame file damaged in the middle.
const thousand = Array.from({ length: 1000 }, (_, i) => ({ bucket: 'orders', key: `k${i}`, payload: `payload number ${i}` }))
const everyOther = (skip: number[]) => thousand.filter((_, i) => !skip.includes(i)).map((m) => m.payload)

for (const delta of [-10, +3]) {
  test(`a length field off by ${delta} in the middle: 999 frames, the damaged one not, nothing wrong`, () => {
    const { bytes, offsets } = spoolFile(thousand)
    const at = offsets[500]!
    bytes.writeUInt32LE(bytes.readUInt32LE(at) + delta, at)
    for (const chunk of [7, 100, 1 << 20]) {
      const chunks = []
      for (let i = 0; i < bytes.length; i += chunk) chunks.push(bytes.subarray(i, i + chunk))
      const got = decode(chunks)
      assert.deepEqual(got.frames.map((f) => f.payload), everyOther([500]), `chunks of ${chunk}`)
      assert.deepEqual(got.damaged, [{ start: at, end: offsets[501]! }])
      assert.deepEqual(got.end, clean)
    }
  })
}

test('a flipped payload byte: that record skipped and reported', () => {
  const { bytes, offsets } = spoolFile(thousand)
  bytes[offsets[321]! + 30] ^= 0x01
  const got = decode([bytes])
  assert.deepEqual(got.frames.map((f) => f.payload), everyOther([321]))
  assert.deepEqual(got.damaged, [{ start: offsets[321]!, end: offsets[322]! }])
})

test('a flipped bit in the timestamp or the crc is damage too', () => {
  for (const off of [5, 9]) {
    const { bytes, offsets } = spoolFile(thousand)
    bytes[offsets[10]! + off] ^= 0x80
    assert.deepEqual(decode([bytes]).frames.map((f) => f.payload), everyOther([10]))
  }
})

test('a torn tail is the crash case, not damage, wherever the cut falls', () => {
  const { bytes, offsets } = spoolFile(thousand.slice(0, 10))
  const last = offsets[9]!
  for (let cut = last + 1; cut < bytes.length; cut++) {
    const got = decode([bytes.subarray(0, cut)])
    assert.equal(got.frames.length, 9, `cut at ${cut}`)
    assert.deepEqual(got.damaged, [])
    assert.deepEqual(got.end, { ...clean, tornBytes: cut - last })
  }
})

test('a file cut inside its header (created just before a crash) is torn, not damaged', () => {
  for (let cut = 0; cut < SPOOL_HEADER_BYTES; cut++) {
    assert.deepEqual(decode([spoolHeader().subarray(0, cut)]), { frames: [], damaged: [], end: { ...clean, tornBytes: cut } })
  }
})

test('garbage and zeros between records: skipped, reported, the read goes on', () => {
  const { bytes, offsets } = spoolFile(thousand)
  const garbage = randomBytes(777)
  const zeros = Buffer.alloc(64)
  const damaged = Buffer.concat([bytes.subarray(0, offsets[100]), garbage, bytes.subarray(offsets[100], offsets[600]), zeros, bytes.subarray(offsets[600])])
  const got = decode([damaged])
  assert.deepEqual(got.frames.map((f) => f.payload), everyOther([]))
  assert.deepEqual(got.damaged, [
    { start: offsets[100]!, end: offsets[100]! + 777 },
    { start: offsets[600]! + 777, end: offsets[600]! + 777 + 64 },
  ])
})

test('damage running to the end of the file is damage, not a torn tail', () => {
  const { bytes, offsets } = spoolFile(thousand.slice(0, 10))
  bytes.fill(0xee, offsets[8]!, offsets[8]! + 3)
  const got = decode([bytes])
  assert.equal(got.frames.length, 9)
  assert.deepEqual(got.damaged, [{ start: offsets[8]!, end: offsets[9]! }])
  const cut = decode([bytes.subarray(0, offsets[9]! - 5)])
  assert.equal(cut.frames.length, 8)
  assert.deepEqual(cut.damaged, [{ start: offsets[8]!, end: offsets[9]! - 5 }])
  assert.equal(cut.end.tornBytes, 0)
})

test('a damaged header is reported; the records after it still come back', () => {
  for (const at of [0, 3, 8, 10, 13]) {
    const { bytes } = spoolFile(thousand.slice(0, 10))
    bytes[at] ^= 0x20
    const got = decode([bytes])
    assert.equal(got.frames.length, 10, `byte ${at}`)
    assert.deepEqual(got.damaged, [{ start: 0, end: SPOOL_HEADER_BYTES }])
    assert.equal(got.end.headerDamaged, true)
  }
})

test('an unknown version delivers nothing and says so', () => {
  const { bytes } = spoolFile(thousand.slice(0, 10))
  bytes[8] = 2
  bytes.writeUInt32LE(crc32c(bytes.subarray(0, 12)), 12)
  const got = decode([bytes])
  assert.deepEqual(got.frames, [])
  assert.equal(got.end.unknownVersion, 2)
})

test('random bytes never throw and never deliver a frame', () => {
  for (let i = 0; i < 200; i++) {
    const bytes = Buffer.concat([spoolHeader(), randomBytes(1 + (i * 37) % 3000)])
    const got = decode([bytes.subarray(0, 100), bytes.subarray(100)])
    assert.deepEqual(got.frames, [])
  }
})
