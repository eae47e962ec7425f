// Control frames of acknowledged mode (docs/protocol.md): labelled byte vectors drive the
// encoders, the body decoder and the client-side stream reader.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import {
  type ControlFrame, ControlFrameError, ControlReader, type ControlProblem, decodeControl, encodeAck, encodeClosing,
  encodeControl, encodeHello, encodeRefused, encodeSync, encodeSynced, MAX_CONTROL_FRAME_BYTES,
} from '../../src/protocol/control.ts'
import { ErrorCodes } from '../../src/errors.ts'

const vectors: Array<{ name: string, frame: ControlFrame, bytes: number[] }> = [
  {
    name: 'HELLO accepted',
    frame: { type: 'hello', version: 1, level: 1 },
    bytes: [
      0x04, 0x00, 0x00, 0x00, // length 4
      0x00, // bucketLen 0: a control frame
      0x01, // HELLO
      0x01, // version 1
      0x01, // level 1: accepted
    ],
  },
  {
    name: 'HELLO durable',
    frame: { type: 'hello', version: 1, level: 2 },
    bytes: [
      0x04, 0x00, 0x00, 0x00, // length 4
      0x00, // bucketLen 0
      0x01, // HELLO
      0x01, // version 1
      0x02, // level 2: durable
    ],
  },
  {
    name: 'ACK',
    frame: { type: 'ack', settled: 0x0102030405, refused: 3 },
    bytes: [
      0x12, 0x00, 0x00, 0x00, // length 18
      0x00, // bucketLen 0
      0x02, // ACK
      0x05, 0x04, 0x03, 0x02, 0x01, 0x00, 0x00, 0x00, // settled 0x0102030405
      0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // refused 3
    ],
  },
  {
    name: 'SYNC with the largest token',
    frame: { type: 'sync', token: Number.MAX_SAFE_INTEGER },
    bytes: [
      0x0a, 0x00, 0x00, 0x00, // length 10
      0x00, // bucketLen 0
      0x03, // SYNC
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00, // token 2^53 − 1
    ],
  },
  {
    name: 'SYNCED',
    frame: { type: 'synced', token: 7, settled: 1000, refused: 0 },
    bytes: [
      0x1a, 0x00, 0x00, 0x00, // length 26
      0x00, // bucketLen 0
      0x04, // SYNCED
      0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // token 7
      0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // settled 1000
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // refused 0
    ],
  },
  {
    name: 'CLOSING',
    frame: { type: 'closing', read: 0x100000000 },
    bytes: [
      0x0a, 0x00, 0x00, 0x00, // length 10
      0x00, // bucketLen 0
      0x05, // CLOSING
      0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // read 2^32
    ],
  },
  {
    name: 'CLOSING 0 (the answer to a bad HELLO)',
    frame: { type: 'closing', read: 0 },
    bytes: [
      0x0a, 0x00, 0x00, 0x00, // length 10
      0x00, // bucketLen 0
      0x05, // CLOSING
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // read 0
    ],
  },
  {
    name: 'REFUSED with a reason',
    frame: { type: 'refused', index: 2, reason: 'unknown_bucket' },
    bytes: [
      0x19, 0x00, 0x00, 0x00, // length 25 = 11 + 14
      0x00, // bucketLen 0
      0x06, // REFUSED
      0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // index 2
      0x0e, // reasonLen 14
      ...Buffer.from('unknown_bucket'), // reason
    ],
  },
  {
    name: 'REFUSED with an empty reason',
    frame: { type: 'refused', index: 0, reason: '' },
    bytes: [
      0x0b, 0x00, 0x00, 0x00, // length 11
      0x00, // bucketLen 0
      0x06, // REFUSED
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // index 0
      0x00, // reasonLen 0
    ],
  },
]

const PREFIX = 5 // u32 N and the bucketLen 0 byte: decodeControl() gets what follows

