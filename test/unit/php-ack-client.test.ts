// The PHP client in acknowledged mode, run by the real `php` CLI against a FAKE acking
// kahets (test/helpers/ack-server.ts): the client's half of docs/protocol.md. The proof
// against a real kahets runs the same driver (runPhpAck) at a real socket.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { encodeFrame } from '../../src/protocol/encoder.ts'
import { AckServer, ackFixture } from '../helpers/ack-server.ts'
import { type AckMessage, PHP_CLIENT, runPhpAck } from '../helpers/ack-clients.ts'
import { waitUntil } from '../helpers/sink.ts'

const exec = promisify(execFile)
const { sinks, servers, server, messages } = ackFixture('kahets-php-ack-', 'php')

const wire = (msgs: AckMessage[]): Buffer[] => msgs.map((m) => encodeFrame(m))

/** Runs a PHP script (after the line loading `loader`) and returns its output; fails on a non-zero exit. */
async function php (body: string, args: string[], loader = `require ${JSON.stringify(PHP_CLIENT)};`): Promise<{ stdout: string, stderr: string }> {
  const script = path.join(sinks.dir, `s-${process.hrtime.bigint()}.php`)
  fs.writeFileSync(script, `<?php\ndeclare(strict_types=1);\n${loader}\n${body}\n`)
  return await exec('php', ['-n', '-d', 'error_reporting=-1', '-d', 'display_errors=stderr', '-d', 'log_errors=0', script, ...args], { timeout: 30_000 })
}

