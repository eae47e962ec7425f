import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { FrameDecoder, type InvalidReason } from '../../src/protocol/decoder.ts'
import { encodeFrame, encodeFrames } from '../../src/protocol/encoder.ts'
import { ProtocolError } from '../../src/errors.ts'
import type { Frame } from '../../src/protocol/frame.ts'

interface Decoded {
  frames: Array<{ bucket: string, key: string | null, payload: string }>
  invalid: InvalidReason[]
  error: string | null
  lost: number
}

function decode (chunks: Buffer[], maxFrameBytes = 1024): Decoded {
  const got: Decoded = { frames: [], invalid: [], error: null, lost: 0 }
  const d = new FrameDecoder({
    frames: (batch: Frame[]) => {
      assert.ok(batch.length > 0, 'the sink is never handed an empty batch')
      for (const f of batch) got.frames.push({ bucket: f.bucket, key: f.key === null ? null : f.key.toString('hex'), payload: f.payload.toString('hex') })
    },
    invalid: (reason) => { got.invalid.push(reason) },
  }, { maxFrameBytes })
  try {
    for (const c of chunks) d.push(c)
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `only ProtocolError may escape, got ${String(err)}`)
    got.error = err.code
  }
  got.lost = d.end()
  return got
}

const frame = (bucket: string, key: string | null, payloadHex: string) => ({ bucket, key: key === null ? null : Buffer.from(key).toString('hex'), payload: payloadHex })

// Labelled vectors: the bytes on the wire and what the decoder must make of them.
const vectors: Array<{ name: string, bytes: number[], expect: Omit<Decoded, 'lost'> & { lost?: number } }> = [
  {
    name: 'one frame, key and payload',
    bytes: [
      0x07, 0x00, 0x00, 0x00, // length 7
      0x01, 0x61, // bucket "a"
      0x02, 0x6b, 0x31, // key "k1"
      0xff, 0x00, // payload ff 00
    ],
    expect: { frames: [frame('a', 'k1', 'ff00')], invalid: [], error: null },
  },
  {
    name: 'null key and empty payload',
    bytes: [
      0x04, 0x00, 0x00, 0x00, // length 4
      0x02, 0x62, 0x2e, // bucket "b."
      0x00, // no key
    ],
    expect: { frames: [frame('b.', null, '')], invalid: [], error: null },
  },
  {
    name: 'two frames back to back',
    bytes: [
      0x03, 0x00, 0x00, 0x00, 0x01, 0x78, 0x00, // "x", no key, empty
      0x05, 0x00, 0x00, 0x00, 0x01, 0x79, 0x00, 0x0a, 0x0d, // "y", payload \n\r
    ],
    expect: { frames: [frame('x', null, ''), frame('y', null, '0a0d')], invalid: [], error: null },
  },
  {
    name: 'control frame (bucketLen 0) is skipped, the next frame kept',
    bytes: [
      0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x41, // bucketLen 0
      0x03, 0x00, 0x00, 0x00, 0x01, 0x7a, 0x00,
    ],
    expect: { frames: [frame('z', null, '')], invalid: ['control_frame'], error: null },
  },
  {
    name: 'bucket longer than the frame',
    bytes: [
      0x03, 0x00, 0x00, 0x00, 0x05, 0x61, 0x62, // bucketLen 5 in a 3-byte body
      0x03, 0x00, 0x00, 0x00, 0x01, 0x7a, 0x00,
    ],
    expect: { frames: [frame('z', null, '')], invalid: ['fields_overflow'], error: null },
  },
  {
    name: 'key longer than the frame',
    bytes: [
      0x04, 0x00, 0x00, 0x00, 0x01, 0x61, 0x09, 0x6b, // keyLen 9, one key byte
    ],
    expect: { frames: [], invalid: ['fields_overflow'], error: null },
  },
  {
    name: 'zero length body',
    bytes: [0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x7a, 0x00],
    expect: { frames: [frame('z', null, '')], invalid: ['fields_overflow'], error: null },
  },
  {
    name: 'bucket with a slash',
    bytes: [0x05, 0x00, 0x00, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x00],
    expect: { frames: [], invalid: ['bad_bucket'], error: null },
  },
  {
    name: 'bucket ".."',
    bytes: [0x04, 0x00, 0x00, 0x00, 0x02, 0x2e, 0x2e, 0x00],
    expect: { frames: [], invalid: ['bad_bucket'], error: null },
  },
  {
    name: 'bucket "."',
    bytes: [0x03, 0x00, 0x00, 0x00, 0x01, 0x2e, 0x00],
    expect: { frames: [], invalid: ['bad_bucket'], error: null },
  },
  {
    name: 'bucket with a non-ASCII byte',
    bytes: [0x04, 0x00, 0x00, 0x00, 0x02, 0x61, 0xe9, 0x00],
    expect: { frames: [], invalid: ['bad_bucket'], error: null },
  },
  {
    name: 'oversized length closes the stream; earlier frames kept',
    bytes: [
      0x03, 0x00, 0x00, 0x00, 0x01, 0x7a, 0x00,
      0x01, 0x04, 0x00, 0x00, // length 1025 > max 1024
      0x01, 0x61, 0x00,
    ],
    expect: { frames: [frame('z', null, '')], invalid: [], error: 'KAHETS_FRAME_TOO_LARGE' },
  },
  {
    name: 'connection ends mid-frame',
    bytes: [
      0x03, 0x00, 0x00, 0x00, 0x01, 0x7a, 0x00,
      0x09, 0x00, 0x00, 0x00, 0x01, 0x61, // 6 bytes of a 13-byte frame
    ],
    expect: { frames: [frame('z', null, '')], invalid: [], error: null, lost: 6 },
  },
  {
    name: 'connection ends inside the length field',
    bytes: [0x03, 0x00, 0x00, 0x00, 0x01, 0x7a, 0x00, 0x09, 0x00],
    expect: { frames: [frame('z', null, '')], invalid: [], error: null, lost: 2 },
  },
]

