// SIGHUP reloads and the metrics endpoint, on the real process with file streams.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, lstatSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { get as httpGet } from 'node:http'
import { join } from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { type KahetsProcess, makeTempDir, startKahets, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { freePort } from '../helpers/ports.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

const config = (stream: string) => ({
  streamsConfigs: {
    one: { type: 'file', settings: { path: '{dir}/one' } },
    two: { type: 'file', settings: { path: '{dir}/two' } },
  },
  buckets: [{ id: 'a', streams: [stream], batch: 100000, batchTimeout: 60000 }],
})

async function send (socket: string, from: number, to: number): Promise<void> {
  const c = await KahetsClient.connect(socket)
  for (let i = from; i < to; i++) c.send('a', `m${i}`)
  await c.close()
}

test('SIGHUP: valid file switches streams without losing buffered messages; invalid file is rejected and the old one kept', async () => {
  const k = await startKahetsWithMetrics({ buckets: config('one') })
  const base = k.metrics
  await send(k.socket, 0, 1000)
  // Buffered in the bucket (batch and timeout are far away) when the reload comes.
  await waitFor(async () => sample(await scrape(base), 'kahets_bucket_pending_frames', { bucket: 'a' }) === 1000, { what: '1000 pending frames' })

  await writeFile(join(k.dir, 'buckets.json'), JSON.stringify(config('two')).replaceAll('{dir}', k.dir))
  k.proc.kill('SIGHUP')
  await waitFor(() => k.logs().some((l) => l.msg === 'buckets file reloaded'), { what: 'reload' })
  await send(k.socket, 1000, 2000)

  await writeFile(join(k.dir, 'buckets.json'), '{"streamsConfigs": {}, "buckets": [{"id": "a", "streams": ["nope"]}]}')
  k.proc.kill('SIGHUP')
  await waitFor(() => k.logs().some((l) => l.msg === 'reload rejected: invalid buckets file; keeping the running configuration'), { what: 'rejection' })
  await send(k.socket, 2000, 3000)

  const m = await waitFor(async () => {
    const s = await scrape(base)
    return sample(s, 'kahets_received_total', { bucket: 'a' }) === 3000 ? s : null
  }, { what: 'all received' })
  assertIdentity(m, 'a', 'one')
  assertIdentity(m, 'a', 'two')
  assert.equal(await k.stop(), 0, k.output())

  const one = (await readFrameFiles(join(k.dir, 'one'))).flatMap((f) => f.frames.map((x) => x.payload.toString()))
  const two = (await readFrameFiles(join(k.dir, 'two'))).flatMap((f) => f.frames.map((x) => x.payload.toString()))
  assert.deepEqual(one, Array.from({ length: 1000 }, (_, i) => `m${i}`), 'what was buffered before the reload left by the old stream')
  assert.deepEqual(two, Array.from({ length: 2000 }, (_, i) => `m${i + 1000}`), 'later messages took the new stream, also after the rejected reload')
})

test('/metrics counts received, delivered, sampled, invalid and unknown; /healthz is 200 while all streams are normal', async () => {
  const k = await startKahetsWithMetrics({
    buckets: {
      streamsConfigs: {
        all: { type: 'file', settings: { path: '{dir}/all' } },
        tenth: { type: 'file', slice: 0.1, settings: { path: '{dir}/tenth' } },
      },
      buckets: [{ id: 'a', streams: ['all', 'tenth'], batch: 500, batchTimeout: 20 }],
    },
  })
  const base = k.metrics
  const c = await KahetsClient.connect(k.socket)
  for (let i = 0; i < 10000; i++) c.send('a', `m${i}`)
  c.send('nobody', 'x')
  c.writeRaw(Buffer.from([0x04, 0, 0, 0, 0x02, 0x2e, 0x2e, 0x00]))
  await c.close()
  const m = await waitFor(async () => {
    const s = await scrape(base)
    return sample(s, 'kahets_in_flight') === 0 && sample(s, 'kahets_received_total', { bucket: 'a' }) === 10000 ? s : null
  }, { what: 'everything settled' })
  const all = assertIdentity(m, 'a', 'all')
  const tenth = assertIdentity(m, 'a', 'tenth')
  assert.equal(all.delivered, 10000)
  // slice 0.1 of 10,000: binomial, sd = 30; 6 sd either side.
  assert.ok(tenth.delivered > 820 && tenth.delivered < 1180, `tenth delivered ${tenth.delivered}`)
  assert.equal(tenth.delivered + tenth.sampledOut, 10000)
  assert.equal(sample(m, 'kahets_dropped_total', { bucket: 'nobody', reason: 'unknown_bucket' }), 1)
  assert.equal(sample(m, 'kahets_invalid_frames_total', { reason: 'bad_bucket' }), 1)
  assert.equal(sample(m, 'kahets_connections_total'), 1)
  assert.equal(sample(m, 'kahets_stream_mode', { stream: 'all', mode: 'normal' }), 1)
  for (const name of ['kahets_process_resident_memory_bytes', 'kahets_process_heap_used_bytes', 'kahets_process_heap_total_bytes', 'kahets_process_external_bytes']) {
    assert.ok(sample(m, name) > 0, `${name} reported`)
  }
  assert.ok(sample(m, 'kahets_process_heap_used_bytes') <= sample(m, 'kahets_process_heap_total_bytes'))
  const h = await fetch(`${base}/healthz`)
  assert.equal(h.status, 200)
  // The frame for a bucket nobody serves is listed as refused; that fails nothing.
  const body = await h.json() as { status: string, degraded: unknown[], refused: Array<Record<string, unknown>> }
  assert.deepEqual([body.status, body.degraded], ['ok', []])
  assert.deepEqual(body.refused.map((r) => [r.bucket, r.stream, r.reason]), [['nobody', '', 'unknown_bucket']])
  assert.equal(await k.stop(), 0)
  const tenthFiles = (await readFrameFiles(join(k.dir, 'tenth'))).flatMap((f) => f.frames)
  assert.equal(tenthFiles.length, tenth.delivered, 'the files hold what /metrics says was delivered')
})

test('SIGHUP: a reload rejected for an unreadable ssl.ca.location leaves nothing behind; once the file is fixed the next one applies', async () => {
  const k = await startKahetsWithMetrics({ buckets: config('one') })
  const base = k.metrics
  const ca = join(k.dir, 'ca.pem')
  // A new file stream for a new bucket, and a TLS Kafka stream (with a file backup) whose CA
  // file is not there yet; no broker is needed, nothing is sent to it.
  const next = {
    streamsConfigs: {
      one: { type: 'file', settings: { path: '{dir}/one' } },
      two: { type: 'file', settings: { path: '{dir}/two' } },
      secure: {
        type: 'kafka',
        settings: { 'bootstrap.servers': '127.0.0.1:1', 'security.protocol': 'ssl', 'ssl.ca.location': ca },
        backup: { type: 'file', settings: { path: '{dir}/secure-backup' } },
      },
    },
    buckets: [{ id: 'a', streams: ['one'], batch: 100000, batchTimeout: 60000 }, { id: 'b', streams: ['two'], batch: 1, batchTimeout: 10 }],
  }
  const openStreams = async (): Promise<number> => sample(await scrape(base), 'kahets_streams_open')
  assert.equal(await openStreams(), 2, 'streams "one" and "two"')

  await writeFile(join(k.dir, 'buckets.json'), JSON.stringify(next).replaceAll('{dir}', k.dir))
  k.proc.kill('SIGHUP')
  const rejected = await waitFor(() => k.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('reload rejected')), { what: 'rejection' })
  assert.match(JSON.stringify(rejected), /\$\.streamsConfigs\.secure\.settings\[\\"ssl\.ca\.location\\"\].*cannot read CA file/, 'the problem names its JSON path')
  assert.equal(await openStreams(), 2, 'the rejected reload built no stream, or closed what it built')
  const c = await KahetsClient.connect(k.socket)
  c.send('b', 'before')
  await c.close()
  await waitFor(async () => sample(await scrape(base), 'kahets_dropped_total', { bucket: 'b', reason: 'unknown_bucket' }) === 1, { what: 'b unknown while rejected' })

  await writeFile(ca, `-----BEGIN CERTIFICATE-----\n${CA_BODY}\n-----END CERTIFICATE-----\n`)
  k.proc.kill('SIGHUP')
  await waitFor(() => k.logs().some((l) => l.msg === 'buckets file reloaded'), { what: 'the fixed file applied' })
  assert.equal(await openStreams(), 4, 'one, two, secure and its backup')
  const c2 = await KahetsClient.connect(k.socket)
  c2.send('b', 'after')
  await c2.close()
  await waitFor(async () => sample(await scrape(base), 'kahets_delivered_total', { bucket: 'b', stream: 'two' }) === 1, { what: 'b delivered to the new stream' })
  assertIdentity(await scrape(base), 'b', 'two')
  assert.equal(await k.stop(), 0, k.output())
  const two = (await readFrameFiles(join(k.dir, 'two'))).flatMap((f) => f.frames.map((x) => x.payload.toString()))
  assert.deepEqual(two, ['after'])
})

