// End to end with the real kahets process: many concurrent clients, hostile connections
// beside them, SIGTERM, and then the files must hold every frame exactly once.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createConnection } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { KahetsClient } from '../../clients/node/index.ts'
import { encodeFrame, encodeFrames } from '../../src/protocol/encoder.ts'
import { startKahets } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { waitFor } from '../helpers/wait.ts'

const BUCKETS = ['orders', 'clicks.v2', 'audit_log']
const CLIENTS = 8
const TOTAL = 100_000

// Deterministic message i of client c: the test can rebuild every expected byte.
function message (c: number, i: number): { bucket: string, key: Buffer | null, payload: Buffer } {
  const seed = createHash('sha256').update(`${c}:${i}`).digest()
  const size = seed[0]! % 4 === 0 ? 0 : seed[1]! + seed[2]!
  const payload = Buffer.alloc(size + 12)
  payload.writeUInt32BE(c, 0)
  payload.writeUInt32BE(i, 4)
  payload.writeUInt32BE(size, 8)
  for (let j = 0; j < size; j++) payload[12 + j] = seed[j % 32]! ^ j // zero bytes, newlines, anything
  return { bucket: BUCKETS[(c + i) % BUCKETS.length]!, key: i % 5 === 0 ? null : Buffer.from(`c${c}-k${i % 97}`), payload }
}

function sendRaw (socketPath: string, bytes: Buffer, end: boolean): Promise<void> {
  return new Promise((resolve) => {
    const s = createConnection(socketPath, () => {
      s.write(bytes, () => { if (end) s.end(); else s.destroy(); resolve() })
    })
    s.on('error', () => resolve())
  })
}

test('8 clients, 100,000 frames, 3 buckets, hostile neighbours: every frame once, in order, byte-identical', async () => {
  const k = await startKahets({
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out', sizeRotate: '1GB', fileNameTemplate: '{bucket}{PS}{ts}-{rand}.frames' } } },
      buckets: BUCKETS.map((id, n) => ({ id, streams: ['files'], batch: [1000, 333, 5000][n], batchTimeout: 50 })),
    },
    env: { MAX_FRAME_BYTES: '64KB' },
  })

  const perClient = TOTAL / CLIENTS
  const senders = Array.from({ length: CLIENTS }, async (_, c) => {
    const client = await KahetsClient.connect(k.socket)
    // Random chunk splits: the client's bytes go out in arbitrary slices.
    const wire = encodeFrames(Array.from({ length: perClient }, (_, i) => message(c, i)))
    for (let pos = 0; pos < wire.length;) {
      const n = 1 + Math.floor(Math.random() * 9000)
      if (!client.writeRaw(wire.subarray(pos, pos + n))) await client.drain()
      pos += n
    }
    await client.close()
  })

  // Neighbours that must change nothing for the others.
  const hostile = [
    sendRaw(k.socket, randomBytes(64 * 1024), true), // garbage
    sendRaw(k.socket, Buffer.concat([encodeFrame({ bucket: 'orders', key: 'x', payload: 'before-oversized' }), Buffer.from([0xff, 0xff, 0xff, 0x00]), randomBytes(100)]), false), // oversized
    sendRaw(k.socket, encodeFrame({ bucket: 'orders', key: 'x', payload: 'cut' }).subarray(0, 9), true), // closes mid-frame
    sendRaw(k.socket, Buffer.concat([
      Buffer.from([0x05, 0, 0, 0, 0x03, 0x61, 0x2f, 0x62, 0x00]), // bucket "a/b": invalid, skipped
      Buffer.from([0x04, 0, 0, 0, 0x02, 0x2e, 0x2e, 0x00]), // bucket "..": invalid, skipped
      encodeFrame({ bucket: 'audit_log', key: 'after-invalid', payload: 'kept' }),
    ]), true),
  ]
  await Promise.all([...senders, ...hostile])
  // Every connection is closed by now; wait until kahets noticed, then stop it.
  assert.equal(await k.stop(), 0, k.output())

  const files = await readFrameFiles(`${k.dir}/out`)
  const seen = new Map<string, number>()
  const lastSeq = new Map<string, number>()
  const extras = { beforeOversized: 0, afterInvalid: 0 }
  for (const { file, frames } of files) {
    const bucket = file.split('/').at(-2)!
    assert.ok(BUCKETS.includes(bucket), `unexpected bucket folder ${bucket}`)
    for (const f of frames) {
      assert.equal(f.bucket, bucket)
      if (f.payload.length < 12 || f.key?.toString() === 'x' || f.key?.toString() === 'after-invalid') {
        if (f.payload.toString() === 'before-oversized') extras.beforeOversized++
        else if (f.payload.toString() === 'kept') extras.afterInvalid++
        else assert.fail(`stray frame ${f.raw.toString('hex').slice(0, 80)}`)
        continue
      }
      const c = f.payload.readUInt32BE(0)
      const i = f.payload.readUInt32BE(4)
      assert.deepEqual(f.raw, encodeFrame(message(c, i)), `client ${c} message ${i} not byte-identical`)
      const id = `${c}:${i}`
      seen.set(id, (seen.get(id) ?? 0) + 1)
      const order = `${c}:${bucket}`
      assert.ok((lastSeq.get(order) ?? -1) < i, `client ${c} bucket ${bucket}: ${i} after ${lastSeq.get(order)}`)
      lastSeq.set(order, i)
    }
  }
  assert.equal(seen.size, TOTAL, 'every frame arrived')
  assert.ok([...seen.values()].every((n) => n === 1), 'no frame twice')
  assert.deepEqual(extras, { beforeOversized: 1, afterInvalid: 1 })
  const logs = k.logs()
  assert.ok(logs.some((l) => l.msg === 'oversized frame: closing the connection'), 'oversized frame logged')
  assert.ok(logs.some((l) => l.msg === 'invalid frame skipped'), 'invalid frames logged')
  assert.ok(logs.some((l) => l.msg === 'connection ended mid-frame: partial frame discarded'), 'truncated frame logged')
})

