// Issue 10 finding 5: `rm -rf` of a file stream's folder while kahets writes into it. Before
// and after every write the stream checks that the file's path still leads to it; a file
// gone from its path is recreated there (folders too), counted and logged. Nothing counted
// delivered after the delete may be in the deleted file.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { makeTempDir, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

const FRAMES = 4000

test('a deleted output folder is recreated: every frame delivered after the delete is in the new files', { timeout: 60_000 }, async () => {
  const dir = await makeTempDir()
  const out = join(dir, 'out')
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out', fileNameTemplate: '{bucket}{PS}{ts}-{rand}.frames' } } },
      buckets: [{ id: 'v', streams: ['files'], batch: 20, batchTimeout: 5 }],
    },
  })
  const base = k.metrics
  const delivered = async (): Promise<number> => sample(await scrape(base), 'kahets_delivered_total', { bucket: 'v', stream: 'files' })
  const client = await KahetsClient.connect(k.socket)
  // Frames keep coming while the folder is deleted: a steady trickle, one bucket, in order.
  const sender = (async () => {
    for (let i = 0; i < FRAMES; i++) {
      client.send('v', `m${i}`)
      if (i % 20 === 19) {
        await client.flush()
        await new Promise((resolve) => setTimeout(resolve, 2))
      }
    }
    await client.close()
  })()
  await waitFor(async () => await delivered() >= FRAMES / 4, { what: 'a quarter delivered' })
  // kahets may recreate a file while rm walks the folder (ENOTEMPTY): rm then tries again.
  await rm(out, { recursive: true, force: true, maxRetries: 20, retryDelay: 5 })
  // Delivery is in order within a bucket, so the frames counted delivered by now are a prefix
  // m0…m(deletedAt-1); everything from m(deletedAt) on was written after the delete.
  const deletedAt = await delivered()
  await sender
  const m = await waitFor(async () => { const s = await scrape(base); return sample(s, 'kahets_delivered_total', { bucket: 'v' }) === FRAMES ? s : null }, { what: 'every frame delivered' })
  assertIdentity(m, 'v', 'files')
  assert.ok(deletedAt < FRAMES, 'the delete happened while frames were still coming')
  assert.equal(await k.stop(), 0, k.output())

  const payloads = (await readFrameFiles(out)).flatMap((f) => f.frames.map((x) => Number(x.payload.toString().slice(1))))
  assert.ok(payloads.length > 0, 'new files were written')
  // What survives is a gap-free run up to the last frame that starts no later than deletedAt.
  const first = payloads[0]!
  assert.ok(first <= deletedAt, `the new files start at m${first}, but m${deletedAt} was delivered after the delete`)
  assert.deepEqual(payloads, Array.from({ length: FRAMES - first }, (_, i) => first + i), 'every frame from there on, once, in order')
  assert.ok(sample(m, 'kahets_files_reopened_total', { stream: 'files', reason: 'unlinked' }) >= 1, 'the reopen is counted')
  assert.ok(k.logs().some((l) => l.msg === 'file no longer at its path (deleted or replaced); recreated there'), 'and logged')
  assert.ok(!k.logs().some((l) => String(l.msg).startsWith('stream failed')), 'handled by the stream itself: no failover, no retrying')
})
