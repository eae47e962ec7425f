// The Python client (clients/python), run by the system python3: its bytes against the
// TypeScript codec, fire-and-forget against a plain socket, and acknowledged mode against a
// FAKE acking kahets (test/helpers/ack-server.ts). The proof against a real kahets runs the
// same driver (runPythonAck) at a real socket.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { encodeAck, encodeClosing, encodeHello, encodeRefused, encodeSync, encodeSynced } from '../../src/protocol/control.ts'
import { encodeFrame, encodeFrames } from '../../src/protocol/encoder.ts'
import { ackFixture } from '../helpers/ack-server.ts'
import { type AckMessage, PYTHON_CLIENT_DIR, runPythonAck } from '../helpers/ack-clients.ts'
import { assertSameBytes, waitUntil } from '../helpers/sink.ts'

const exec = promisify(execFile)
const { sinks, server, messages } = ackFixture('kahets-python-', 'py')

/** Runs a Python script with the client importable; -X dev shows ResourceWarnings (unclosed sockets). */
async function python (body: string, args: string[] = []): Promise<{ stdout: string, stderr: string }> {
  const script = path.join(sinks.dir, `s-${process.hrtime.bigint()}.py`)
  fs.writeFileSync(script, `import json, sys\nsys.path.insert(0, ${JSON.stringify(PYTHON_CLIENT_DIR)})\nimport kahets\nfrom kahets import wire\n${body}\n`)
  return await exec('python3', ['-X', 'dev', script, ...args], { timeout: 30_000 })
}

const wire = (msgs: AckMessage[]): Buffer[] => msgs.map((m) => encodeFrame(m))

