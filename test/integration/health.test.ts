// The probes on a real kahets (docs/operations-health.md): a stream on its backup is degraded
// but healthy and ready; reads paused for MAXMEMORY make /readyz 503 until the backup catches
// up; messages dropped make /healthz 503; shutdown makes /readyz 503 while /livez answers.
// File streams whose folder is a regular file stand in for a failing disk or Kafka.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { FILES_WITH_BACKUP, makeTempDir, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

async function get (base: string, path: string): Promise<{ status: number, text: string }> {
  const res = await fetch(base + path)
  return { status: res.status, text: await res.text() }
}

async function send (socket: string, bucket: string, from: number, to: number, payload = ''): Promise<void> {
  const c = await KahetsClient.connect(socket)
  for (let i = from; i < to; i++) if (!c.send(bucket, `m${i}${payload}`)) await c.drain()
  await c.close()
}

async function sizeOfFiles (dir: string): Promise<number> {
  let total = 0
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size
  }
  return total
}

test('a stream on its backup: /healthz 200 "degraded" naming it, /readyz and /livez 200; once it recovers the backup is replayed, counted in bytes', async () => {
  const dir = await makeTempDir()
  await writeFile(join(dir, 'primary'), 'in the way')
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: FILES_WITH_BACKUP,
      buckets: [{ id: 'disk', streams: ['files'], batch: 100, batchTimeout: 20 }],
    },
  })
  const base = k.metrics
  await send(k.socket, 'disk', 0, 1000)
  await waitFor(async () => { const s = await scrape(base); return sample(s, 'kahets_backed_up_total') === 1000 && sample(s, 'kahets_in_flight') === 0 }, { what: 'all on the backup' })
  const h = await get(base, '/healthz')
  assert.equal(h.status, 200)
  // With why it failed over: the error's code and message (the folder in the way).
  assert.deepEqual(JSON.parse(h.text), { status: 'degraded', degraded: [{ stream: 'files', mode: 'backup', code: 'KAHETS_STREAM_WRITE_FAILED', reason: `path ${dir}/primary is not a folder` }] })
  assert.deepEqual(await get(base, '/readyz'), { status: 200, text: 'ok\n' })
  assert.deepEqual(await get(base, '/livez'), { status: 200, text: 'ok\n' })

  const spooled = await sizeOfFiles(join(dir, 'backup'))
  assert.ok(spooled > 1000 * 16, `backup files hold ${spooled} bytes`)
  const during = await scrape(base)
  assert.equal(sample(during, 'kahets_spool_bytes', { stream: 'files.backup' }), spooled)
  assert.ok(sample(during, 'kahets_spool_files', { stream: 'files.backup' }) >= 1)
  const age = sample(during, 'kahets_spool_oldest_age_seconds', { stream: 'files.backup' })
  assert.ok(age > 0 && age < 30, `oldest spooled message ${age} s old`)
  await rm(join(dir, 'primary'))
  const m = await waitFor(async () => {
    const s = await scrape(base)
    return (await get(base, '/healthz')).text === '{"status":"ok","degraded":[]}\n' && sample(s, 'kahets_replayed_total') === 1000 ? s : null
  }, { what: 'recovered and replayed', timeoutMs: 20_000 })
  assert.equal(sample(m, 'kahets_replay_bytes_total', { stream: 'files' }), spooled, 'every byte of the backup files was replayed')
  assert.equal(sample(m, 'kahets_replay_bytes_left', { stream: 'files' }), 0)
  assert.deepEqual([sample(m, 'kahets_spool_bytes', { stream: 'files.backup' }), sample(m, 'kahets_spool_oldest_age_seconds', { stream: 'files.backup' })], [0, 0])
  assertIdentity(m, 'disk', 'files')
  assert.equal(await k.stop(), 0)
  const primary = (await readFrameFiles(join(dir, 'primary'))).flatMap((f) => f.frames.map((x) => x.payload.toString()))
  assert.deepEqual(primary, Array.from({ length: 1000 }, (_, i) => `m${i}`))
})

