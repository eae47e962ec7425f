// sliceBy: "key" on the real process (issue 14): a 30% copy holds every message of about 30%
// of the keys and nothing of the others, and the same keys after a restart.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { makeTempDir, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

const KEYS = Array.from({ length: 200 }, (_, i) => `user-${i}`)
const PER_KEY = 25

const buckets = {
  streamsConfigs: {
    all: { type: 'file', settings: { path: '{dir}/all' } },
    copy: { type: 'file', slice: 0.3, sliceBy: 'key', settings: { path: '{dir}/copy' } },
  },
  buckets: [{ id: 'req', streams: ['all', 'copy'], batch: 500, batchTimeout: 20 }],
}

/** One run: sends PER_KEY messages of every key (interleaved), stops, returns the copy's messages per key. */
async function run (dir: string, round: number): Promise<Map<string, string[]>> {
  const k = await startKahetsWithMetrics({ buckets, dir })
  const c = await KahetsClient.connect(k.socket)
  for (let i = 0; i < PER_KEY; i++) for (const key of KEYS) c.send('req', `${round}:${key}:${i}`, key)
  await c.close()
  const total = KEYS.length * PER_KEY
  const m = await waitFor(async () => {
    const s = await scrape(k.metrics)
    return sample(s, 'kahets_delivered_total', { bucket: 'req', stream: 'all' }) === total &&
      sample(s, 'kahets_in_flight', { bucket: 'req', stream: 'copy' }) === 0 ? s : null
  }, { what: `round ${round} delivered` })
  const copy = assertIdentity(m, 'req', 'copy')
  assertIdentity(m, 'req', 'all')
  assert.equal(copy.received, total)
  assert.equal(await k.stop(), 0, k.output())

  const byKey = new Map<string, string[]>()
  for (const f of await readFrameFiles(join(dir, 'copy'))) {
    for (const frame of f.frames) {
      const [r, key] = frame.payload.toString().split(':')
      if (r !== String(round)) continue
      assert.equal(frame.key?.toString(), key, 'the key is kept')
      byKey.set(key!, [...(byKey.get(key!) ?? []), frame.payload.toString()])
    }
  }
  assert.equal(copy.delivered, [...byKey.values()].reduce((n, l) => n + l.length, 0), 'the copy holds what was counted delivered')
  return byKey
}

test('sliceBy key: each of 200 keys is all-or-nothing in a 30% copy, and the same keys after a restart', async () => {
  const dir = await makeTempDir()
  const first = await run(dir, 1)
  for (const [key, msgs] of first) assert.equal(msgs.length, PER_KEY, `${key}: all its messages or none`)
  assert.ok(first.size > 40 && first.size < 80, `about 30% of 200 keys: ${first.size}`)

  const second = await run(dir, 2)
  for (const [key, msgs] of second) assert.equal(msgs.length, PER_KEY, `${key}: all its messages or none`)
  assert.deepEqual([...second.keys()].sort(), [...first.keys()].sort(), 'the same keys after a restart')
})
