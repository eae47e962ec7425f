// The Node client in acknowledged mode against a FAKE acking kahets (test/helpers/ack-server.ts):
// the client's half of docs/protocol.md. The proof against a real kahets runs the same
// driver (runNodeAck) at a real socket.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { AckClient, connect, KahetsClient } from '../../clients/node/index.ts'
import { encodeFrame, encodeFrames } from '../../src/protocol/encoder.ts'
import { ackFixture } from '../helpers/ack-server.ts'
import { type AckMessage, runNodeAck } from '../helpers/ack-clients.ts'
import { assertSameBytes, waitUntil } from '../helpers/sink.ts'

const run = promisify(execFile)
const { sinks, server, messages } = ackFixture('kahets-node-ack-', 'message')

const wire = (msgs: AckMessage[]): Buffer[] => msgs.map((m) => encodeFrame(m))

describe('Node client, acknowledged mode', () => {
  test('says HELLO at its level first, sends frames unchanged, flush() reports settled and refused', async () => {
    const s = await server({ refuse: (b) => b === 'nobody' })
    const msgs = messages(200, (i) => (i % 10 === 0 ? 'nobody' : 'orders'))
    const r = await runNodeAck(s.path, { ack: 'durable', messages: msgs })
    assert.deepEqual({ ok: r.ok, settled: r.settled, refused: r.refused }, { ok: true, settled: 200, refused: 20 })
    assert.equal(s.conns.length, 1)
    assert.deepEqual(s.conns[0]!.control[0], { type: 'hello', version: 1, level: 2 })
    assertSameBytes(Buffer.concat(s.conns[0]!.frames), encodeFrames(msgs))

    const a = await server()
    const client = await connect(a.path, { ack: 'accepted' })
    assert.ok(client instanceof AckClient)
    client.send('orders', 'one')
    assert.deepEqual(await client.flush(5000), { settled: 1, refused: 0 })
    await client.close()
    assert.deepEqual(a.conns[0]!.control[0], { type: 'hello', version: 1, level: 1 })
  })

  test('CLOSING then reconnect resends exactly the frames past read', async () => {
    const s = await server({ closingAfter: 30 })
    const msgs = messages(100)
    const client = await connect(s.path, { ack: 'durable' })
    for (const m of msgs) client.send(m.bucket, m.payload, m.key) // one tick: one write of all 100
    assert.deepEqual(await client.flush(10_000), { settled: 100, refused: 0 })
    await client.close()
    assert.equal(s.conns.length, 2)
    const expected = wire(msgs)
    assert.deepEqual(s.conns[0]!.frames, expected.slice(0, 30), 'connection 1 read 30 frames, then CLOSING 30')
    assert.deepEqual(s.conns[1]!.control[0], { type: 'hello', version: 1, level: 2 }, 'connection 2 starts with HELLO')
    assert.deepEqual(s.conns[1]!.frames, expected.slice(30), 'connection 2 carries exactly frames 30..99')
  })

  test('a broken connection resends exactly the frames past settled', async () => {
    const s = await server({ breakAfter: { read: 40, settled: 25 } })
    const msgs = messages(100)
    const lines: string[] = []
    const client = await connect(s.path, { ack: 'durable', log: (m) => lines.push(m) })
    for (const m of msgs) client.send(m.bucket, m.payload, m.key)
    assert.deepEqual(await client.flush(10_000), { settled: 100, refused: 0 })
    await client.close()
    const expected = wire(msgs)
    assert.deepEqual(s.conns[0]!.frames, expected.slice(0, 40))
    assert.deepEqual(s.conns[1]!.frames, expected.slice(25), 'frames 25..99: past the last settled count')
    assert.match(lines.join('\n'), /reconnected to .*; sending 75 unsettled frames again/)
  })

  test('sendRaw() carries a frame kahets will refuse, counted as one data frame', async () => {
    const s = await server({ refuse: (b) => !/^[A-Za-z0-9._-]+$/.test(b) })
    const client = await connect(s.path, { ack: 'accepted' })
    const bad = Buffer.from([0x05, 0, 0, 0, 0x03, 0x61, 0x2f, 0x62, 0x00]) // bucket "a/b", no key
    client.send('orders', 'ok')
    client.sendRaw(bad)
    client.send('orders', 'ok too')
    assert.deepEqual(await client.flush(5000), { settled: 3, refused: 1 })
    assert.deepEqual(s.conns[0]!.frames[1], bad)
    assert.deepEqual(client.lastRefusal, { index: 1, reason: 'unknown_bucket' }, 'the REFUSED detail, by index since connect()')
    assert.throws(() => client.sendRaw(Buffer.from([0x02, 0, 0, 0, 0x00, 0x03])), RangeError, 'a control frame is not a data frame')
    await client.close()
  })

  test('a kahets that never acknowledges: flush() rejects after its timeout, frames are kept', async () => {
    const s = await server({ silent: true })
    const client = await connect(s.path, { ack: 'accepted' })
    client.send('orders', 'a')
    client.send('orders', 'b')
    await assert.rejects(client.flush(200), /did not settle 2 of 2 frames within 200 ms/)
    assert.equal(client.unsettled, 2)
    await assert.rejects(client.close(50))
    assert.equal(client.closed, true)
  })

  test('send() returns false at the unsettled bound, drain() waits for ACKs', async () => {
    const s = await server()
    const client = await connect(s.path, { ack: 'accepted', maxUnsettledFrames: 10 })
    let falseAt = -1
    for (let i = 0; i < 10; i++) if (!client.send('orders', `m${i}`) && falseAt < 0) falseAt = i
    assert.equal(falseAt, 9, 'the 10th unsettled frame reaches the bound')
    await client.drain()
    assert.ok(client.unsettled < 10)
    await client.close(5000)
  })

  test('fire-and-forget (no ack) against a plain socket: no HELLO, the same bytes as before', async () => {
    const sink = await sinks.start()
    const client = await connect(sink.path)
    assert.ok(client instanceof KahetsClient)
    const msgs = messages(50)
    for (const m of msgs) client.send(m.bucket, m.payload, m.key)
    await client.close()
    const expected = encodeFrames(msgs)
    await waitUntil(() => sink.total >= expected.length, 'all bytes')
    assertSameBytes(sink.received(), expected)
    assert.notEqual(sink.received()[4], 0, 'the first frame is a data frame, not a control frame')

    const s = await server()
    const ff = await connect(s.path, { ack: null })
    ff.send('orders', 'x')
    await ff.close()
    await waitUntil(() => s.conns[0]?.closed === true, 'the connection to end')
    assert.deepEqual(s.conns[0]!.control, [])
    assert.equal(s.conns[0]!.bytesOut, 0)
  })

  test('the built package runs from plain JavaScript on Node without tsx', async () => {
    const out = path.join(sinks.dir, 'build')
    await run('npx', ['tsc', '-p', 'clients/node', '--outDir', out])
    const s = await server()
    const script = path.join(sinks.dir, 'plain.mjs')
    fs.writeFileSync(script, `
import { connect } from ${JSON.stringify(path.join(out, 'clients/node/index.js'))}
const client = await connect(process.argv[2], { ack: 'durable' })
for (let i = 0; i < 10; i++) client.send('orders', 'plain ' + i)
console.log(JSON.stringify(await client.close(5000)))
`)
    const { stdout } = await run(process.execPath, [script, s.path])
    assert.deepEqual(JSON.parse(stdout), { settled: 10, refused: 0 })
    assert.ok(fs.existsSync(path.join(out, 'clients/node/index.d.ts')), 'type declarations are built')
  })
})