for (const v of vectors) {
  const bytes = Buffer.from(v.bytes)
  test(`${v.name}: encodes byte by byte`, () => {
    assert.deepEqual([...encodeControl(v.frame)], v.bytes)
  })
  test(`${v.name}: body decodes`, () => {
    assert.equal(bytes.readUInt32LE(0), bytes.length - 4, 'the vector\'s own length field')
    assert.deepEqual(decodeControl(bytes.subarray(PREFIX)), v.frame)
  })
  test(`${v.name}: the client's reader, split at every offset and one byte at a time`, () => {
    for (let i = 0; i <= bytes.length; i++) {
      const r = new ControlReader()
      const got = [...r.push(bytes.subarray(0, i)), ...r.push(bytes.subarray(i))]
      assert.deepEqual(got, [v.frame], `split at ${i}`)
      assert.equal(r.pendingBytes, 0)
    }
    const r = new ControlReader()
    const got: ControlFrame[] = []
    for (let i = 0; i < bytes.length; i++) {
      got.push(...r.push(bytes.subarray(i, i + 1)))
      if (i < bytes.length - 1) assert.equal(got.length, 0, `no frame before its last byte (${i})`)
    }
    assert.deepEqual(got, [v.frame])
  })
}

test('the typed encoders give the same bytes as encodeControl', () => {
  assert.deepEqual(encodeHello(2), encodeControl({ type: 'hello', version: 1, level: 2 }))
  assert.deepEqual(encodeAck(5, 1), encodeControl({ type: 'ack', settled: 5, refused: 1 }))
  assert.deepEqual(encodeSync(9), encodeControl({ type: 'sync', token: 9 }))
  assert.deepEqual(encodeSynced(9, 5, 1), encodeControl({ type: 'synced', token: 9, settled: 5, refused: 1 }))
  assert.deepEqual(encodeClosing(4), encodeControl({ type: 'closing', read: 4 }))
  assert.deepEqual(encodeRefused(4, 'x'), encodeControl({ type: 'refused', index: 4, reason: 'x' }))
})

test('all vectors back to back in one stream, split at every offset', () => {
  const all = Buffer.concat(vectors.map((v) => Buffer.from(v.bytes)))
  for (let i = 0; i <= all.length; i++) {
    const r = new ControlReader()
    assert.deepEqual([...r.push(all.subarray(0, i)), ...r.push(all.subarray(i))], vectors.map((v) => v.frame), `split at ${i}`)
  }
})

test('encoders refuse u64 values a number cannot hold exactly, and cut a long reason at 255 bytes', () => {
  assert.throws(() => encodeAck(-1, 0), RangeError)
  assert.throws(() => encodeAck(1.5, 0), RangeError)
  assert.throws(() => encodeSync(Number.MAX_SAFE_INTEGER + 1), RangeError)
  assert.throws(() => encodeClosing(Number.NaN), RangeError)
  const long = encodeRefused(1, 'é'.repeat(200)) // 400 bytes of UTF-8
  assert.equal(long.readUInt32LE(0), MAX_CONTROL_FRAME_BYTES)
  assert.equal(long[14], 255)
})

