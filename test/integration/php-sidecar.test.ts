// The PHP client, run by the real php CLI, against the real kahets process.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT, startKahets } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { runPhpScript } from '../helpers/php.ts'

const run = promisify(execFile)

test('10,000 messages from php land in the bucket files, byte-identical and in order', async () => {
  const k = await startKahets({
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out' } } },
      buckets: [{ id: 'php', streams: ['files'], batch: 1000, batchTimeout: 100 }],
    },
  })
  const { stdout } = await runPhpScript(k.dir, 'send.php', `$k = new \\Kahets\\Client($argv[1]);
$ok = 0;
for ($i = 0; $i < 10000; $i++) {
  $payload = "m$i\\0\\n" . str_repeat(chr($i % 256), $i % 300);
  if ($k->send('php', $payload, $i % 7 === 0 ? null : "key-" . ($i % 13))) $ok++;
}
echo $ok;
`, [k.socket], ['-d', 'error_reporting=-1'])
  assert.equal(stdout, '10000')
  assert.equal(await k.stop(), 0, k.output())
  const frames = (await readFrameFiles(join(k.dir, 'out'))).flatMap((f) => f.frames)
  assert.equal(frames.length, 10000)
  frames.forEach((f, i) => {
    assert.deepEqual(f.payload, Buffer.concat([Buffer.from(`m${i}\0\n`), Buffer.alloc(i % 300, i % 256)]))
    assert.equal(f.key?.toString() ?? null, i % 7 === 0 ? null : `key-${i % 13}`)
  })
})

test('the shipped example script reports every message accepted', async () => {
  const k = await startKahets({
    buckets: { streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out' } } }, buckets: [], defaultBucket: { id: 'd', streams: ['files'] } },
  })
  const { stdout } = await run('php', [join(ROOT, 'clients/php/example.php'), k.socket, '100'])
  assert.match(stdout, /100 of 100 messages accepted/)
  assert.equal(await k.stop(), 0)
  const files = await readFrameFiles(join(k.dir, 'out'))
  assert.equal(files.flatMap((f) => f.frames).filter((f) => f.bucket === 'example').length, 100)
})

test('20,000 short-lived php clients in a row (one connection each): every send accepted, none lost', async () => {
  // Faster than kahets accepts: the listen backlog fills and connect() gets EAGAIN, which
  // the client waits out instead of dropping the message.
  const k = await startKahets({
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out' } } },
      buckets: [{ id: 'burst', streams: ['files'], batch: 1000, batchTimeout: 100 }],
    },
  })
  const { stdout, stderr } = await runPhpScript(k.dir, 'burst.php', `$ok = 0;
for ($i = 0; $i < 20000; $i++) {
  $k = new \\Kahets\\Client($argv[1], false);
  if ($k->send('burst', "request $i")) $ok++;
  $k->close();
}
echo $ok;
`, [k.socket])
  assert.equal(stdout, '20000', stderr.split('\n').slice(0, 3).join('\n'))
  assert.equal(await k.stop(), 0, k.output())
  const frames = (await readFrameFiles(join(k.dir, 'out'))).flatMap((f) => f.frames)
  assert.equal(frames.length, 20000)
  assert.deepEqual(new Set(frames.map((f) => f.payload.toString())).size, 20000)
})
