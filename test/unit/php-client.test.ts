// The PHP client (clients/php/Kahets.php) run by the real `php` CLI against a UNIX-socket
// sink server: what arrives must be exactly encodeFrames() of what the script sent.
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeFrames, type OutgoingMessage } from '../../src/protocol/encoder.ts'
import { assertSameBytes, SinkDir, waitUntil } from '../helpers/sink.ts'

const CLIENT_PHP = fileURLToPath(new URL('../../clients/php/Kahets.php', import.meta.url))
const EXAMPLE_PHP = fileURLToPath(new URL('../../clients/php/example.php', import.meta.url))

/** The PHP CLI starts slower than Node: 15 s deadlines rather than the helper's 10 s. */
const waitFor = (cond: () => boolean, what: string): Promise<void> => waitUntil(cond, what, 15_000)

/** Anything PHP itself printed (as opposed to the client's error_log() lines) is a bug. */
function assertNoPhpDiagnostics (stderr: string, stdout: string): void {
  for (const out of [stderr, stdout]) {
    assert.doesNotMatch(out, /(PHP )?(Warning|Notice|Deprecated|Fatal error|Parse error|Uncaught)/)
  }
}

interface PhpRun {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exit: Promise<number | null>
}

const children = new Set<ChildProcess>()

/** Runs the PHP CLI with every diagnostic enabled and shown on stderr. */
function php (args: string[]): PhpRun {
  const child = spawn('php', ['-n', '-d', 'error_reporting=-1', '-d', 'display_errors=stderr', '-d', 'log_errors=0', ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  children.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const exit = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => {
      children.delete(child)
      resolve(code)
    })
  })
  return { child, stdout: () => stdout, stderr: () => stderr, exit }
}

/** Runs a PHP script to completion (with a deadline) and returns its output. */
async function runPhp (script: string, args: string[], ms = 30_000): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const run = php([script, ...args])
  run.child.stdin!.end()
  const timer = setTimeout(() => run.child.kill('SIGKILL'), ms)
  try {
    const code = await run.exit
    return { code, stdout: run.stdout(), stderr: run.stderr() }
  } finally {
    clearTimeout(timer)
  }
}

const sinks = new SinkDir('kahets-php-client-')
const tmp = sinks.dir

function writeScript (name: string, body: string): string {
  const file = path.join(tmp, name)
  fs.writeFileSync(file, `<?php\ndeclare(strict_types=1);\nrequire ${JSON.stringify(CLIENT_PHP)};\n${body}\n`)
  return file
}

after(async () => {
  for (const c of children) c.kill('SIGKILL')
  await sinks.cleanup()
})