// A self-signed CA certificate (public part only) for the TLS stream above: a file that parses.
const CA_BODY = [
  'MIIBiTCCAS+gAwIBAgIULEqxYsLNEOpWNdjuK8wRp0GImIYwCgYIKoZIzj0EAwIw',
  'GTEXMBUGA1UEAwwOa2FoZXRzLXRlc3QtY2EwIBcNMjYxMTMwMDMzMDE2WhgPMjEy',
  'NjExMDYwMzMwMTZaMBkxFzAVBgNVBAMMDmthaGV0cy10ZXN0LWNhMFkwEwYHKoZI',
  'zj0CAQYIKoZIzj0DAQcDQgAEuxPTWBC5bdCdAxczN9sU42Brh962yQ4G5o4nqWS5',
  'qR/Zu/Fy7aL/MojDyOJnZ/dUKu6VKmC1onSCvGtnFRjq8qNTMFEwHQYDVR0OBBYE',
  'FCIH+JxkIUQgJ+ScDEaBxBkq6DKgMB8GA1UdIwQYMBaAFCIH+JxkIUQgJ+ScDEaB',
  'xBkq6DKgMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgbtuXFLVY',
  'uCa1HPmRK1ZLlK9KNC6LwGrW0XibRfGe7MACIQCAaISz7nQDYAh6MhFY+G4dR1DW',
  'f6W5Q0Glb1X7K19Hlw==',
].join('\n')