for (const v of vectors) {
  const bytes = Buffer.from(v.bytes)
  const expected = { lost: 0, ...v.expect }

  test(`${v.name}: whole`, () => {
    assert.deepEqual(decode([bytes]), expected)
  })

  test(`${v.name}: split at every offset`, () => {
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(decode([bytes.subarray(0, i), bytes.subarray(i)]), expected, `split at ${i}`)
    }
  })

  test(`${v.name}: byte by byte`, () => {
    const chunks = [...bytes].map((b) => Buffer.from([b]))
    assert.deepEqual(decode(chunks), expected)
  })
}

test('valid vectors encode to the same bytes', () => {
  assert.deepEqual(encodeFrame({ bucket: 'a', key: 'k1', payload: Buffer.from([0xff, 0x00]) }), Buffer.from(vectors[0]!.bytes))
  assert.deepEqual(encodeFrame({ bucket: 'b.', key: null, payload: '' }), Buffer.from(vectors[1]!.bytes))
  assert.deepEqual(encodeFrames([{ bucket: 'x', payload: '' }, { bucket: 'y', payload: '\n\r' }]), Buffer.from(vectors[2]!.bytes))
})

test('encoder refuses what the decoder would reject', () => {
  assert.throws(() => encodeFrame({ bucket: '..', payload: 'x' }), RangeError)
  assert.throws(() => encodeFrame({ bucket: '', payload: 'x' }), RangeError)
  assert.throws(() => encodeFrame({ bucket: 'a/b', payload: 'x' }), RangeError)
  assert.throws(() => encodeFrame({ bucket: 'é', payload: 'x' }), RangeError)
  assert.throws(() => encodeFrame({ bucket: 'b'.repeat(256), payload: 'x' }), RangeError)
  assert.throws(() => encodeFrame({ bucket: 'a', key: 'k'.repeat(256), payload: 'x' }), RangeError)
})

test('round trip: random frames, random chunking', () => {
  const msgs = Array.from({ length: 2000 }, (_, i) => ({
    bucket: ['orders', 'clicks.v2', 'a_b-c', 'z'.repeat(255)][i % 4]!,
    key: i % 3 === 0 ? null : randomBytes(i % 256),
    payload: randomBytes((i * 7919) % 3000),
  }))
  const wire = encodeFrames(msgs)
  const chunks: Buffer[] = []
  for (let pos = 0; pos < wire.length;) {
    const size = 1 + Math.floor(Math.random() * 4096)
    chunks.push(wire.subarray(pos, pos + size))
    pos += size
  }
  const frames: Frame[] = []
  const d = new FrameDecoder({ frames: (b) => { frames.push(...b) }, invalid: () => assert.fail('no invalid frame expected') }, { maxFrameBytes: 1 << 20 })
  for (const c of chunks) d.push(c)
  assert.equal(d.end(), 0)
  assert.equal(frames.length, msgs.length)
  frames.forEach((f, i) => {
    const m = msgs[i]!
    assert.equal(f.bucket, m.bucket)
    assert.deepEqual(f.key, m.key === null || m.key.length === 0 ? null : m.key)
    assert.deepEqual(f.payload, m.payload)
    assert.deepEqual(f.raw, encodeFrame(m))
  })
})

