// kahets's record-batch encoder, read back by another implementation: @platformatic/kafka's
// own record-batch reader (the one its consumer uses), plus the CRC-32C check a broker makes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Reader, compressionsAlgorithms, crc32c as platformaticCrc32c, readRecordsBatch } from '@platformatic/kafka'
import { crc32c, encodeRecordBatch, type CodecName } from '../../src/streams/record-batch.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { FrameOrigin, WireFrame, type Frame } from '../../src/protocol/frame.ts'
import { decodeAll } from '../helpers/frames.ts'
import { produceRequest } from '../../src/streams/pre-encoded-producer.ts'

function read (batch: Buffer): ReturnType<typeof readRecordsBatch> {
  return readRecordsBatch(Reader.from(batch))
}

const base = 1_795_000_000_000

/** A frame as the decoder makes it, with the receivedAt a test needs. */
class At extends WireFrame {
  constructor (f: WireFrame, at: number) {
    super(f.bucket, new FrameOrigin(f.origin.chunk, at), f.start, f.end)
  }
}

function records (n: number, size: (i: number) => number, withKeys: boolean): Frame[] {
  const wire = encodeFrames(Array.from({ length: n }, (_, i) => ({
    bucket: 't',
    // Keys either side of the length a loop copies instead of Buffer.copy (frame.ts).
    key: withKeys && i % 4 !== 1 ? [Buffer.alloc(0), Buffer.from(`key-${i}`), randomBytes(24), randomBytes(25), randomBytes(255)][i % 5]! : null,
    payload: randomBytes(size(i)),
  })))
  // Out of order: before and after the first.
  return decodeAll(wire).frames.map((f, i) => new At(f as WireFrame, base + (i % 7) * 1000 - 3000))
}

test('CRC-32C: the check value of the standard', () => {
  // CRC-32C("123456789") = 0xE3069283 (RFC 3720, iSCSI).
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
})

test('a batch reads back record by record: keys (null, empty, set), values, timestamps, offsets', () => {
  const sizes = [0, 1, 63, 64, 127, 128, 8191, 8192, 100_000]
  const input = records(sizes.length * 3, (i) => sizes[i % sizes.length]!, true)
  const batch = encodeRecordBatch(input)
  const got = read(batch)
  assert.equal(got.magic, 2)
  assert.equal(got.length, batch.length - 12, 'batchLength counts the bytes after it')
  assert.equal(got.attributes, 0)
  assert.equal(got.lastOffsetDelta, input.length - 1)
  assert.equal(got.producerId, -1n)
  assert.equal(got.firstSequence, -1)
  assert.equal(got.firstTimestamp, BigInt(input[0]!.receivedAt))
  assert.equal(got.maxTimestamp, BigInt(Math.max(...input.map((r) => r.receivedAt))))
  assert.equal(got.crc, platformaticCrc32c(batch.subarray(21)), 'the crc covers attributes to the end')
  assert.equal(got.records.length, input.length)
  got.records.forEach((r, i) => {
    const want = input[i]!
    assert.equal(r.offsetDelta, i)
    assert.equal(Number(r.timestampDelta), want.receivedAt - input[0]!.receivedAt)
    if (want.key === null) assert.ok(r.key === null || r.key === undefined || r.key.length === 0, `record ${i}: null key`)
    else assert.deepEqual(Buffer.from(r.key ?? []), want.key, `record ${i}: key`)
    assert.deepEqual(Buffer.from(r.value ?? []), want.payload, `record ${i}: value`)
    assert.equal(r.headers.length, 0)
  })
})

for (const codec of ['gzip', 'snappy', 'lz4'] as const satisfies CodecName[]) {
  test(`compression ${codec}: codec bits set, records compressed as a whole, read back`, () => {
    const input = decodeAll(encodeFrames(Array.from({ length: 500 }, (_, i) => ({ bucket: 't', key: null, payload: Buffer.from(`message ${i % 10} `.repeat(8)) })))).frames
    const batch = encodeRecordBatch(input, codec, compressionsAlgorithms[codec].compressSync as (b: Buffer) => Buffer)
    const plain = encodeRecordBatch(input)
    assert.ok(batch.length < plain.length, `${codec}: ${batch.length} B, uncompressed ${plain.length} B`)
    const got = read(batch)
    assert.equal(got.attributes & 0b111, { gzip: 1, snappy: 2, lz4: 3 }[codec])
    assert.equal(got.crc, platformaticCrc32c(batch.subarray(21)))
    assert.deepEqual(got.records.map((r) => Buffer.from(r.value ?? [])), input.map((r) => r.payload))
  })
}

test('an empty batch is refused', () => {
  assert.throws(() => encodeRecordBatch([]), /at least one record/)
})

test('produce request body: topics, partitions and their batches, compact (v9+) and classic (v7)', () => {
  const a = encodeRecordBatch(records(2, () => 10, false))
  const b = encodeRecordBatch(records(3, () => 10, false))
  const messages = [{ topic: 't1', partition: 0, value: a }, { topic: 't2', partition: 1, value: b }, { topic: 't1', partition: 0, value: b }]
  const classic = produceRequest(7, 1, 3000, messages).buffer
  const r = Reader.from(classic)
  assert.equal(r.readNullableString(false), null)
  assert.equal(r.readInt16(), 1)
  assert.equal(r.readInt32(), 3000)
  assert.equal(r.readInt32(), 2, 'two topics')
  assert.equal(r.readString(false), 't1')
  assert.equal(r.readInt32(), 1, 'one partition of t1, its two batches back to back')
  assert.equal(r.readInt32(), 0)
  assert.equal(r.readInt32(), a.length + b.length)
  r.skip(a.length + b.length)
  assert.equal(r.readString(false), 't2')
  assert.equal(r.readInt32(), 1)
  assert.equal(r.readInt32(), 1)
  assert.equal(r.readInt32(), b.length)
  r.skip(b.length)
  assert.equal(r.remaining, 0)

  const compact = produceRequest(11, -1, 3000, messages.slice(1, 2))
  const c = Reader.from(compact.buffer)
  assert.equal(c.readNullableString(), null)
  assert.equal(c.readInt16(), -1)
  assert.equal(c.readInt32(), 3000)
  assert.equal(c.readUnsignedVarInt(), 2, 'compact array of one topic')
  assert.equal(c.readString(), 't2')
  assert.equal(c.readUnsignedVarInt(), 2)
  assert.equal(c.readInt32(), 1)
  assert.equal(c.readUnsignedVarInt(), b.length + 1)
  c.skip(b.length)
  assert.equal(c.readUnsignedVarInt(), 0, 'partition tagged fields')
  assert.equal(c.readUnsignedVarInt(), 0, 'topic tagged fields')
  assert.equal(c.readUnsignedVarInt(), 0, 'request tagged fields')
  assert.equal(c.remaining, 0)
  assert.equal(compact.context.noResponse, undefined)
  assert.equal(produceRequest(11, 0, 3000, messages).context.noResponse, true, 'acks=0: no response awaited')
})
