// Issue 10 finding 4: thousands of bucket names on one file stream, with kahets limited to
// 256 file descriptors. The stream keeps at most maxOpenFiles files open (closing the least
// recently written and appending to them again later), treats EMFILE as pressure to close
// files rather than a failure, and creates no file it cannot write: every frame arrives,
// no empty file is left, nothing is dropped at SIGTERM.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { KahetsClient } from '../../clients/node/index.ts'
import { makeTempDir, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { listFiles, readFrameFiles } from '../helpers/frames.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

const run = promisify(execFile)
const BUCKETS = 5000
const ROUNDS = 2
const B1_FRAMES = 100

test('5,000 bucket names under a 256-descriptor limit: every frame written, no empty file, nothing dropped', { timeout: 300_000 }, async () => {
  const dir = await makeTempDir()
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out' }, backup: { type: 'file', settings: { path: '{dir}/backup' } } } },
      buckets: [],
      defaultBucket: { id: 'default', streams: ['files'], batch: 1000, batchTimeout: 50 },
    },
  })
  const base = k.metrics
  // The limit applies from here on; kahets has opened no file of the stream yet.
  await run('prlimit', ['--pid', String(k.pid), '--nofile=256:256'])

  const delivered = async (): Promise<{ delivered: number, backedUp: number }> => {
    const s = await scrape(base)
    return { delivered: sample(s, 'kahets_delivered_total'), backedUp: sample(s, 'kahets_backed_up_total') }
  }
  const client = await KahetsClient.connect(k.socket)
  let sent = 0
  for (let round = 0; round < ROUNDS; round++) {
    for (let b = 0; b < BUCKETS; b++) {
      if (!client.send(`b${b}`, `b${b}:r${round}`)) await client.drain()
      sent++
    }
    if (round === 0) for (let i = 0; i < B1_FRAMES; i++, sent++) client.send('b1', `b1:x${i}`)
    await client.flush()
    // The second round appends to files the first round's buckets had to close.
    const target = sent
    await waitFor(async () => { const d = await delivered(); return d.delivered + d.backedUp >= target }, { timeoutMs: 90_000, intervalMs: 500, what: `round ${round} written` })
  }
  await client.close()
  const s = await scrape(base)
  for (const bucket of ['b0', 'b1', `b${BUCKETS - 1}`]) assert.equal(assertIdentity(s, bucket, 'files').delivered, bucket === 'b1' ? ROUNDS + B1_FRAMES : ROUNDS)
  assert.ok(sample(s, 'kahets_open_files', { stream: 'files' }) <= 256, 'at most maxOpenFiles open')
  assert.ok(sample(s, 'kahets_file_descriptor_pressure_total', { stream: 'files' }) >= 1, 'the limit was reached, and counted')
  assert.equal(await k.stop(), 0, k.output())
  assert.ok(!k.logs().some((l) => l.msg === 'messages dropped'), 'nothing dropped')

  const files = [...await listFiles(join(dir, 'out')), ...await listFiles(join(dir, 'backup'))]
  const empty = []
  for (const f of files) if ((await stat(f)).size === 0) empty.push(f)
  assert.deepEqual(empty.slice(0, 5), [], `${empty.length} empty files`)
  const seen = new Map<string, number>()
  for (const d of ['out', 'backup']) {
    for (const { frames } of await readFrameFiles(join(dir, d))) {
      for (const f of frames) {
        const p = f.payload.toString()
        assert.ok(p.startsWith(`${f.bucket}:`), `frame ${p} in bucket ${f.bucket}`)
        seen.set(p, (seen.get(p) ?? 0) + 1)
      }
    }
  }
  assert.equal(seen.size, sent, 'every frame of every bucket is in the files')
  assert.ok([...seen.values()].every((n) => n === 1), 'none twice')
  for (let i = 0; i < B1_FRAMES; i++) assert.ok(seen.has(`b1:x${i}`), `b1 frame ${i}`)
  // Nothing went to the backup: running out of descriptors is pressure, not a failure.
  assert.deepEqual(await listFiles(join(dir, 'backup')), [])
  // Fewer files than writes: a closed file of kahets's own is appended to again.
  const written = await listFiles(join(dir, 'out'))
  assert.ok(written.length <= BUCKETS + 5, `${written.length} files for ${BUCKETS} buckets`)
})
