// The bucket actor (src/actors/bucket.ts) over stream actors with fake streams: when it
// flushes, how it samples a slice, and where MAXMEMORY's overflow goes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import pino from 'pino'
import type { Supervisor } from '../../src/actors/actor.ts'
import { BucketActor } from '../../src/actors/bucket.ts'
import { StreamActor } from '../../src/actors/stream-actor.ts'
import { MemoryBudget } from '../../src/memory-budget.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { Stats } from '../../src/stats.ts'
import { FakeStream } from '../helpers/fake-stream.ts'
import { decodeAll } from '../helpers/frames.ts'
import { waitFor } from '../helpers/wait.ts'
import { crc32 } from 'node:zlib'

const log = pino({ level: 'silent' })
const supervisor: Supervisor = { childFailed: () => 'resume' }

function setup (opts: { batch?: number, batchTimeout?: number, budget?: number, backup?: boolean, slice?: number, sliceBy?: 'random' | 'key', random?: () => number } = {}) {
  const stats = new Stats()
  const primary = new FakeStream()
  const backupStream = new FakeStream(true)
  const backup = opts.backup === true ? new StreamActor({ id: 's.backup', role: 'backup', stream: backupStream, backup: null, probeIntervalMs: 1000, stats, log, supervisor }) : null
  const stream = new StreamActor({ id: 's', role: 'primary', stream: primary, backup, probeIntervalMs: 1000, stats, log, supervisor })
  const budget = new MemoryBudget(opts.budget ?? 1024 * 1024)
  const bucketStats = stats.bucket('b')
  const flow = bucketStats.flow('s')
  const bucket = new BucketActor({
    name: 'b',
    config: { id: 'b', streams: ['s'], batch: opts.batch ?? 1000, batchTimeout: opts.batchTimeout ?? 60_000 },
    bindings: [{ stream, slice: opts.slice ?? 1, sliceBy: opts.sliceBy ?? 'random', flow }],
    stats: bucketStats,
    budget,
    log,
    supervisor,
    random: opts.random,
  })
  const send = (...payloads: string[]): void => {
    const bytes = encodeFrames(payloads.map((payload) => ({ bucket: 'b', payload })))
    bucket.tell({ type: 'frames', frames: decodeAll(bytes).frames, bytes: bytes.length })
  }
  const sendKeyed = (msgs: Array<{ key: string | null, payload: string }>): void => {
    const bytes = encodeFrames(msgs.map((m) => ({ bucket: 'b', ...m })))
    bucket.tell({ type: 'frames', frames: decodeAll(bytes).frames, bytes: bytes.length })
  }
  const stop = async (): Promise<void> => {
    await bucket.stop()
    await stream.stop()
    await backup?.stop()
  }
  return { primary, backupStream, flow, budget, send, sendKeyed, stop }
}

test('flushes once `batch` frames are pending, as one write', async () => {
  const { primary, flow, send, stop } = setup({ batch: 3 })
  send('a', 'b')
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(primary.written.get('b'), undefined, 'two of three: still pending')
  send('c')
  await waitFor(() => flow.delivered === 3)
  assert.deepEqual(primary.written.get('b'), ['a', 'b', 'c'])
  await stop()
})

test('flushes batchTimeout ms after the first pending frame', async () => {
  const { flow, send, stop } = setup({ batch: 1000, batchTimeout: 30 })
  const at = Date.now()
  send('a')
  await waitFor(() => flow.delivered === 1)
  assert.ok(Date.now() - at >= 25, 'not before the timeout')
  await stop()
})

test('a slice below 1 samples per frame and counts what it leaves out', async () => {
  let n = 0
  const { primary, flow, send, stop } = setup({ batch: 4, slice: 0.5, random: () => (n++ % 2 === 0 ? 0.1 : 0.9) })
  send('a', 'b', 'c', 'd')
  await waitFor(() => flow.delivered === 2)
  assert.deepEqual(primary.written.get('b'), ['a', 'c'])
  assert.equal(flow.sampledOut, 2)
  await stop()
})

