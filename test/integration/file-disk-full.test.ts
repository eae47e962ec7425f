// Issue 10 finding 6 (first half): a file stream on a full disk. A batch whose writev fails
// part-way (ENOSPC) is cut back to where it started, so that the whole batch can go to the
// backup without its first frames staying in the primary too: every frame exactly once.
// The primary is a real 2 MiB tmpfs (the tests run as root), the backup a normal folder.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { FILES_WITH_BACKUP, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { listFiles, readFrameFiles } from '../helpers/frames.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'
import { NEEDS_ROOT, tmpfsDir } from '../helpers/tmpfs.ts'

const FRAMES = 6000
const PAYLOAD = 900

/** A temp folder whose `primary` is a fresh 2 MiB tmpfs, unmounted after the test. */
async function smallDisk (): Promise<{ dir: string, primary: string }> {
  const dir = await tmpfsDir('kahets-full-', { primary: '2m' })
  return { dir, primary: join(dir, 'primary') }
}

function payload (i: number): string {
  return `m${i}:`.padEnd(PAYLOAD, 'x')
}


test('a write that fails part-way on a full disk is cut back: every frame once across primary and backup', { timeout: 120_000, skip: NEEDS_ROOT }, async () => {
  const { dir, primary } = await smallDisk()
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: FILES_WITH_BACKUP,
      buckets: [{ id: 'full', streams: ['files'], batch: 100, batchTimeout: 20 }],
    },
  })
  const base = k.metrics
  const client = await KahetsClient.connect(k.socket)
  for (let i = 0; i < FRAMES; i++) if (!client.send('full', payload(i))) await client.drain()
  await client.close()
  const settled = await waitFor(async () => {
    const s = await scrape(base)
    const t = assertIdentity(s, 'full', 'files')
    return t.inFlight === 0 && t.delivered + t.backedUp === FRAMES ? s : null
  }, { timeoutMs: 60_000, what: 'every frame delivered or backed up' })
  assert.equal(await k.stop(), 0, k.output())

  const seen = new Map<string, number>()
  for (const d of [primary, join(dir, 'backup')]) {
    // readFrameFiles throws on a torn tail: a cut-back file ends in a whole frame.
    for (const { frames } of await readFrameFiles(d)) {
      for (const f of frames) {
        const id = f.payload.toString().split(':')[0]!
        seen.set(id, (seen.get(id) ?? 0) + 1)
      }
    }
  }
  const twice = [...seen].filter(([, n]) => n > 1)
  assert.deepEqual(twice.slice(0, 10), [], `${twice.length} frames written twice`)
  assert.equal(seen.size, FRAMES, 'every frame arrived')
  assert.ok((await listFiles(primary)).length > 0, 'the primary took what fitted')
  assert.ok(sample(settled, 'kahets_file_writes_undone_total', { stream: 'files' }) >= 1, 'the cut-back is counted')
  assert.ok(sample(settled, 'kahets_file_bytes_undone_total', { stream: 'files' }) > 0)
  assert.ok(k.logs().some((l) => l.msg === 'write failed part-way; its bytes were cut off again so that the batch is written once'), 'and logged')
})

test('once space comes back the backup is replayed into the primary: every frame there, once; no replay while the disk is full', { timeout: 120_000, skip: NEEDS_ROOT }, async () => {
  const { dir, primary } = await smallDisk()
  // Not kahets's: taking it away is what frees the space.
  await writeFile(join(primary, 'filler'), Buffer.alloc(1536 * 1024))
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/primary', fileNameTemplate: '{bucket}-{ts}-{rand}.frames' }, backup: { type: 'file', settings: { path: '{dir}/backup' } } } },
      buckets: [{ id: 'full', streams: ['files'], batch: 100, batchTimeout: 20 }],
    },
  })
  const base = k.metrics
  const frames = 2000
  const client = await KahetsClient.connect(k.socket)
  for (let i = 0; i < frames; i++) if (!client.send('full', payload(i))) await client.drain()
  await client.close()
  await waitFor(async () => { const t = assertIdentity(await scrape(base), 'full', 'files'); return t.inFlight === 0 && t.backedUp > 0 && t.delivered + t.backedUp === frames }, { timeoutMs: 30_000, what: 'the overflow on the backup' })
  // Probes come every second; with the disk still full none may start a replay.
  await new Promise((resolve) => setTimeout(resolve, 2500))
  assert.equal(sample(await scrape(base), 'kahets_stream_mode', { stream: 'files', mode: 'backup' }), 1, 'still on the backup')
  assert.ok(!k.logs().some((l) => l.msg === 'replay interrupted; staying on the backup'), 'no replay into a full disk')

  await unlink(join(primary, 'filler'))
  // "ok", not just 200: on its backup the stream is "degraded" and /healthz still 200.
  await waitFor(async () => (await (await fetch(`${base}/healthz`)).json() as { status: string }).status === 'ok', { timeoutMs: 30_000, what: 'the primary to take writes again' })
  assert.equal(await k.stop(), 0, k.output())
  const payloads = (await readFrameFiles(primary)).flatMap((f) => f.frames.map((x) => x.payload.toString().split(':')[0]!))
  assert.deepEqual(await listFiles(join(dir, 'backup')), [], 'the backup was replayed and removed')
  assert.equal(new Set(payloads).size, payloads.length, 'no frame twice')
  assert.equal(payloads.length, frames, 'every frame in the primary')
})
