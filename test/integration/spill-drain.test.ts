// Issue 10, finding 6 (second half): with the primary and its backup both full and MAXMEMORY
// reached, messages spill to the backup and wait there; once space comes back they must be
// replayed into the primary within two probe intervals, without a restart.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { startKahetsWithMetrics } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'
import { NEEDS_ROOT, fillDisk, tmpfsDir } from '../helpers/tmpfs.ts'

const FRAMES = 30_000
const PAYLOAD = 'p'.repeat(180)
// The file stream's probe interval (bucket-manager.ts DEFAULT_FILE_PROBE_MS).
const PROBE_MS = 1000

test('spilled messages drain into the primary once space comes back, without a restart', { skip: NEEDS_ROOT }, async (t) => {
  const dir = await tmpfsDir('kahets-spill-', { primary: '16m', backup: '16m' })
  const fillers = [await fillDisk(join(dir, 'primary'), 256 * 1024), await fillDisk(join(dir, 'backup'), 256 * 1024)]
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/primary/out' }, backup: { type: 'file', settings: { path: '{dir}/backup/out' } } } },
      buckets: [{ id: 'disk', streams: ['files'], batch: 500, batchTimeout: 20 }],
    },
    env: { MAXMEMORY: '4MB' },
  })
  const base = k.metrics
  const client = await KahetsClient.connect(k.socket)
  const sending = (async () => {
    for (let i = 0; i < FRAMES; i++) if (!client.send('disk', `${i}|${PAYLOAD}`)) await client.drain()
    await client.close()
  })()
  // Both disks full: the primary failed over, the backup holds what it cannot write, and
  // MAXMEMORY made buckets spill (or reads pause).
  await waitFor(async () => {
    const s = await scrape(base)
    return sample(s, 'kahets_stream_mode', { stream: 'files', mode: 'backup' }) === 1 &&
      sample(s, 'kahets_stream_mode', { stream: 'files.backup', mode: 'retrying' }) === 1 &&
      sample(s, 'kahets_buffered_bytes') > 3 * 1024 * 1024
  }, { what: 'both disks full and memory under pressure', timeoutMs: 30_000 })

  for (const f of fillers) await rm(f)
  const freed = Date.now()
  await sending
  const inPrimary = async (): Promise<number[]> => (await readFrameFiles(join(dir, 'primary', 'out'))).flatMap((f) => f.frames.map((x) => Number(x.payload.toString().split('|')[0])))
  // Drained means every message in the primary. An empty backup folder alone is not: messages
  // the full backup still held in memory count as backed up and are in no file yet (a CI run
  // saw the folder empty with 16,376 of 30,000 in the primary).
  const m = await waitFor(async () => {
    const s = await scrape(base)
    const t = assertIdentity(s, 'disk', 'files')
    return t.inFlight === 0 && sample(s, 'kahets_stream_mode', { stream: 'files', mode: 'normal' }) === 1 &&
      (await readFrameFiles(join(dir, 'backup', 'out'))).length === 0 && new Set(await inPrimary()).size === FRAMES ? s : null
  }, { what: 'the backup drained into the primary', timeoutMs: 60_000, intervalMs: 200 })
  const took = Date.now() - freed
  t.diagnostic(`drained ${took} ms after the space came back`)
  // Two probe intervals, plus the time to write and replay a few MB on a loaded machine.
  assert.ok(took < 2 * PROBE_MS + 5000, `drained ${took} ms after the space came back`)
  const terms = assertIdentity(m, 'disk', 'files')
  assert.equal(terms.received, FRAMES)
  assert.equal(terms.dropped, 0)
  assert.equal(terms.delivered + terms.backedUp, FRAMES)
  assert.equal(new Set(await inPrimary()).size, FRAMES, 'every message in the primary')
  // Not asserted here: none twice. A writev cut short by ENOSPC is written again in full
  // (issue 10, finding 6, first half: the file stream's part).
  assert.equal(await k.stop(), 0)
})
