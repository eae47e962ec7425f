// Acknowledged mode (docs/protocol.md) against the real kahets with file streams: the counts
// a client is told match what is on disk and what /metrics counts, and a client that never
// says HELLO never receives a byte.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createConnection } from 'node:net'
import { AckClient } from '../../clients/node/index.ts'
import { ControlReader, encodeHello, encodeSync, type ControlFrame } from '../../src/protocol/control.ts'
import { startKahets, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { readFrameFiles as readFiles } from '../helpers/frames.ts'
import { scrape, sample, assertIdentity } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

async function readFrameFiles (dir: string): Promise<Array<{ payload: Buffer }>> {
  return (await readFiles(dir)).flatMap((f) => f.frames)
}

/** A data frame built byte by byte, so that its bucket may be one kahets refuses. */
function encodeFrame (bucket: string, key: string | null, payload: Buffer): Buffer {
  const b = Buffer.from(bucket, 'latin1')
  const k = key === null ? Buffer.alloc(0) : Buffer.from(key)
  const head = Buffer.alloc(4)
  head.writeUInt32LE(2 + b.length + k.length + payload.length)
  return Buffer.concat([head, Buffer.from([b.length]), b, Buffer.from([k.length]), k, payload])
}

function filesConfig (extra: object = {}): object {
  return {
    streamsConfigs: {
      files: { type: 'file', settings: { path: '{dir}/out', fsync: true } },
      copy: { type: 'file', slice: 0.5, settings: { path: '{dir}/copy' } },
    },
    buckets: [{ id: 'orders', streams: ['files', 'copy'], batch: 100, batchTimeout: 20 }],
    ...extra,
  }
}

/** A raw connection that records every byte kahets writes to it. */
function rawConnection (path: string): Promise<{ write: (b: Buffer) => void, received: () => Buffer, frames: () => ControlFrame[], end: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let closed = false
    const s = createConnection(path, () => {
      resolve({
        write: (b) => { s.write(b) },
        received: () => Buffer.concat(chunks),
        frames: () => { const r = new ControlReader(); return r.push(Buffer.concat(chunks)) },
        end: () => new Promise((done) => {
          if (closed) { done(); return }
          s.once('close', () => done())
          s.end()
        }),
      })
    })
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('error', reject)
    s.on('close', () => { closed = true })
  })
}

for (const ack of ['accepted', 'durable'] as const) {
  test(`ack ${ack}: valid frames, an unknown bucket and invalid frames settle in order; counts match the files and /metrics`, async () => {
    const k = await startKahetsWithMetrics({ buckets: filesConfig() })
    const client = await AckClient.connect(k.socket, { ack })
    for (let i = 0; i < 1000; i++) {
      if (i % 100 === 7) client.send('nobody-serves-this', `x${i}`)
      else if (i % 100 === 8) client.sendRaw(encodeFrame('bad/bucket', null, Buffer.from(`y${i}`)))
      else client.send('orders', `m${i}`, `k${i % 13}`)
    }
    const s = await client.flush(10_000)
    assert.deepEqual(s, { settled: 1000, refused: 20 })
    await client.close()

    const metrics = await scrape(k.metrics)
    assert.equal(sample(metrics, 'kahets_dropped_total', { reason: 'unknown_bucket' }), 10)
    assert.equal(sample(metrics, 'kahets_invalid_frames_total', { reason: 'bad_bucket' }), 10)
    if (ack === 'durable') {
      // Durable: the fsynced file stream has every accepted frame by the time flush() resolved.
      const out = await readFrameFiles(`${k.dir}/out`)
      assert.equal(out.length, 980)
    }
    assert.equal(await k.stop(), 0)
    const out = await readFrameFiles(`${k.dir}/out`)
    assert.deepEqual(out.map((f) => f.payload.toString()), Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 100 !== 7 && i % 100 !== 8).map((i) => `m${i}`))
    const final = await scrape(k.metrics).catch(() => null)
    assert.equal(final, null) // kahets is gone; the identity was checked while it ran
    assertIdentity(metrics, 'orders', 'files')
    assertIdentity(metrics, 'orders', 'copy')
  })
}

test('a client that never says HELLO receives no byte, whatever it sends', async () => {
  const k = await startKahets({ buckets: filesConfig() })
  const c = await rawConnection(k.socket)
  c.write(encodeFrame('orders', null, Buffer.from('a')))
  c.write(encodeSync(1)) // a SYNC without HELLO is invalid, never answered
  c.write(encodeHello(2)) // a HELLO that is not the first frame: invalid
  c.write(Buffer.from([3, 0, 0, 0, 0, 9, 9])) // unknown opcode
  c.write(encodeFrame('bad/bucket', null, Buffer.from('b')))
  c.write(encodeFrame('orders', null, Buffer.from('c')))
  await waitFor(() => k.output().includes('"reason":"hello"'), { timeoutMs: 10_000, what: 'the late HELLO to be counted' })
  assert.equal(await k.stop(), 0)
  await c.end()
  assert.equal(c.received().length, 0)
  const out = await readFrameFiles(`${k.dir}/out`)
  assert.deepEqual(out.map((f) => f.payload.toString()), ['a', 'c'])
})

test('HELLO with an unknown version or level: CLOSING 0, the connection closed, nothing after it read', async () => {
  const k = await startKahets({ buckets: filesConfig() })
  for (const hello of [encodeHello(2, 9), encodeHello(7 as 1)]) {
    const c = await rawConnection(k.socket)
    c.write(Buffer.concat([hello, encodeFrame('orders', null, Buffer.from('never'))]))
    await waitFor(() => c.frames().length > 0, { timeoutMs: 10_000, what: 'CLOSING' })
    assert.deepEqual(c.frames(), [{ type: 'closing', read: 0 }])
    await c.end()
  }
  assert.equal(await k.stop(), 0)
  assert.deepEqual(await readFrameFiles(`${k.dir}/out`), [])
  assert.match(k.output(), /"reason":"hello"/)
})

test('SYNC right after HELLO is answered at once; ACKs and SYNCED carry cumulative counts', async () => {
  const k = await startKahets({ buckets: filesConfig() })
  const c = await rawConnection(k.socket)
  c.write(Buffer.concat([encodeHello(2), encodeSync(41)]))
  await waitFor(() => c.frames().length > 0, { timeoutMs: 10_000, what: 'SYNCED' })
  assert.deepEqual(c.frames()[0], { type: 'synced', token: 41, settled: 0, refused: 0 })
  c.write(Buffer.concat([encodeFrame('orders', null, Buffer.from('1')), encodeFrame('nope', null, Buffer.from('2')), encodeSync(42)]))
  await waitFor(() => c.frames().some((f) => f.type === 'synced' && f.token === 42), { timeoutMs: 10_000, what: 'SYNCED 42' })
  const synced = c.frames().find((f) => f.type === 'synced' && f.token === 42)
  assert.deepEqual(synced, { type: 'synced', token: 42, settled: 2, refused: 1 })
  assert.equal(await k.stop(), 0)
  // At shutdown the connection is told how many data frames kahets read.
  await waitFor(() => c.frames().some((f) => f.type === 'closing'), { timeoutMs: 10_000, what: 'CLOSING' })
  assert.deepEqual(c.frames().at(-1), { type: 'closing', read: 2 })
  for (const f of c.frames()) if (f.type === 'ack') assert.ok(f.refused <= f.settled)
  await c.end()
})