test('reads paused (MAXMEMORY reached, the backup failing too): /readyz 503 with the reason, /healthz 200 degraded; ready again once the backup writes, nothing lost', async () => {
  const dir = await makeTempDir()
  await writeFile(join(dir, 'primary'), 'in the way')
  await writeFile(join(dir, 'backup'), 'in the way too')
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: FILES_WITH_BACKUP,
      buckets: [{ id: 'disk', streams: ['files'], batch: 100, batchTimeout: 20 }],
    },
    env: { MAXMEMORY: '256KB' },
  })
  const base = k.metrics
  // 2,000 × ~1 KiB: eight times MAXMEMORY. The client waits while kahets does not read.
  const pad = '.'.repeat(1000)
  const sending = send(k.socket, 'disk', 0, 2000, pad)
  const paused = await waitFor(async () => { const r = await get(base, '/readyz'); return r.status === 503 ? r : null }, { what: '/readyz 503', timeoutMs: 20_000 })
  assert.equal(paused.text, 'reads paused: MAXMEMORY reached and the backup is behind\n')
  const s = await scrape(base)
  assert.equal(sample(s, 'kahets_reads_paused'), 1)
  assert.ok(sample(s, 'kahets_read_pauses_total') >= 1)
  const h = await get(base, '/healthz')
  assert.equal(h.status, 200, h.text)
  assert.deepEqual(JSON.parse(h.text).degraded, [
    { stream: 'files', mode: 'backup', code: 'KAHETS_STREAM_WRITE_FAILED', reason: `path ${dir}/primary is not a folder` },
    { stream: 'files.backup', mode: 'retrying', code: 'KAHETS_STREAM_WRITE_FAILED', reason: `path ${dir}/backup is not a folder` },
  ])
  assert.equal((await get(base, '/livez')).status, 200)

  await rm(join(dir, 'backup'))
  await sending
  const m = await waitFor(async () => {
    const s = await scrape(base)
    return sample(s, 'kahets_received_total') === 2000 && sample(s, 'kahets_in_flight') === 0 ? s : null
  }, { what: 'everything received and settled', timeoutMs: 30_000 })
  assert.equal((await get(base, '/readyz')).status, 200)
  const terms = assertIdentity(m, 'disk', 'files')
  assert.equal(terms.dropped, 0)
  assert.equal(terms.backedUp, 2000)
  assert.equal(await k.stop(), 0)
  const backup = (await readFrameFiles(join(dir, 'backup'))).flatMap((f) => f.frames.map((x) => x.payload.toString().replace(/\.+$/, '')))
  assert.deepEqual(backup.sort(), Array.from({ length: 2000 }, (_, i) => `m${i}`).sort())
})

test('messages dropped (no backup, MAXMEMORY reached): /healthz 503 "failing" naming the flow and reason; /readyz stays 200; at shutdown /readyz 503, /livez 200', async () => {
  const dir = await makeTempDir()
  await writeFile(join(dir, 'primary'), 'in the way')
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/primary' } } },
      buckets: [{ id: 'disk', streams: ['files'], batch: 100, batchTimeout: 20 }],
    },
    env: { MAXMEMORY: '256KB', SHUTDOWN_TIMEOUT: '3000' },
  })
  const base = k.metrics
  await send(k.socket, 'disk', 0, 2000, '.'.repeat(1000))
  const m = await waitFor(async () => { const s = await scrape(base); return sample(s, 'kahets_received_total') === 2000 ? s : null }, { what: 'all received' })
  const dropped = sample(m, 'kahets_dropped_total', { bucket: 'disk', stream: 'files', reason: 'max_memory' })
  assert.ok(dropped > 0, 'some were dropped')
  await waitFor(async () => sample(await scrape(base), 'kahets_stream_mode', { stream: 'files', mode: 'retrying' }) === 1, { what: 'retrying' })
  const h = await get(base, '/healthz')
  assert.equal(h.status, 503)
  const body = JSON.parse(h.text) as { status: string, degraded: unknown, dropping: Array<Record<string, unknown>> }
  assert.equal(body.status, 'failing')
  assert.deepEqual(body.degraded, [{ stream: 'files', mode: 'retrying', code: 'KAHETS_STREAM_WRITE_FAILED', reason: `path ${dir}/primary is not a folder` }])
  assert.deepEqual(body.dropping.map((d) => [d.bucket, d.stream, d.reason]), [['disk', 'files', 'max_memory']])
  assert.equal((await get(base, '/readyz')).status, 200, 'nothing waits in memory past MAXMEMORY: reads go on')

  // Shutdown holds (SHUTDOWN_TIMEOUT) for the messages the stream still keeps: not ready,
  // still alive, until the endpoint closes with the process.
  k.proc.kill('SIGTERM')
  const stopping = await waitFor(async () => { const r = await get(base, '/readyz'); return r.status === 503 ? r : null }, { what: '/readyz 503 at shutdown' })
  assert.match(stopping.text, /^not accepting connections/)
  assert.equal((await get(base, '/livez')).status, 200)
  assert.equal(await k.exited, 0)
})