test('sliceBy key: a key is in the slice when CRC-32(key) / 2^32 < slice, for all its frames; keyless frames at random', async () => {
  // zlib.crc32 is the reference README gives users to reproduce the decision.
  const keys = Array.from({ length: 50 }, (_, i) => `user-${i}`)
  const inSlice = new Set(keys.filter((k) => crc32(Buffer.from(k)) / 2 ** 32 < 0.3))
  assert.ok(inSlice.size > 5 && inSlice.size < 25, `a plausible share of keys: ${inSlice.size}`)
  let n = 0
  const { primary, flow, sendKeyed, stop } = setup({ batch: 152, slice: 0.3, sliceBy: 'key', random: () => (n++ % 2 === 0 ? 0.1 : 0.9) })
  const msgs = keys.flatMap((key) => [0, 1, 2].map((i) => ({ key, payload: `${key}:${i}` })))
  sendKeyed([...msgs, { key: null, payload: 'keyless-a' }, { key: null, payload: 'keyless-b' }])
  await waitFor(() => flow.delivered + flow.sampledOut === msgs.length + 2)
  const expected = msgs.filter((m) => inSlice.has(m.key)).map((m) => m.payload)
  assert.deepEqual(primary.written.get('b'), [...expected, 'keyless-a'], 'every frame of a picked key, in order; one keyless frame by the random draw')
  assert.equal(flow.sampledOut, msgs.length - expected.length + 1)
  await stop()
})

test('past MAXMEMORY\'s intake limit, frames spill to the stream\'s backup', async () => {
  const { backupStream, flow, send, stop } = setup({ budget: 200, backup: true })
  send('x'.repeat(300))
  await waitFor(() => flow.backedUp === 1)
  assert.deepEqual(backupStream.written.get('b'), ['x'.repeat(300)])
  assert.equal(flow.droppedTotal, 0)
  await stop()
})

test('sliceBy key: a key is in the slice when CRC-32(key) / 2^32 < slice, for all its frames; keyless frames at random', async () => {
  // zlib.crc32 is the reference README gives users to reproduce the decision.
  const keys = Array.from({ length: 50 }, (_, i) => `user-${i}`)
  const inSlice = new Set(keys.filter((k) => crc32(Buffer.from(k)) / 2 ** 32 < 0.3))
  assert.ok(inSlice.size > 5 && inSlice.size < 25, `a plausible share of keys: ${inSlice.size}`)
  let n = 0
  const { primary, flow, sendKeyed, stop } = setup({ batch: 152, slice: 0.3, sliceBy: 'key', random: () => (n++ % 2 === 0 ? 0.1 : 0.9) })
  const msgs = keys.flatMap((key) => [0, 1, 2].map((i) => ({ key, payload: `${key}:${i}` })))
  sendKeyed([...msgs, { key: null, payload: 'keyless-a' }, { key: null, payload: 'keyless-b' }])
  await waitFor(() => flow.delivered + flow.sampledOut === msgs.length + 2)
  const expected = msgs.filter((m) => inSlice.has(m.key)).map((m) => m.payload)
  assert.deepEqual(primary.written.get('b'), [...expected, 'keyless-a'], 'every frame of a picked key, in order; one keyless frame by the random draw')
  assert.equal(flow.sampledOut, msgs.length - expected.length + 1)
  await stop()
})

test('past MAXMEMORY\'s intake limit with no backup, frames are dropped and counted (max_memory)', async () => {
  const { flow, budget, send, stop } = setup({ budget: 200 })
  send('x'.repeat(300))
  await waitFor(() => flow.droppedTotal === 1)
  assert.equal(flow.dropped.get('max_memory'), 1)
  assert.equal(budget.used, 0)
  await stop()
})
