// The bucket manager (src/actors/bucket-manager.ts) as supervisor, over fake streams: a failed
// stream fails over alone, a refused destination never reaches it, shutdown hands on or counts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import pino from 'pino'
import { BucketManager } from '../../src/actors/bucket-manager.ts'
import { parseBucketsConfig } from '../../src/config/buckets.ts'
import { ErrorCodes, KahetsError } from '../../src/errors.ts'
import { MemoryBudget } from '../../src/memory-budget.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { Stats } from '../../src/stats.ts'
import { FakeStream } from '../helpers/fake-stream.ts'
import { decodeAll } from '../helpers/frames.ts'
import { waitFor } from '../helpers/wait.ts'

const log = pino({ level: 'silent' })

function setup (shutdownTimeoutMs = 1000) {
  const config = parseBucketsConfig({
    streamsConfigs: {
      one: { type: 'file', settings: { path: '/nonexistent/one' }, backup: { type: 'file', settings: { path: '/nonexistent/one-backup' } } },
      two: { type: 'file', settings: { path: '/nonexistent/two' } },
    },
    buckets: [{ id: 'both', streams: ['one', 'two'], batch: 1, batchTimeout: 10 }],
    defaultBucket: { id: 'default', streams: ['one'], batch: 1, batchTimeout: 10 },
  })
  const streams = new Map<string, FakeStream>()
  const stats = new Stats()
  const manager = new BucketManager({
    config,
    stats,
    budget: new MemoryBudget(16 * 1024 * 1024),
    log,
    // The backup keeps (no) files, so a replay has nothing to read.
    createStream: (sc) => {
      const path = sc.type === 'file' ? sc.settings.path : ''
      const s = new FakeStream(path.endsWith('backup'))
      streams.set(path.split('/').at(-1)!, s)
      return s
    },
    shutdownTimeoutMs,
  })
  const send = (bucket: string, ...payloads: string[]): void => {
    const bytes = encodeFrames(payloads.map((payload) => ({ bucket, payload })))
    manager.deliver(bucket, decodeAll(bytes).frames, bytes.length)
  }
  const flow = (bucket: string, stream: string) => stats.bucket(bucket).flow(stream)
  return { manager, streams, send, flow }
}

test('a failed stream fails over to its backup; the other stream of the same bucket keeps delivering', async () => {
  const { manager, streams, send, flow } = setup()
  streams.get('one')!.down = true
  send('both', 'm0')
  await waitFor(() => flow('both', 'one').backedUp === 1 && flow('both', 'two').delivered === 1)
  assert.equal(manager.streams.get('one')!.mode, 'backup')
  assert.equal(manager.streams.get('two')!.mode, 'normal')
  assert.deepEqual(streams.get('one-backup')!.written.get('both'), ['m0'])
  await manager.stop()
})

test('a destination refused for good drops that bucket\'s frames; the stream stays normal for the others', async () => {
  const { manager, streams, send, flow } = setup()
  streams.get('one')!.refuse.set('bad', new KahetsError(ErrorCodes.DESTINATION_REJECTED, 'ENAMETOOLONG', { scope: 'destination', retriable: false }))
  send('bad', 'b0')
  send('good', 'g0')
  await waitFor(() => flow('bad', 'one').droppedTotal === 1 && flow('good', 'one').delivered === 1)
  assert.equal(flow('bad', 'one').dropped.get('destination_rejected'), 1)
  assert.equal(manager.streams.get('one')!.mode, 'normal')
  await manager.stop()
})

test('frames of a bucket nobody serves are counted as unknown_bucket', async () => {
  const config = parseBucketsConfig({ streamsConfigs: { two: { type: 'file', settings: { path: '/nonexistent/two' } } }, buckets: [{ id: 'known', streams: ['two'] }] })
  const stats = new Stats()
  const manager = new BucketManager({ config, stats, budget: new MemoryBudget(1024 * 1024), log, createStream: () => new FakeStream(), shutdownTimeoutMs: 100 })
  const bytes = encodeFrames([{ bucket: 'nobody', payload: 'x' }])
  manager.deliver('nobody', decodeAll(bytes).frames, bytes.length)
  assert.equal(stats.unknownBucketFrames, 1)
  assert.equal(stats.bucket('nobody').flow('').dropped.get('unknown_bucket'), 1)
  await manager.stop()
})

test('past MAX_BUCKETS names a new one is refused and counted under (other); listed buckets and names already seen are still served', async () => {
  const config = parseBucketsConfig({
    streamsConfigs: { two: { type: 'file', settings: { path: '/nonexistent/two' } } },
    buckets: [{ id: 'listed', streams: ['two'], batch: 1, batchTimeout: 10 }],
    defaultBucket: { id: 'default', streams: ['two'], batch: 1, batchTimeout: 10 },
  })
  const stats = new Stats()
  const stream = new FakeStream()
  const manager = new BucketManager({ config, stats, budget: new MemoryBudget(1024 * 1024), log, createStream: () => stream, shutdownTimeoutMs: 100, maxBuckets: 3 })
  const send = (bucket: string, payload: string): void => {
    const bytes = encodeFrames([{ bucket, payload }])
    manager.deliver(bucket, decodeAll(bytes).frames, bytes.length)
  }
  for (const name of ['a', 'b', 'c', 'd', 'e']) send(name, `${name}0`)
  send('listed', 'l0') // the buckets file's own: not held back by the names clients made up
  send('a', 'a1')
  await waitFor(() => stats.bucket('listed').flow('two').delivered === 1 && stats.bucket('a').flow('two').delivered === 2)
  assert.deepEqual([...stream.written.keys()].sort(), ['a', 'b', 'c', 'listed'])
  assert.equal(stats.bucket('(other)').flow('').dropped.get('too_many_buckets'), 2)
  assert.equal(stats.bucket('(other)').received, 2)
  assert.equal(stats.buckets.has('d'), false, 'no state kept for a refused name')
  assert.deepEqual([...manager.buckets.keys()].sort(), ['a', 'b', 'c', 'listed'])
  await manager.stop()

  // Without a defaultBucket the names past the limit are unknown buckets, counted under (other) too.
  const noDefault = parseBucketsConfig({ streamsConfigs: { two: { type: 'file', settings: { path: '/nonexistent/two' } } }, buckets: [{ id: 'listed', streams: ['two'] }] })
  const stats2 = new Stats()
  const manager2 = new BucketManager({ config: noDefault, stats: stats2, budget: new MemoryBudget(1024 * 1024), log, createStream: () => new FakeStream(), shutdownTimeoutMs: 100, maxBuckets: 2 })
  for (const name of ['x', 'y', 'z']) {
    const bytes = encodeFrames([{ bucket: name, payload: 'p' }])
    manager2.deliver(name, decodeAll(bytes).frames, bytes.length)
  }
  assert.equal(stats2.bucket('x').flow('').dropped.get('unknown_bucket'), 1)
  assert.equal(stats2.bucket('(other)').flow('').dropped.get('unknown_bucket'), 1)
  assert.equal(stats2.buckets.has('z'), false)
  await manager2.stop()
})

test('at shutdown, a stream without a backup that still fails has its held frames counted (shutdown) after the timeout', async () => {
  const { manager, streams, send, flow } = setup(50)
  streams.get('two')!.down = true
  send('both', 'm0')
  await waitFor(() => manager.streams.get('two')!.mode === 'retrying')
  await manager.stop()
  assert.equal(flow('both', 'two').dropped.get('shutdown'), 1)
  assert.equal(flow('both', 'one').delivered, 1)
})
