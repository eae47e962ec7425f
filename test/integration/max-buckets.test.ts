// MAX_BUCKETS (docs/protocol.md#what-happens-to-bad-input, docs/guarantees.md#bounded-memory):
// a client that makes up a new bucket name per message (an id in the name) must not grow
// kahets without bound. Every name kept costs a bucket and its series in /metrics; past
// MAX_BUCKETS a new name is dropped and counted under bucket "(other)", while the buckets
// the file lists and the names already in use keep flowing.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { AckClient, KahetsClient } from '../../clients/node/index.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { makeTempDir, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

const MAX = 200
const NAMES = 1000

test('1,000 made-up bucket names with MAX_BUCKETS=200: the first 199 served, the rest dropped and counted under (other); listed and known buckets keep flowing', async () => {
  const dir = await makeTempDir()
  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out' } } },
      buckets: [{ id: 'orders', streams: ['files'], batch: 100, batchTimeout: 20 }],
      defaultBucket: { id: 'default', streams: ['files'], batch: 100, batchTimeout: 20 },
    },
    env: { MAX_BUCKETS: String(MAX) },
  })
  const client = await KahetsClient.connect(k.socket)
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < NAMES; i++) if (!client.send(`req-${i}`, `req-${i}:${round}`)) await client.drain()
  }
  for (let i = 0; i < 100; i++) client.send('orders', `order-${i}`)
  await client.close()

  // The buckets file's "orders" is one of the 200 names: 199 made-up ones fit.
  const served = MAX - 1
  const dropped = (NAMES - served) * 2
  const m = await waitFor(async () => {
    const s = await scrape(k.metrics)
    return sample(s, 'kahets_delivered_total') === served * 2 + 100 && sample(s, 'kahets_dropped_total', { bucket: '(other)' }) === dropped ? s : null
  }, { what: 'every frame delivered or dropped' })
  assert.equal(sample(m, 'kahets_dropped_total', { bucket: '(other)', stream: '', reason: 'too_many_buckets' }), dropped)
  assert.equal(assertIdentity(m, 'orders', 'files').delivered, 100)
  assert.equal(assertIdentity(m, 'req-0', 'files').delivered, 2)
  assert.equal(assertIdentity(m, `req-${served - 1}`, 'files').delivered, 2)
  const labels = new Set([...m.keys()].map((series) => /bucket="([^"]*)"/.exec(series)?.[1]).filter((b) => b !== undefined))
  assert.equal(labels.size, MAX + 1, 'series for 200 names and (other), not for 1,000')
  assert.ok(!labels.has(`req-${served}`))

  // A name already in use still flows; a new one in acknowledged mode is refused, with the reason.
  const ack = await AckClient.connect(k.socket, { ack: 'durable' })
  ack.send('req-5', 'again')
  ack.send('req-new', 'refused')
  assert.deepEqual(await ack.flush(10_000), { settled: 2, refused: 1 })
  await ack.close()

  assert.equal(await k.stop(), 0, k.output())
  const errors = k.logs().filter((l) => l.msg === 'frames for a new bucket name dropped: MAX_BUCKETS names are in use')
  assert.ok(errors.length >= 1 && errors.length < 10, `rate-limited, not one line per frame (${errors.length})`)
  assert.equal(errors[0]!.maxBuckets, MAX)

  const written = new Map<string, string[]>()
  for (const { frames } of await readFrameFiles(join(dir, 'out'))) {
    for (const f of frames) written.set(f.bucket, [...(written.get(f.bucket) ?? []), f.payload.toString()])
  }
  assert.equal(written.size, MAX)
  assert.deepEqual(written.get('req-5'), ['req-5:0', 'req-5:1', 'again'])
  assert.equal(written.get('orders')?.length, 100)
  assert.equal(written.has('req-new'), false)
})