test('SIGTERM reads what a connected client already sent and flushes every bucket', async () => {
  const k = await startKahets({
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out' } } },
      buckets: [{ id: 'slow', streams: ['files'], batch: 1_000_000, batchTimeout: 3_600_000 }],
    },
  })
  // A persistent client (like a PHP-FPM worker) that never closes its connection.
  const client = await KahetsClient.connect(k.socket)
  for (let i = 0; i < 5000; i++) client.send('slow', `m${i}`, null)
  await client.flush()
  const code = await k.stop()
  assert.equal(code, 0, k.output())
  const files = await readFrameFiles(`${k.dir}/out`)
  const payloads = files.flatMap((f) => f.frames.map((fr) => fr.payload.toString()))
  assert.deepEqual(payloads, Array.from({ length: 5000 }, (_, i) => `m${i}`))
  await waitFor(() => client.closed, { what: 'kahets to close the client connection' })
})

test('a bucket flushes once it holds 1 MiB, long before batch or batchTimeout', async () => {
  const k = await startKahets({
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out' } } },
      buckets: [{ id: 'big', streams: ['files'], batch: 1_000_000, batchTimeout: 3_600_000 }],
    },
  })
  const client = await KahetsClient.connect(k.socket)
  const payload = (i: number): Buffer => Buffer.alloc(300 * 1024, i)
  for (let i = 0; i < 4; i++) client.send('big', payload(i), null) // 1.2 MiB
  await client.flush()
  // Three of 300 KiB stay under 1 MiB; the fourth passes it and the bucket flushes.
  const files = await waitFor(async () => {
    const f = await readFrameFiles(`${k.dir}/out`).catch(() => [])
    return f.flatMap((x) => x.frames).length === 4 ? f : null
  }, { timeoutMs: 10_000, what: 'the 1.2 MiB in the bucket to be written' })
  assert.deepEqual(files.flatMap((f) => f.frames.map((fr) => fr.payload)), [0, 1, 2, 3].map(payload))
  client.send('big', payload(4), null) // alone, under 1 MiB: waits for the batch or the stop
  await client.flush()
  await client.close()
  assert.equal(await k.stop(), 0, k.output())
  const after = (await readFrameFiles(`${k.dir}/out`)).flatMap((f) => f.frames)
  assert.equal(after.length, 5)
})
