// The Node client against a real UNIX-socket sink server: what arrives must be exactly
// encodeFrames() of what was sent, whatever the batching and backpressure did.
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { encodeFrames, type OutgoingMessage } from '../../src/protocol/encoder.ts'
import { assertSameBytes, type Sink, SinkDir, waitUntil as waitFor } from '../helpers/sink.ts'

/** The edge cases of docs/protocol.md#data-frames a client must carry unchanged. */
function edgeCases (): OutgoingMessage[] {
  const binary = Buffer.from([0, 10, 13, 0, 255, 10, 0, 0x80, 0x7f, 10])
  const longKey = Buffer.alloc(255)
  for (let i = 0; i < 255; i++) longKey[i] = (i * 7) % 256
  const big = Buffer.alloc(100 * 1024)
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) % 256
  return [
    { bucket: 'orders', payload: '' },
    { bucket: 'orders', payload: Buffer.alloc(0), key: 'k-empty-payload' },
    { bucket: 'bin.ary_-1', payload: binary, key: Buffer.from([0, 10, 0]) },
    { bucket: 'orders', payload: 'no key', key: null },
    { bucket: 'orders', payload: 'undefined key', key: undefined },
    { bucket: 'orders', payload: 'long key', key: longKey },
    { bucket: 'orders', payload: 'long string key', key: 'k'.repeat(255) },
    { bucket: 'b'.repeat(255), payload: 'longest bucket name', key: 'x' },
    { bucket: 'big', payload: big, key: 'big' },
    { bucket: 'utf8', payload: 'żółć — 日本語 — 🎉\n', key: 'ключ' },
  ]
}

const sinks = new SinkDir('kahets-node-client-')
const tmp = sinks.dir
const clients: KahetsClient[] = []

async function connect (sink: Sink, opts?: Parameters<typeof KahetsClient.connect>[1]): Promise<KahetsClient> {
  const client = await KahetsClient.connect(sink.path, opts)
  clients.push(client)
  return client
}

after(async () => {
  for (const c of clients) await c.close().catch(() => {})
  await sinks.cleanup()
})