// Malformed bodies (what follows `u32 N | u8 0`): what the decoder reports for each.
const malformed: Array<{ name: string, body: number[], problem: ControlProblem }> = [
  { name: 'no opcode', body: [], problem: 'empty' },
  { name: 'opcode 0', body: [0x00], problem: 'unknown_opcode' },
  { name: 'opcode 7', body: [0x07, 0x00], problem: 'unknown_opcode' },
  { name: 'opcode 255', body: [0xff], problem: 'unknown_opcode' },
  { name: 'HELLO version 2', body: [0x01, 0x02, 0x01], problem: 'hello' },
  { name: 'HELLO version 0', body: [0x01, 0x00, 0x02], problem: 'hello' },
  { name: 'HELLO level 0', body: [0x01, 0x01, 0x00], problem: 'hello' },
  { name: 'HELLO level 3', body: [0x01, 0x01, 0x03], problem: 'hello' },
  { name: 'HELLO without its level', body: [0x01, 0x01], problem: 'hello' },
  { name: 'HELLO with a byte too many', body: [0x01, 0x01, 0x01, 0x00], problem: 'hello' },
  { name: 'SYNC one byte short', body: [0x03, 1, 0, 0, 0, 0, 0, 0], problem: 'length' },
  { name: 'SYNC one byte long', body: [0x03, 1, 0, 0, 0, 0, 0, 0, 0, 0], problem: 'length' },
  { name: 'SYNC token 2^53', body: [0x03, 0, 0, 0, 0, 0, 0, 0x20, 0], problem: 'u64_range' },
  { name: 'SYNC token 2^64 − 1', body: [0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], problem: 'u64_range' },
  { name: 'ACK without refused', body: [0x02, 1, 0, 0, 0, 0, 0, 0, 0], problem: 'length' },
  { name: 'ACK refused 2^63', body: [0x02, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80], problem: 'u64_range' },
  { name: 'SYNCED 24 bytes', body: [0x04, ...Array(23).fill(0)], problem: 'length' },
  { name: 'CLOSING empty', body: [0x05], problem: 'length' },
  { name: 'CLOSING read 2^56', body: [0x05, 0, 0, 0, 0, 0, 0, 0, 1], problem: 'u64_range' },
  { name: 'REFUSED without reasonLen', body: [0x06, 0, 0, 0, 0, 0, 0, 0, 0], problem: 'length' },
  { name: 'REFUSED reasonLen 3 with 2 bytes', body: [0x06, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x62], problem: 'length' },
  { name: 'REFUSED reasonLen 1 with 2 bytes', body: [0x06, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x61, 0x62], problem: 'length' },
]

for (const m of malformed) {
  test(`malformed: ${m.name} → ${m.problem}`, () => {
    const err = decodeControl(Buffer.from(m.body))
    assert.ok(err instanceof ControlFrameError, `expected a ControlFrameError, got ${JSON.stringify(err)}`)
    assert.equal(err.problem, m.problem)
    assert.equal(err.code, ErrorCodes.CONTROL_FRAME_INVALID)
    assert.equal(err.opcode, m.body.length === 0 ? -1 : m.body[0])
  })
}

test('the reader throws on a data frame or a length no control frame has', () => {
  assert.throws(() => new ControlReader().push(Buffer.from([0x03, 0, 0, 0, 0x01, 0x61, 0x00])), (e: unknown) => e instanceof ControlFrameError && e.problem === 'not_control')
  assert.throws(() => new ControlReader().push(Buffer.from([0x00, 0x10, 0, 0])), (e: unknown) => e instanceof ControlFrameError && e.problem === 'length')
  assert.throws(() => new ControlReader().push(Buffer.from([0x01, 0, 0, 0, 0x00])), (e: unknown) => e instanceof ControlFrameError && e.problem === 'length')
  assert.throws(() => new ControlReader().push(Buffer.from([0x04, 0, 0, 0, 0x00, 0x01, 0x01, 0x07])), (e: unknown) => e instanceof ControlFrameError && e.problem === 'hello')
})

test('random bytes: only a ControlFrameError comes out of the decoder and the reader', () => {
  for (let i = 0; i < 2000; i++) {
    const bytes = randomBytes(1 + (i % 40))
    const got = decodeControl(bytes)
    if (got instanceof Error) assert.ok(got instanceof ControlFrameError)
    // A plausible frame for the reader: bucketLen 0 and a length that fits, so bodies are exercised.
    const framed = Buffer.concat([Buffer.from([bytes.length + 1, 0, 0, 0, 0]), bytes])
    try {
      new ControlReader().push(i % 2 === 0 ? framed : bytes)
    } catch (err) {
      assert.ok(err instanceof ControlFrameError, `only ControlFrameError may escape, got ${String(err)}`)
    }
  }
})