test('METRICS=unix:PATH never deletes a file that is not a socket, refuses a path another instance answers on, replaces a stale socket', async () => {
  const buckets = config('one')
  const dir = await makeTempDir()
  const precious = join(dir, 'precious.txt')
  await writeFile(precious, 'data')
  const refused = await startKahets({ buckets, env: { METRICS: `unix:${precious}` }, waitReady: false })
  assert.equal(await exitCode(refused), 1, refused.output())
  assert.match(refused.output(), /METRICS: .*precious\.txt exists and is not a socket/)
  assert.equal(await readFile(precious, 'utf8'), 'data', 'the file is untouched')

  const path = join(dir, 'metrics.sock')
  const first = await startKahets({ buckets, env: { METRICS: `unix:${path}` } })
  const second = await startKahets({ buckets, env: { METRICS: `unix:${path}` }, waitReady: false })
  assert.equal(await exitCode(second), 1, second.output())
  assert.match(second.output(), /METRICS: .*another process is serving .*metrics\.sock/)
  assert.equal(await unixGet(path, '/healthz'), 200, "the first instance's endpoint still answers")
  // SIGKILL leaves the socket file behind with nobody serving it.
  await first.kill()
  assert.ok(lstatSync(path).isSocket(), 'stale socket file left')
  const third = await startKahets({ buckets, env: { METRICS: `unix:${path}` } })
  assert.ok(third.logs().some((l) => l.msg === 'METRICS: removing stale socket file left by a previous run'))
  assert.equal(await unixGet(path, '/healthz'), 200)
  assert.equal(await third.stop(), 0)
  assert.equal(existsSync(path), false, 'the socket file is removed on exit')

  // host:port: a port in use is refused as well.
  const port = await freePort()
  const tcp = await startKahets({ buckets, env: { METRICS: `127.0.0.1:${port}` } })
  const tcpSecond = await startKahets({ buckets, env: { METRICS: `127.0.0.1:${port}` }, waitReady: false })
  assert.equal(await exitCode(tcpSecond), 1, tcpSecond.output())
  assert.match(tcpSecond.output(), /METRICS: cannot listen: .*EADDRINUSE/)
  assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200)
  assert.equal(await tcp.stop(), 0)
})

/** The exit code of a kahets expected to refuse to start, within a deadline. */
async function exitCode (k: KahetsProcess): Promise<number | null> {
  await waitFor(() => k.proc.exitCode !== null || k.proc.signalCode !== null, { what: 'kahets to exit' })
  return k.proc.exitCode
}

function unixGet (socketPath: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpGet({ socketPath, path }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject)
  })
}