test('random bytes never throw anything but ProtocolError', () => {
  for (let round = 0; round < 500; round++) {
    const d = new FrameDecoder({ frames: () => {}, invalid: () => {} }, { maxFrameBytes: 1 + (round % 4096) })
    const junk = randomBytes(1 + Math.floor(Math.random() * 8192))
    try {
      for (let pos = 0; pos < junk.length; pos += 1 + (round % 97)) d.push(junk.subarray(pos, pos + 1 + (round % 97)))
    } catch (err) {
      assert.ok(err instanceof ProtocolError, `unexpected ${String(err)}`)
    }
    d.end()
  }
})

test('after an oversized frame the decoder refuses more input', () => {
  const d = new FrameDecoder({ frames: () => {}, invalid: () => {} }, { maxFrameBytes: 8 })
  assert.throws(() => d.push(Buffer.from([0x09, 0, 0, 0])), ProtocolError)
  assert.throws(() => d.push(encodeFrame({ bucket: 'a', payload: '' })), ProtocolError)
})

test('a large unfinished frame holds only what came until the next chunk, then its whole buffer', () => {
  const payload = randomBytes(300 * 1024)
  const bytes = encodeFrame({ bucket: 'big', key: null, payload })
  const got: Buffer[] = []
  const d = new FrameDecoder({ frames: (b) => { for (const f of b) got.push(Buffer.from(f.payload)) }, invalid: () => assert.fail('invalid') }, { maxFrameBytes: 1024 * 1024 })
  d.push(bytes.subarray(0, 1000))
  assert.equal(d.heldBytes, 1000, 'the announced 300 KiB are not allocated on the first chunk')
  assert.equal(d.holdsWholeBuffer, false)
  assert.equal(d.partialTotal, bytes.length)
  d.push(bytes.subarray(1000, 2000))
  assert.equal(d.heldBytes, bytes.length)
  assert.equal(d.holdsWholeBuffer, true)
  d.push(bytes.subarray(2000))
  assert.equal(d.heldBytes, 0)
  assert.deepEqual(got, [payload])
})

test('a small unfinished frame gets its whole buffer at once', () => {
  const bytes = encodeFrame({ bucket: 'b', key: null, payload: Buffer.alloc(1000, 1) })
  const d = new FrameDecoder({ frames: () => {}, invalid: () => {} })
  d.push(bytes.subarray(0, 10))
  assert.equal(d.heldBytes, bytes.length)
  assert.equal(d.holdsWholeBuffer, true)
})

test('round trip: large frames, random chunking, the whole buffer granted or refused at random', () => {
  for (let round = 0; round < 20; round++) {
    const msgs = Array.from({ length: 5 }, (_, i) => ({ bucket: `b${i}`, key: i % 2 === 0 ? null : Buffer.from('k'), payload: randomBytes(Math.floor(Math.random() * 200_000)) }))
    const bytes = encodeFrames(msgs)
    const got: Frame[] = []
    const d = new FrameDecoder({ frames: (b) => { got.push(...b) }, invalid: () => assert.fail('invalid') }, {
      maxFrameBytes: 1024 * 1024,
      mayHoldWhole: () => Math.random() < 0.5,
    })
    let at = 0
    while (at < bytes.length) {
      const n = 1 + Math.floor(Math.random() * 70_000)
      d.push(bytes.subarray(at, at + n))
      at += n
      assert.ok(d.heldBytes <= (d.partialTotal === 0 ? 3 : d.partialTotal))
    }
    assert.equal(d.end(), 0)
    assert.deepEqual(got.map((f) => [f.bucket, f.key?.toString() ?? null, f.payload.toString('hex')]), msgs.map((m) => [m.bucket, m.key?.toString() ?? null, m.payload.toString('hex')]))
  }
})