describe('PHP client, acknowledged mode', () => {
  test('a kahets that does not acknowledge: the exit flush waits at most the timeout, then logs', async () => {
    const s = await server({ silent: true })
    const started = Date.now()
    const { stderr } = await php(`
$k = new Kahets\\Client($argv[1], ['ack' => 'durable', 'timeout' => 0.3]);
$k->send('orders', 'never settled');
`, [s.path])
    assert.match(stderr, /1 frame\(s\) sent to .* were not confirmed by kahets within 0\.300 s at exit; they may be lost/)
    assert.ok(Date.now() - started < 10_000)
    assert.equal(s.conns[0]!.control.filter((c) => c.type === 'sync').length, 1, 'the exit flush sent SYNC')
  })

  test('says HELLO at its level first, sends frames unchanged, flush() reports settled and refused', async () => {
    const s = await server({ refuse: (b) => b === 'nobody' })
    const msgs = messages(100, (i) => (i % 10 === 0 ? 'nobody' : 'orders'))
    const r = await runPhpAck(sinks.dir, s.path, { ack: 'durable', messages: msgs })
    assert.deepEqual({ ok: r.ok, settled: r.settled, refused: r.refused }, { ok: true, settled: 100, refused: 10 })
    assert.equal(r.log, '')
    assert.equal(s.conns.length, 1)
    assert.deepEqual(s.conns[0]!.control[0], { type: 'hello', version: 1, level: 2 })
    assert.deepEqual(s.conns[0]!.frames, wire(msgs))

    const a = await server({ refuse: (b) => b === 'nobody' })
    const { stdout } = await php(`
$k = new Kahets\\Client($argv[1], ['ack' => 'accepted']);
$k->sendMany([['orders', 'a'], ['nobody', 'b'], ['orders', 'c', 'key']]);
$first = [$k->flush(), $k->lastRefused()];
$k->send('nobody', 'd');
$k->send('nobody', 'e');
echo json_encode([$first, [$k->flush(), $k->lastRefused()], [$k->settled(), $k->refused(), $k->unsettled()], $k->lastRefusal()]), "\\n";
`, [a.path])
    assert.deepEqual(JSON.parse(stdout), [[true, 1], [true, 2], [5, 3, 0], 'frame 4: unknown_bucket'])
    assert.deepEqual(a.conns[0]!.control[0], { type: 'hello', version: 1, level: 1 })
  })

  test('random bytes from a peer: Control::parse() returns frames or null, never a warning or an exception', async () => {
    const { stdout, stderr } = await php(`
for ($i = 0; $i < 3000; $i++) {
    $raw = random_bytes(1 + $i % 40);
    foreach ([$raw, pack('VC', strlen($raw) + 1, 0) . $raw] as $buf) {
        $r = Kahets\\Control::parse($buf);
        if ($r !== null && !is_array($r)) { echo "bad\\n"; }
    }
}
echo "ok\\n";
`, [])
    assert.equal(stdout, 'ok\n')
    assert.equal(stderr, '')
  })

  test('CLOSING then reconnect resends exactly the frames past read', async () => {
    const s = await server({ closingAfter: 30 })
    const msgs = messages(100)
    const r = await runPhpAck(sinks.dir, s.path, { ack: 'durable', messages: msgs })
    assert.deepEqual({ ok: r.ok, settled: r.settled, refused: r.refused }, { ok: true, settled: 100, refused: 0 })
    assert.equal(s.conns.length, 2)
    const expected = wire(msgs)
    assert.deepEqual(s.conns[0]!.frames, expected.slice(0, 30), 'connection 1 read 30 frames, then CLOSING 30')
    assert.deepEqual(s.conns[1]!.control[0], { type: 'hello', version: 1, level: 2 }, 'connection 2 starts with HELLO')
    assert.deepEqual(s.conns[1]!.frames, expected.slice(30), 'connection 2 carries exactly frames 30..99')
    assert.match(r.log, /kahets is closing the connection after 30 frames/)
  })

  test('a broken pipe resends exactly the frames past settled', async () => {
    const s = await server({ breakAfter: { read: 40, settled: 25 } })
    const msgs = messages(100)
    const r = await runPhpAck(sinks.dir, s.path, { ack: 'durable', messages: msgs })
    assert.deepEqual({ ok: r.ok, settled: r.settled, refused: r.refused }, { ok: true, settled: 100, refused: 0 })
    const expected = wire(msgs)
    assert.deepEqual(s.conns[0]!.frames, expected.slice(0, 40))
    assert.deepEqual(s.conns[1]!.frames, expected.slice(25), 'frames 25..99: past the last settled count')
  })

  test('fire-and-forget (no ack): no HELLO, no byte from kahets, frames unchanged', async () => {
    const s = await server()
    const msgs = messages(20)
    await php(`
$k = new Kahets\\Client($argv[1], ['ack' => null]);
foreach (json_decode($argv[2], true) as $m) { $k->send($m['bucket'], $m['payload'], $m['key'] ?? null); }
$k2 = new Kahets\\Client($argv[1]);
$k2->send('orders', 'positional');
`, [s.path, JSON.stringify(msgs)])
    await waitUntil(() => s.conns.length > 0 && s.conns.every((c) => c.closed), 'the connections to end')
    assert.deepEqual(s.allFrames(), [...wire(msgs), encodeFrame({ bucket: 'orders', payload: 'positional' })])
    assert.deepEqual(s.conns.map((c) => c.control), [[]], 'one persistent connection, no control frame')
    assert.equal(s.conns[0]!.bytesOut, 0)
  })

  test('kahets down: logged once per process (not per Client), frames kept, flush() false, unconfirmed frames logged at exit', async () => {
    const missing = path.join(sinks.dir, 'missing.sock')
    const { stdout, stderr } = await php(`
$r = [];
for ($i = 0; $i < 3; $i++) {
    $ff = new Kahets\\Client($argv[1]);
    $r[] = $ff->send('orders', 'x');
    $k = new Kahets\\Client($argv[1], ['ack' => 'durable', 'timeout' => 0.2]);
    $r[] = $k->send('orders', 'kept ' . $i);
}
$r[] = $k->flush(0.1);
$r[] = $k->unsettled();
echo json_encode($r), "\\n";
`, [missing])
    assert.deepEqual(JSON.parse(stdout), [false, true, false, true, false, true, false, 3])
    const lines = stderr.trim().split('\n')
    assert.equal(lines.length, 2, stderr)
    assert.match(lines[0]!, /kahets client: cannot connect to .*missing\.sock .*No such file or directory/)
    assert.match(lines[1]!, /kahets client: 3 frame\(s\) sent to .*missing\.sock were not confirmed by kahets, which is not running; they are lost/)
  })

  test('frames kept while kahets is down are sent once it is up, by flush()', async () => {
    const p = sinks.socketPath('late')
    const script = path.join(sinks.dir, 'late.php')
    fs.writeFileSync(script, `<?php
require ${JSON.stringify(PHP_CLIENT)};
$k = new Kahets\\Client($argv[1], ['ack' => 'accepted']);
$k->send('orders', 'early');
echo "sent\\n";
fgets(STDIN);
echo json_encode([$k->flush(5.0), $k->settled()]), "\\n";
`)
    const child = spawn('php', ['-n', script, p], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d })
    await waitUntil(() => out.includes('sent\n'), 'the first send', 15_000)
    const late = await AckServer.start(p)
    servers.push(late)
    child.stdin.end('go\n')
    await new Promise((resolve) => child.on('close', resolve))
    assert.deepEqual(JSON.parse(out.split('\n')[1]!), [true, 1], err)
    assert.deepEqual(late.allFrames(), [encodeFrame({ bucket: 'orders', payload: 'early' })])
    assert.match(err, /cannot connect to/)
    assert.match(err, /connected to .* again/)
  })

  test('at most 10,000 unsettled frames per process: then send() returns false, logged once', async () => {
    const s = await server({ silent: true })
    const { stdout, stderr } = await php(`
$k = new Kahets\\Client($argv[1], ['ack' => 'durable', 'timeout' => 0.1]);
$ok = 0;
for ($i = 0; $i < 10005; $i++) { if ($k->send('orders', 'm')) { $ok++; } }
$big = $k->send('orders', str_repeat('z', 100));
echo json_encode([$ok, $big, $k->unsettled()]), "\\n";
`, [s.path])
    assert.deepEqual(JSON.parse(stdout), [10000, false, 10000])
    assert.equal(stderr.match(/not settled yet, the most this process keeps/g)?.length, 1, stderr)
  })

  test('a PSR-3 logger gets the lines; the Composer PSR-4 map loads the classes', async () => {
    const composer = JSON.parse(fs.readFileSync(path.join(path.dirname(PHP_CLIENT), 'composer.json'), 'utf8')) as { autoload: { 'psr-4': Record<string, string> } }
    const [[prefix, dir]] = Object.entries(composer.autoload['psr-4']) as [[string, string]]
    // What Composer's autoloader does with that map, so the test needs no composer binary.
    const loader = `spl_autoload_register(function (string $c): void {
    $p = ${JSON.stringify(prefix)};
    if (strncmp($c, $p, strlen($p)) === 0) { require ${JSON.stringify(path.join(path.dirname(PHP_CLIENT), dir))} . '/' . str_replace('\\\\', '/', substr($c, strlen($p))) . '.php'; }
});`
    const { stdout, stderr } = await php(`
final class Psr3Like { public array $lines = []; public function warning($m, array $c = []): void { $this->lines[] = "W $m"; } public function error($m, array $c = []): void { $this->lines[] = "E $m"; } }
$log = new Psr3Like();
$k = new Kahets\\Client($argv[1], ['ack' => 'accepted', 'logger' => $log, 'timeout' => 0.1]);
$k->send('bad/bucket', 'x');
echo json_encode($log->lines), "\\n";
`, [path.join(sinks.dir, 'nowhere.sock')], loader)
    const lines = JSON.parse(stdout) as string[]
    assert.match(lines[0]!, /^E kahets client: invalid bucket name "bad\/bucket"/)
    assert.equal(stderr, '', 'nothing went to error_log()')
  })
})

test('example.php in acknowledged mode waits for the messages to settle', async () => {
  const s = await server()
  const { stdout } = await exec('php', ['-n', path.join(path.dirname(PHP_CLIENT), 'example.php'), s.path, '7', 'durable'], { timeout: 30_000 })
  assert.equal(stdout.split('\n')[1], 'all settled: 7 settled, 0 refused')
  assert.equal(s.allFrames().length, 7)
})
