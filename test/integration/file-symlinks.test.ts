// Issue 10 finding 8: a symlink planted at path/<bucket> must not lead kahets outside `path`:
// nothing is written there, maxFiles deletes nothing there, the bucket's frames go to the
// backup instead, and the other buckets' frames all arrive.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { makeTempDir, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

test('a symlink at path/<bucket> is not followed: nothing written or deleted outside path', { timeout: 60_000 }, async () => {
  const dir = await makeTempDir()
  const outside = join(dir, 'outside')
  await mkdir(outside)
  // Two unrelated files whose names the template could have produced.
  const unrelated = { '1700000000-AbCdEfGh.frames': 'keep me 1', '1700000001-AbCdEfGh.frames': 'keep me 2' }
  for (const [name, text] of Object.entries(unrelated)) await writeFile(join(outside, name), text)
  await mkdir(join(dir, 'out'))
  await symlink(outside, join(dir, 'out', 'evil'))
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: {
        files: {
          type: 'file',
          settings: { path: '{dir}/out', maxFiles: 1 },
          backup: { type: 'file', settings: { path: '{dir}/backup' } },
        },
      },
      buckets: ['evil', 'good'].map((id) => ({ id, streams: ['files'], batch: 10, batchTimeout: 10 })),
    },
  })
  const base = k.metrics
  const client = await KahetsClient.connect(k.socket)
  for (let i = 0; i < 100; i++) {
    client.send('evil', `e${i}`)
    client.send('good', `g${i}`)
  }
  await client.close()
  const m = await waitFor(async () => {
    const s = await scrape(base)
    const settled = ['evil', 'good'].every((b) => { const t = assertIdentity(s, b, 'files'); return t.inFlight === 0 && t.delivered + t.backedUp === 100 })
    return settled ? s : null
  }, { timeoutMs: 30_000, what: 'both buckets settled' })
  assert.equal(await k.stop(), 0, k.output())

  assert.deepEqual((await readdir(outside)).sort(), Object.keys(unrelated), 'nothing written outside path, nothing deleted there')
  for (const [name, text] of Object.entries(unrelated)) assert.equal(await readFile(join(outside, name), 'utf8'), text)
  const frames = [...await readFrameFiles(join(dir, 'out')), ...await readFrameFiles(join(dir, 'backup'))].flatMap((f) => f.frames)
  const evil = frames.filter((f) => f.bucket === 'evil').map((f) => f.payload.toString())
  const good = frames.filter((f) => f.bucket === 'good').map((f) => f.payload.toString())
  assert.deepEqual(evil.sort(), Array.from({ length: 100 }, (_, i) => `e${i}`).sort(), 'the bucket\'s frames are in the backup, once')
  assert.deepEqual(good.sort(), Array.from({ length: 100 }, (_, i) => `g${i}`).sort(), 'every frame of the other bucket, once')
  assert.equal(sample(m, 'kahets_backed_up_total', { bucket: 'evil', stream: 'files' }), 100)
  assert.ok(k.logs().some((l) => JSON.stringify(l).includes('kahets follows no symlink below path')), 'the refusal names the symlink')
})