describe('PHP client', () => {
  test('a script that makes a Client per message does not keep them all alive', async () => {
    const sink = await sinks.start()
    const script = writeScript('many-clients.php', `
$ok = 0;
$before = 0;
for ($i = 0; $i < 20000; $i++) {
    if ($i === 1000) { gc_collect_cycles(); $before = memory_get_usage(); }
    $client = new Kahets\\Client($argv[1]);
    if ($client->send('php.many', "m$i")) {
        $ok++;
    }
}
gc_collect_cycles();
echo json_encode(['ok' => $ok, 'grewBy' => memory_get_usage() - $before]), "\\n";
`)
    const { code, stdout, stderr } = await runPhp(script, [sink.path])
    assert.equal(code, 0, stderr)
    const result = JSON.parse(stdout) as { ok: number, grewBy: number }
    assert.equal(result.ok, 20000)
    // 19,000 Clients kept alive would be several MB; a few KB of noise is allowed.
    assert.ok(result.grewBy < 256 * 1024, `memory grew by ${result.grewBy} bytes over 19,000 Clients`)
  })

  test('10,000 keyed messages arrive byte-identical', async () => {
    const sink = await sinks.start()
    const script = writeScript('bulk.php', `
$client = new Kahets\\Client($argv[1]);
$ok = 0;
for ($i = 0; $i < 10000; $i++) {
    $payload = "payload-$i-" . str_repeat(chr($i % 256), $i % 50);
    if ($client->send('php.bulk', $payload, "key-$i")) {
        $ok++;
    }
}
echo json_encode(['ok' => $ok]), "\\n";
`)
    const { code, stdout, stderr } = await runPhp(script, [sink.path])
    assert.equal(code, 0, stderr)
    assert.deepEqual(JSON.parse(stdout), { ok: 10000 })
    assert.equal(stderr, '')
    const msgs: OutgoingMessage[] = Array.from({ length: 10000 }, (_, i) => ({
      bucket: 'php.bulk',
      payload: Buffer.concat([Buffer.from(`payload-${i}-`), Buffer.alloc(i % 50, i % 256)]),
      key: `key-${i}`,
    }))
    const expected = encodeFrames(msgs)
    await waitFor(() => sink.total >= expected.length, `${expected.length} bytes`)
    assertSameBytes(sink.received(), expected)
    assert.equal(sink.conns.length, 1, 'one persistent connection for the whole script')
  })

  test('edge cases via send() and sendMany(); persistent clients share one connection', async () => {
    const sink = await sinks.start()
    const longKey = Buffer.alloc(255)
    for (let i = 0; i < 255; i++) longKey[i] = (i * 7) % 256
    const big = Buffer.alloc(100 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) % 256
    const cases: OutgoingMessage[] = [
      { bucket: 'orders', payload: Buffer.alloc(0) },
      { bucket: 'orders', payload: Buffer.alloc(0), key: Buffer.from('k-empty-payload') },
      { bucket: 'bin.ary_-1', payload: Buffer.from([0, 10, 13, 0, 255, 10, 0, 0x80, 10]), key: Buffer.from([0, 10, 0]) },
      { bucket: 'orders', payload: Buffer.from('no key'), key: null },
      { bucket: 'orders', payload: Buffer.from('long key'), key: longKey },
      { bucket: 'b'.repeat(255), payload: Buffer.from('longest bucket name'), key: Buffer.from('x') },
      { bucket: 'big', payload: big, key: Buffer.from('big') },
      { bucket: 'utf8', payload: Buffer.from('żółć — 日本語 — 🎉\n'), key: Buffer.from('ключ') },
    ]
    const casesFile = path.join(tmp, 'cases.json')
    fs.writeFileSync(casesFile, JSON.stringify(cases.map((m) => ({
      bucket: m.bucket,
      payload: (m.payload as Buffer).toString('base64'),
      key: m.key == null ? null : (m.key as Buffer).toString('base64'),
    }))))
    const script = writeScript('edge.php', `
$cases = json_decode(file_get_contents($argv[2]), true, 512, JSON_THROW_ON_ERROR);
$messages = [];
foreach ($cases as $c) {
    $messages[] = [$c['bucket'], base64_decode($c['payload'], true), $c['key'] === null ? null : base64_decode($c['key'], true)];
}
$results = [];
$a = new Kahets\\Client($argv[1]);
foreach ($messages as [$bucket, $payload, $key]) {
    $results[] = $a->send($bucket, $payload, $key);
}
// A second Client in the same process (the next FPM request, say) reuses the connection.
$b = new Kahets\\Client($argv[1]);
$results[] = $b->sendMany($messages);
$results[] = $b->sendMany([]);
// A non-persistent client gets its own connection.
$c = new Kahets\\Client($argv[1], false);
$results[] = $c->send('solo', 'own connection', 'k');
$c->close();
echo json_encode($results), "\\n";
`)
    const { code, stdout, stderr } = await runPhp(script, [sink.path, casesFile])
    assert.equal(code, 0, stderr)
    assert.equal(stderr, '')
    assert.deepEqual(JSON.parse(stdout), Array(cases.length + 3).fill(true))
    const persistent = Buffer.concat([encodeFrames(cases), encodeFrames(cases)])
    const solo = encodeFrames([{ bucket: 'solo', payload: 'own connection', key: 'k' }])
    await waitFor(() => sink.total >= persistent.length + solo.length, 'all bytes')
    assert.equal(sink.conns.length, 2)
    assertSameBytes(Buffer.concat(sink.conns[0]!.chunks), persistent, 'persistent connection')
    assertSameBytes(Buffer.concat(sink.conns[1]!.chunks), solo, 'non-persistent connection')
  })

  test('invalid input returns false, logs, and sends nothing', async () => {
    const sink = await sinks.start()
    const script = writeScript('invalid.php', `
$k = new Kahets\\Client($argv[1], true, 1.0, 100);
$r = [];
$r['empty bucket'] = $k->send('', 'x');
$r['dot'] = $k->send('.', 'x');
$r['dotdot'] = $k->send('..', 'x');
$r['slash'] = $k->send('a/b', 'x');
$r['space'] = $k->send('a b', 'x');
$r['nul'] = $k->send("a\\0b", 'x');
$r['non-ascii'] = $k->send('é', 'x');
$r['256-byte bucket'] = $k->send(str_repeat('b', 256), 'x');
$r['256-byte key'] = $k->send('ok', 'x', str_repeat('k', 256));
$r['N = 101'] = $k->send('ok', str_repeat('x', 100 - 2 - 2 + 1));
$r['sendMany one bad'] = $k->sendMany([['ok', 'fine'], ['bad/bucket', 'x']]);
$r['sendMany not a list'] = $k->sendMany([['ok']]);
$r['sendMany non-string'] = $k->sendMany([['ok', 42]]);
$r['sendMany bad key'] = $k->sendMany([['ok', 'x', 7]]);
$r['N = 100'] = $k->send('ok', str_repeat('x', 100 - 2 - 2));
$r['dots'] = $k->send('...', 'fine', '');
$r['sendMany ok'] = $k->sendMany([['ok', 'a'], ['ok', 'b', 'kb'], ['ok', 'c', null]]);
echo json_encode($r), "\\n";
`)
    const { code, stdout, stderr } = await runPhp(script, [sink.path])
    assert.equal(code, 0, stderr)
    const r = JSON.parse(stdout) as Record<string, boolean>
    for (const [name, ok] of Object.entries(r)) {
      assert.equal(ok, ['N = 100', 'dots', 'sendMany ok'].includes(name), name)
    }
    assertNoPhpDiagnostics(stderr, stdout)
    assert.match(stderr, /kahets client: invalid bucket name "a\/b"/)
    assert.match(stderr, /kahets client: key is 256 bytes; at most 255/)
    assert.match(stderr, /kahets client: frame for bucket ok is 101 bytes; at most 100/)
    assert.match(stderr, /sendMany: message 1 is invalid; nothing sent/)
    const expected = encodeFrames([
      { bucket: 'ok', payload: 'x'.repeat(96) },
      { bucket: '...', payload: 'fine' }, // '' key: keyLen 0, the null key
      { bucket: 'ok', payload: 'a' },
      { bucket: 'ok', payload: 'b', key: 'kb' },
      { bucket: 'ok', payload: 'c' },
    ])
    await waitFor(() => sink.total >= expected.length, 'the valid frames')
    assertSameBytes(sink.received(), expected)
  })

  test('kahets down: send() returns false, logs once, and the script carries on (exit 0)', async () => {
    const notASocket = path.join(tmp, 'plain-file')
    fs.writeFileSync(notASocket, '')
    const script = writeScript('down.php', `
$r = [];
foreach ([$argv[1], $argv[2]] as $path) {
    $k = new Kahets\\Client($path, true, 0.5);
    $r[] = $k->send('orders', 'x', 'k');
    $r[] = $k->send('orders', 'y');
    $r[] = $k->sendMany([['orders', 'z']]);
    $k->close();
}
echo json_encode($r), "\\n";
echo "still running\\n";
`)
    const { code, stdout, stderr } = await runPhp(script, [path.join(tmp, 'missing.sock'), notASocket])
    assert.equal(code, 0, stderr)
    assert.equal(stdout, `${JSON.stringify(Array(6).fill(false))}\nstill running\n`)
    assertNoPhpDiagnostics(stderr, stdout)
    const lines = stderr.trim().split('\n')
    assert.equal(lines.length, 2, `one line per client, not per send:\n${stderr}`)
    assert.match(lines[0]!, /kahets client: cannot connect to .*missing\.sock .*No such file or directory/)
    assert.match(lines[1]!, /kahets client: cannot connect to .*plain-file .*Connection refused/)
  })

  test('kahets not reading: a write times out, send() returns false without a retry', async () => {
    const sink = await sinks.start({ paused: true })
    const script = writeScript('stuck.php', `
$k = new Kahets\\Client($argv[1], true, 0.2);
$payload = str_repeat('x', 512 * 1024);
for ($i = 0; $i < 64; $i++) {   // 32 MiB: more than the socket buffers hold
    if (!$k->send('stuck', $payload)) {
        break;
    }
}
echo json_encode(['sent' => $i]), "\\n";
`)
    const { code, stdout, stderr } = await runPhp(script, [sink.path])
    assert.equal(code, 0, stderr)
    const r = JSON.parse(stdout) as { sent: number }
    assert.ok(r.sent < 64, 'a send failed')
    assertNoPhpDiagnostics(stderr, stdout)
    assert.match(stderr, /kahets client: write to .* timed out after 0\.200 s; kahets is not reading/)
    assert.doesNotMatch(stderr, /reconnect/)
    assert.equal(sink.conns.length, 1, 'no second connection: a timeout is not retried')
  })

  test('reconnects once when the connection broke between two sends', async () => {
    // kahets (here the sink) drops the connection after the first frame. PHP does not notice
    // until it writes again: nothing in the PHP client reads the socket. What can be observed:
    //  - On a UNIX stream socket whose peer is fully closed, the kernel refuses the next write
    //    with EPIPE, so fwrite() fails, and the client reconnects once and writes the frame
    //    again on the new connection; send() returns true.
    //  - Had the second frame been written *before* the sink closed (a race PHP cannot see;
    //    over TCP the first write after the peer closed even succeeds locally), it would sit
    //    in the dying socket's buffer and be lost while send() returned true. kahets has no
    //    acknowledgement to detect that. So the test lets PHP send the second frame only once
    //    the sink's side is closed (PHP waits for a line on stdin), which makes the outcome
    //    deterministic: frame 1 on connection 1, frame 2 (whole, once) on connection 2.
    const frame1 = encodeFrames([{ bucket: 'php.reconnect', payload: 'one', key: 'k1' }])
    const frame2 = encodeFrames([{ bucket: 'php.reconnect', payload: 'two', key: 'k2' }])
    const sink = await sinks.start({ destroyFirstAfterBytes: frame1.length })
    const script = writeScript('reconnect.php', `
$k = new Kahets\\Client($argv[1]);
echo json_encode(['first' => $k->send('php.reconnect', 'one', 'k1')]), "\\n";
fgets(STDIN);
echo json_encode(['second' => $k->send('php.reconnect', 'two', 'k2')]), "\\n";
`)
    const run = php([script, sink.path])
    await waitFor(() => run.stdout().includes('"first"') && sink.conns[0]?.closed === true, 'frame 1 and the sink closing the connection')
    run.child.stdin!.end('go\n')
    const code = await run.exit
    assert.equal(code, 0, run.stderr())
    assert.equal(run.stdout(), '{"first":true}\n{"second":true}\n')
    assertNoPhpDiagnostics(run.stderr(), run.stdout())
    assert.match(run.stderr(), /kahets client: reconnected to .* after a failed write \(.*Broken pipe\)/)
    await waitFor(() => sink.total >= frame1.length + frame2.length, 'frame 2')
    assert.equal(sink.conns.length, 2)
    assertSameBytes(Buffer.concat(sink.conns[0]!.chunks), frame1, 'connection 1')
    assertSameBytes(Buffer.concat(sink.conns[1]!.chunks), frame2, 'connection 2')
  })

  test('broken pipe and kahets gone: send() returns false after one reconnect attempt, exit 0', async () => {
    const frame1 = encodeFrames([{ bucket: 'php.gone', payload: 'one' }])
    const sink = await sinks.start({ destroyFirstAfterBytes: frame1.length })
    const script = writeScript('gone.php', `
$k = new Kahets\\Client($argv[1]);
echo json_encode(['first' => $k->send('php.gone', 'one')]), "\\n";
fgets(STDIN);
echo json_encode(['second' => $k->send('php.gone', 'two')]), "\\n";
`)
    const run = php([script, sink.path])
    await waitFor(() => run.stdout().includes('"first"') && sink.conns[0]?.closed === true, 'frame 1 and the sink closing the connection')
    await sink.close() // the socket file goes away too: the reconnect cannot succeed
    run.child.stdin!.end('go\n')
    const code = await run.exit
    assert.equal(code, 0, run.stderr())
    assert.equal(run.stdout(), '{"first":true}\n{"second":false}\n')
    assertNoPhpDiagnostics(run.stderr(), run.stdout())
    assert.match(run.stderr(), /kahets client: cannot connect to .*No such file or directory/)
    assert.match(run.stderr(), /kahets client: write to .* failed \(.*Broken pipe\) and reconnecting failed; not sent/)
    assertSameBytes(sink.received(), frame1)
  })

  test('a new Client after kahets restarted gets a fresh persistent connection (no error)', async () => {
    // Under FPM each request makes a new Client; stream_socket_client() then finds the
    // persistent socket, sees that its peer is gone (EOF), and quietly opens a new one.
    const socketPath = sinks.socketPath('restart')
    const first = await sinks.start({}, socketPath)
    const script = writeScript('restart.php', `
$k = new Kahets\\Client($argv[1]);
echo json_encode(['before' => $k->send('php.restart', 'before')]), "\\n";
fgets(STDIN);
$k2 = new Kahets\\Client($argv[1]);
echo json_encode(['after' => $k2->send('php.restart', 'after')]), "\\n";
`)
    const run = php([script, socketPath])
    const before = encodeFrames([{ bucket: 'php.restart', payload: 'before' }])
    await waitFor(() => run.stdout().includes('"before"') && first.total >= before.length, 'the first frame')
    await first.close() // "kahets restarts": the old connection and socket file go away…
    await waitFor(() => first.conns[0]?.closed === true, 'the old connection to close')
    const second = await sinks.start({}, socketPath) // …and a new kahets listens at the same path
    run.child.stdin!.end('go\n')
    const code = await run.exit
    assert.equal(code, 0, run.stderr())
    assert.equal(run.stdout(), '{"before":true}\n{"after":true}\n')
    assert.equal(run.stderr(), '')
    const afterFrame = encodeFrames([{ bucket: 'php.restart', payload: 'after' }])
    await waitFor(() => second.total >= afterFrame.length, 'the frame sent after the restart')
    assertSameBytes(first.received(), before, 'old kahets')
    assertSameBytes(second.received(), afterFrame, 'new kahets')
  })

  test('example.php sends keyed messages and reports them; exits 1 when kahets is down', async () => {
    const sink = await sinks.start()
    const ok = await runPhp(EXAMPLE_PHP, [sink.path, '25'])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /^25 of 25 messages accepted/)
    assert.equal(ok.stderr, '')
    await waitFor(() => countFrames(sink.received()).complete === 25, '25 frames')
    const { buckets, keys } = countFrames(sink.received())
    assert.deepEqual([...buckets], ['example'])
    assert.equal(keys.size, 16)

    const down = await runPhp(EXAMPLE_PHP, [path.join(tmp, 'nothing-here.sock'), '3'])
    assert.equal(down.code, 1)
    assert.match(down.stdout, /^0 of 3 messages accepted/)
    assertNoPhpDiagnostics(down.stderr, down.stdout)
  })
})

/** Walks a frame stream: counts complete frames, collects bucket names and keys. */
function countFrames (buf: Buffer): { complete: number, buckets: Set<string>, keys: Set<string> } {
  const buckets = new Set<string>()
  const keys = new Set<string>()
  let complete = 0
  let o = 0
  while (o + 4 <= buf.length) {
    const n = buf.readUInt32LE(o)
    if (o + 4 + n > buf.length) break
    const b = buf[o + 4]!
    buckets.add(buf.toString('latin1', o + 5, o + 5 + b))
    const k = buf[o + 5 + b]!
    keys.add(buf.toString('latin1', o + 6 + b, o + 6 + b + k))
    complete++
    o += 4 + n
  }
  return { complete, buckets, keys }
}