describe('Python client', () => {
  test('encodes data frames, HELLO and SYNC byte for byte as the TypeScript codec, and reads every reply split anywhere', async () => {
    const msgs: AckMessage[] = [
      { bucket: 'a', payload: '' },
      { bucket: 'b'.repeat(255), payload: 'żółć 🎉', key: 'k'.repeat(255) },
      { bucket: 'x.y_z-1', payload: 'v', key: '' },
    ]
    const replies = Buffer.concat([encodeAck(5, 1), encodeSynced(9, 7, 2), encodeRefused(3, 'unknown_bucket'), encodeClosing(2 ** 53 - 1)])
    const { stdout } = await python(`
msgs = json.loads(sys.argv[1])
frames = b''.join(wire.encode_frame(m['bucket'], m['payload'], m.get('key')) for m in msgs)
replies = bytes.fromhex(sys.argv[2])
splits = []
for i in range(len(replies) + 1):
    buf = bytearray(replies[:i])
    got = wire.parse(buf)
    buf += replies[i:]
    got += wire.parse(buf)
    splits.append(got)
assert all(s == splits[0] for s in splits), splits
print(json.dumps({'frames': frames.hex(), 'hello': [wire.hello(1).hex(), wire.hello(2).hex()], 'sync': wire.sync(2**53 - 1).hex(), 'replies': splits[0]}))
`, [JSON.stringify(msgs), replies.toString('hex')])
    const r = JSON.parse(stdout) as { frames: string, hello: string[], sync: string, replies: unknown }
    assertSameBytes(Buffer.from(r.frames, 'hex'), encodeFrames(msgs))
    assert.deepEqual(r.hello, [encodeHello(1).toString('hex'), encodeHello(2).toString('hex')])
    assert.equal(r.sync, encodeSync(2 ** 53 - 1).toString('hex'))
    assert.deepEqual(r.replies, [['ack', 5, 1], ['synced', 9, 7, 2], ['refused', 3, 'unknown_bucket'], ['closing', 2 ** 53 - 1]])
  })

  test('random bytes from a peer: the reader raises only ProtocolError', async () => {
    const { stdout } = await python(`
import os
for i in range(3000):
    raw = os.urandom(1 + i % 40)
    for buf in (bytearray(raw), bytearray(bytes([len(raw) + 1, 0, 0, 0, 0]) + raw)):
        try:
            wire.parse(buf)
        except wire.ProtocolError:
            pass
print('ok')
`)
    assert.equal(stdout, 'ok\n')
  })

  test('invalid input raises ValueError and sends nothing', async () => {
    const { stdout } = await python(`
bad = []
for args in [('', 'x'), ('.', 'x'), ('a/b', 'x'), ('é', 'x'), ('b' * 256, 'x'), ('ok', 'x', 'k' * 256), ('ok', 'x' * 100)]:
    try:
        wire.encode_frame(*args, max_frame_bytes=100)
    except ValueError as e:
        bad.append(str(e).split(' ')[0])
print(json.dumps(bad))
`)
    assert.deepEqual(JSON.parse(stdout), ['invalid', 'invalid', 'invalid', 'invalid', 'invalid', 'key', 'frame'])
  })

  test('fire-and-forget against a plain socket: no HELLO, the same bytes, one connection', async () => {
    const sink = await sinks.start()
    const msgs = messages(50)
    const { stderr } = await python(`
with kahets.Client(sys.argv[1]) as k:
    for m in json.loads(sys.argv[2]):
        assert k.send(m['bucket'], m['payload'], m.get('key'))
    assert k.flush()
`, [sink.path, JSON.stringify(msgs)])
    assert.equal(stderr, '')
    const expected = encodeFrames(msgs)
    await waitUntil(() => sink.total >= expected.length, 'all bytes')
    assertSameBytes(sink.received(), expected)
    assert.equal(sink.conns.length, 1)
  })

  test('fire-and-forget: kahets down returns False, logged once per process for many Clients; a broken pipe reconnects once', async () => {
    const { stdout, stderr } = await python(`
r = []
for i in range(3):
    k = kahets.Client(sys.argv[1], timeout=0.2)
    r.append(k.send('orders', 'x'))
    k.close()
print(json.dumps(r))
`, [path.join(sinks.dir, 'missing.sock')])
    assert.deepEqual(JSON.parse(stdout), [false, false, false])
    assert.equal(stderr.trim().split('\n').length, 1, stderr)
    assert.match(stderr, /kahets client: cannot connect to .*missing\.sock/)

    const frame1 = encodeFrame({ bucket: 'py.reconnect', payload: 'one' })
    const sink = await sinks.start({ destroyFirstAfterBytes: frame1.length })
    const script = path.join(sinks.dir, 'reconnect.py')
    fs.writeFileSync(script, `import sys\nsys.path.insert(0, ${JSON.stringify(PYTHON_CLIENT_DIR)})\nimport kahets\nk = kahets.Client(sys.argv[1])\nprint(k.send('py.reconnect', 'one'), flush=True)\nsys.stdin.readline()\nprint(k.send('py.reconnect', 'two'), flush=True)\nk.close()\n`)
    const child = spawn('python3', [script, sink.path], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d })
    await waitUntil(() => out.includes('True') && sink.conns[0]?.closed === true, 'frame 1 and the sink closing the connection')
    child.stdin.end('go\n')
    await new Promise((resolve) => child.on('close', resolve))
    assert.equal(out, 'True\nTrue\n', err)
    const frame2 = encodeFrame({ bucket: 'py.reconnect', payload: 'two' })
    await waitUntil(() => sink.total >= frame1.length + frame2.length, 'frame 2')
    assertSameBytes(Buffer.concat(sink.conns[1]!.chunks), frame2, 'connection 2')
    assert.match(err, /reconnecting to .* after a failed write/)
  })

  test('acknowledged mode: HELLO at its level first, frames unchanged, flush() reports settled and refused', async () => {
    const s = await server({ refuse: (b) => b === 'nobody' })
    const msgs = messages(100, (i) => (i % 10 === 0 ? 'nobody' : 'orders'))
    const r = await runPythonAck(sinks.dir, s.path, { ack: 'durable', messages: msgs })
    assert.deepEqual({ ok: r.ok, settled: r.settled, refused: r.refused }, { ok: true, settled: 100, refused: 10 })
    assert.equal(r.log, '')
    assert.deepEqual(s.conns[0]!.control[0], { type: 'hello', version: 1, level: 2 })
    assert.deepEqual(s.conns[0]!.frames, wire(msgs))

    const a = await server()
    const { stdout } = await python(`
with kahets.Client(sys.argv[1], ack='accepted') as k:
    k.send('orders', b'bytes payload', b'bytes key')
    print(json.dumps([k.flush(), k.settled, k.last_refused]))
`, [a.path])
    assert.deepEqual(JSON.parse(stdout), [true, 1, 0])
    assert.deepEqual(a.conns[0]!.control[0], { type: 'hello', version: 1, level: 1 })
  })

  test('acknowledged mode: CLOSING then reconnect resends exactly the frames past read', async () => {
    const s = await server({ closingAfter: 30 })
    const msgs = messages(100)
    const r = await runPythonAck(sinks.dir, s.path, { ack: 'durable', messages: msgs })
    assert.deepEqual({ ok: r.ok, settled: r.settled, refused: r.refused }, { ok: true, settled: 100, refused: 0 })
    assert.equal(s.conns.length, 2)
    const expected = wire(msgs)
    assert.deepEqual(s.conns[0]!.frames, expected.slice(0, 30))
    assert.deepEqual(s.conns[1]!.control[0], { type: 'hello', version: 1, level: 2 })
    assert.deepEqual(s.conns[1]!.frames, expected.slice(30), 'connection 2 carries exactly frames 30..99')
  })

  test('acknowledged mode: a broken pipe resends exactly the frames past settled', async () => {
    const s = await server({ breakAfter: { read: 40, settled: 25 } })
    const msgs = messages(100)
    const r = await runPythonAck(sinks.dir, s.path, { ack: 'durable', messages: msgs })
    assert.deepEqual({ ok: r.ok, settled: r.settled, refused: r.refused }, { ok: true, settled: 100, refused: 0 })
    const expected = wire(msgs)
    assert.deepEqual(s.conns[0]!.frames, expected.slice(0, 40))
    assert.deepEqual(s.conns[1]!.frames, expected.slice(25), 'frames 25..99: past the last settled count')
  })

  test('acknowledged mode: a kahets that never acknowledges, and the unsettled bound', async () => {
    const s = await server({ silent: true })
    const { stdout, stderr } = await python(`
k = kahets.Client(sys.argv[1], ack='durable', timeout=0.2, max_unsettled_frames=5)
r = [k.send('orders', str(i)) for i in range(6)]
r.append(k.flush(0.1))
r.append(k.unsettled)
r.append(k.close())
print(json.dumps(r))
`, [s.path])
    assert.deepEqual(JSON.parse(stdout), [true, true, true, true, true, false, false, 5, false])
    assert.match(stderr, /5 frames \(\d+ bytes\) sent to .* are not settled yet/)
    assert.match(stderr, /5 frame\(s\) sent to .* were not confirmed by kahets within 0\.200 s/)
    assert.doesNotMatch(stderr, /ResourceWarning/)
  })

  test('acknowledged mode: a script that never calls close() is flushed at exit, and what is unconfirmed is logged', async () => {
    const s = await server({ silent: true })
    const { stderr } = await python(`
k = kahets.Client(sys.argv[1], ack='accepted', timeout=0.1)
k.send('orders', 'never settled')
`, [s.path])
    assert.match(stderr, /1 frame\(s\) sent to .* were not confirmed by kahets within 0\.100 s/)
    assert.equal(s.conns[0]!.control.filter((c) => c.type === 'sync').length, 1, 'the exit flush sent SYNC')
  })
})
