// A file stream that cannot write (its folder is a file: think full or read-only disk)
// fails over to its backup, and comes back once it can write again (the backup is then
// replayed into it); with no backup it
// holds its messages and retries instead of dropping them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { FILES_WITH_BACKUP, makeTempDir, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

async function send (socket: string, from: number, to: number): Promise<void> {
  const c = await KahetsClient.connect(socket)
  for (let i = from; i < to; i++) if (!c.send('disk', `m${i}`)) await c.drain()
  await c.close()
}

test('a failing file stream fails over to its backup and recovers', async () => {
  const dir = await makeTempDir()
  await writeFile(join(dir, 'primary'), 'in the way') // the stream's folder cannot be created
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: FILES_WITH_BACKUP,
      buckets: [{ id: 'disk', streams: ['files'], batch: 100, batchTimeout: 20 }],
    },
  })
  const base = k.metrics
  await send(k.socket, 0, 1000)
  const during = await waitFor(async () => { const s = await scrape(base); return sample(s, 'kahets_in_flight') === 0 ? s : null }, { what: 'settled on the backup' })
  assert.equal(assertIdentity(during, 'disk', 'files').backedUp, 1000)
  const health = await fetch(`${base}/healthz`)
  assert.equal(health.status, 200, 'on its backup a stream is degraded, not failing: nothing is lost')
  const body = await health.json() as { status: string, degraded: Array<{ stream: string, mode: string, code?: string, reason?: string }> }
  assert.deepEqual({ ...body, degraded: body.degraded.map(({ stream, mode }) => ({ stream, mode })) }, { status: 'degraded', degraded: [{ stream: 'files', mode: 'backup' }] })
  assert.match(body.degraded[0]!.reason ?? '', /primary/, '/healthz says why: the error naming the folder')

  await rm(join(dir, 'primary'))
  await waitFor(async () => (await (await fetch(`${base}/healthz`)).json() as { status: string }).status === 'ok', { what: 'the primary to recover' })
  await send(k.socket, 1000, 2000)
  const after = await waitFor(async () => { const s = await scrape(base); return sample(s, 'kahets_in_flight') === 0 && sample(s, 'kahets_delivered_total') > 0 ? s : null }, { what: 'settled on the primary' })
  const terms = assertIdentity(after, 'disk', 'files')
  assert.equal(await k.stop(), 0)
  const backup = (await readFrameFiles(join(dir, 'backup'))).flatMap((f) => f.frames.map((x) => x.payload.toString()))
  const primary = (await readFrameFiles(join(dir, 'primary'))).flatMap((f) => f.frames.map((x) => x.payload.toString()))
  // Once the primary writes again, the backup is replayed into it (oldest first) and removed.
  assert.deepEqual(backup, [])
  assert.deepEqual(primary, Array.from({ length: 2000 }, (_, i) => `m${i}`), 'every message, in order')
  assert.equal(terms.delivered, 1000)
  assert.equal(sample(after, 'kahets_replayed_total', { bucket: 'disk', stream: 'files' }), 1000)
})

test('with no backup a failing file stream holds its messages and writes them once it can', async () => {
  const dir = await makeTempDir()
  await writeFile(join(dir, 'primary'), 'in the way')
  const k = await startKahetsWithMetrics({
    dir,
    buckets: { streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/primary' } } }, buckets: [{ id: 'disk', streams: ['files'], batch: 100, batchTimeout: 20 }] },
  })
  const base = k.metrics
  await send(k.socket, 0, 1000)
  await waitFor(async () => sample(await scrape(base), 'kahets_stream_mode', { stream: 'files', mode: 'retrying' }) === 1, { what: 'retrying' })
  const held = await scrape(base)
  assert.equal(assertIdentity(held, 'disk', 'files').inFlight, 1000, 'held in memory, not dropped')
  await rm(join(dir, 'primary'))
  const m = await waitFor(async () => { const s = await scrape(base); return sample(s, 'kahets_delivered_total', { bucket: 'disk' }) === 1000 ? s : null }, { what: 'held messages written' })
  assertIdentity(m, 'disk', 'files')
  assert.equal(await k.stop(), 0)
  const written = (await readFrameFiles(join(dir, 'primary'))).flatMap((f) => f.frames.map((x) => x.payload.toString()))
  assert.deepEqual(written, Array.from({ length: 1000 }, (_, i) => `m${i}`), 'in order')
})