describe('KahetsClient', () => {
  test('edge-case frames arrive byte-identical to encodeFrames()', async () => {
    const sink = await sinks.start()
    const client = await connect(sink)
    const msgs = edgeCases()
    for (const m of msgs) client.send(m.bucket, m.payload, m.key)
    await client.close()
    assert.equal(client.closed, true)
    const expected = encodeFrames(msgs)
    await waitFor(() => sink.total >= expected.length && sink.conns[0]!.closed, 'all bytes and the end of the connection')
    assertSameBytes(sink.received(), expected)
    assert.equal(sink.conns.length, 1)
  })

  test('many frames over many ticks, respecting backpressure, arrive in order', async () => {
    const sink = await sinks.start()
    const client = await connect(sink)
    const msgs: OutgoingMessage[] = []
    for (let i = 0; i < 20_000; i++) {
      const m: OutgoingMessage = { bucket: i % 3 === 0 ? 'a' : 'bucket.b', payload: Buffer.alloc(i % 97, i % 256), key: i % 5 === 0 ? null : `key-${i}` }
      msgs.push(m)
      if (!client.send(m.bucket, m.payload, m.key)) await client.drain()
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve)) // let some ticks' batches go out
    }
    await client.flush()
    assert.equal(client.bufferedBytes, 0)
    const expected = encodeFrames(msgs)
    await waitFor(() => sink.total >= expected.length, `${expected.length} bytes`)
    await client.close()
    assertSameBytes(sink.received(), expected)
  })

  test('send() reports backpressure while kahets does not read, and drain() waits for it', async () => {
    const sink = await sinks.start({ paused: true })
    const client = await connect(sink, { highWaterMark: 64 * 1024 })
    const chunk = Buffer.alloc(16 * 1024, 0xab)
    const total = 512 // 8 MiB: far more than the kernel's socket buffers can hold
    let sentFrames = 0
    let falseReturns = 0
    let waitingForDrain = false
    const producer = (async () => {
      for (let i = 0; i < total; i++) {
        sentFrames++
        if (!client.send('bp', chunk, `k${i}`)) {
          falseReturns++
          waitingForDrain = true
          await client.drain()
          waitingForDrain = false
        }
      }
      await client.flush()
    })()
    let producerDone = false
    void producer.then(() => { producerDone = true }, () => {})
    await waitFor(() => waitingForDrain && sink.conns.length === 1, 'the producer to wait in drain()')
    // Nobody reads, so the kernel buffer stays full and drain() cannot resolve: give the
    // event loop a few hundred turns (not a timed sleep) and check the producer is still stuck.
    for (let i = 0; i < 200; i++) await new Promise((resolve) => setImmediate(resolve))
    assert.equal(producerDone, false)
    assert.equal(waitingForDrain, true)
    assert.ok(sentFrames < total, `producer stopped after ${sentFrames} of ${total} frames`)
    assert.ok(client.bufferedBytes > 0)
    assert.ok(falseReturns > 0)
    sink.resume()
    await producer
    const expected = encodeFrames(Array.from({ length: total }, (_, i) => ({ bucket: 'bp', payload: chunk, key: `k${i}` })))
    await waitFor(() => sink.total >= expected.length, `${expected.length} bytes`)
    await client.close()
    assertSameBytes(sink.received(), expected)
  })

  test('invalid input throws RangeError before anything is sent', async () => {
    const sink = await sinks.start()
    const client = await connect(sink, { maxFrameBytes: 100 })
    const bad: Array<[string, Buffer | string, (Buffer | string | null)?]> = [
      ['', 'x'], ['.', 'x'], ['..', 'x'], ['a/b', 'x'], ['a b', 'x'], ['é', 'x'], ['a\u0000b', 'x'],
      ['\u012e', 'x'], // latin1 truncation of U+012E would give "."
      ['b'.repeat(256), 'x'],
      ['ok', 'x', 'k'.repeat(256)],
      ['ok', 'x', Buffer.alloc(256)],
      ['ok', 'x', 'é'.repeat(128)], // 128 characters, 256 bytes
      ['ok', 'x'.repeat(100 - 2 - 2 + 1)], // N = 101 > maxFrameBytes
    ]
    for (const [bucket, payload, key] of bad) {
      assert.throws(() => client.send(bucket, payload, key), RangeError, `send(${JSON.stringify(bucket)}, …) should throw`)
    }
    const ok: OutgoingMessage[] = [
      { bucket: 'ok', payload: 'x'.repeat(100 - 2 - 2) }, // N = 100: the largest allowed
      { bucket: '...', payload: 'dots are fine beyond ".."' },
      { bucket: '.a', payload: '' },
    ]
    for (const m of ok) client.send(m.bucket, m.payload, m.key)
    await client.close()
    const expected = encodeFrames(ok)
    await waitFor(() => sink.conns[0]?.closed === true, 'the connection to close')
    assertSameBytes(sink.received(), expected)
    await assert.rejects(KahetsClient.connect(sink.path, { maxFrameBytes: 0 }), RangeError)
  })

  test('writeRaw() bytes go out as they are, in order with frames', async () => {
    const sink = await sinks.start()
    const client = await connect(sink)
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0x7f, 0, 1, 2, 10, 0])
    client.send('a', 'before')
    client.writeRaw(garbage)
    client.send('a', 'after', 'k')
    await client.close()
    const expected = Buffer.concat([encodeFrames([{ bucket: 'a', payload: 'before' }]), garbage, encodeFrames([{ bucket: 'a', payload: 'after', key: 'k' }])])
    await waitFor(() => sink.conns[0]?.closed === true, 'the connection to close')
    assertSameBytes(sink.received(), expected)
  })

  test('close() is idempotent and send() after it throws', async () => {
    const sink = await sinks.start()
    const client = await connect(sink)
    client.send('a', 'x')
    const p1 = client.close()
    const p2 = client.close()
    assert.equal(p1, p2)
    assert.throws(() => client.send('a', 'y'), /closed/)
    await p1
    assert.equal(client.closed, true)
    await client.flush() // nothing left: resolves
    await waitFor(() => sink.conns[0]?.closed === true, 'the connection to close')
    assertSameBytes(sink.received(), encodeFrames([{ bucket: 'a', payload: 'x' }]))
  })

  test('connect() rejects when no socket is there', async () => {
    await assert.rejects(KahetsClient.connect(path.join(tmp, 'missing.sock')), (err: NodeJS.ErrnoException) => err.code === 'ENOENT')
    const notASocket = path.join(tmp, 'plain-file')
    fs.writeFileSync(notASocket, '')
    await assert.rejects(KahetsClient.connect(notASocket), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED')
  })

  test('kahets closing the connection rejects flush()/close() and never raises an unhandled error', async () => {
    const first = encodeFrames([{ bucket: 'a', payload: 'first' }])
    const sink = await sinks.start({ destroyFirstAfterBytes: first.length })
    const client = await connect(sink)
    client.send('a', 'first')
    await client.flush()
    await waitFor(() => sink.conns[0]?.closed === true, 'the sink to drop the connection')
    // The client learns of it from the end of its read side (or, failing that, from EPIPE
    // on its next write); either way the error is reported through the API, not an event.
    await waitFor(() => client.error !== null, 'the client to notice')
    assert.match(client.error!.message, /closed the connection|EPIPE|ECONNRESET/)
    assert.throws(() => client.send('a', 'second'), /kahets connection failed/)
    await assert.rejects(client.flush())
    await assert.rejects(client.drain())
    await assert.rejects(client.close())
    await waitFor(() => client.closed, 'the socket to close')
    assertSameBytes(sink.received(), first)
  })

  test('a write failure rejects a pending flush()', async () => {
    // The sink drops the connection after the first bytes while a large batch is still being
    // written: the write fails (EPIPE/ECONNRESET) or the read side ends; flush() must reject.
    const sink = await sinks.start({ destroyFirstAfterBytes: 1 })
    const client = await connect(sink, { highWaterMark: 1024 })
    const big = Buffer.alloc(512 * 1024, 1)
    for (let i = 0; i < 8; i++) client.send('a', big)
    await assert.rejects(client.flush())
    assert.notEqual(client.error, null)
    await assert.rejects(client.close())
  })
})
