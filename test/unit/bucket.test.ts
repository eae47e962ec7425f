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
import { Ajv } from 'ajv'
import { PayloadSchema } from '../../src/config/payload-schema.ts'
import type { Frame } from '../../src/protocol/frame.ts'
import { Receipt, tagFrames } from '../../src/receipts.ts'

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
    config: { id: 'b', streams: ['s'], batch: opts.batch ?? 1000, batchTimeout: opts.batchTimeout ?? 60_000, schema: null, deadLetter: null },
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
  // zlib.crc32 is the reference docs/configuration.md#slices-by-key gives users to reproduce the decision.
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

test('past MAXMEMORY\'s intake limit with no backup, frames are dropped and counted (max_memory)', async () => {
  const { flow, budget, send, stop } = setup({ budget: 200 })
  send('x'.repeat(300))
  await waitFor(() => flow.droppedTotal === 1)
  assert.equal(flow.dropped.get('max_memory'), 1)
  assert.equal(budget.used, 0)
  await stop()
})

/** A fake stream whose writes wait until the test opens the gate. */
class GatedStream extends FakeStream {
  #open!: () => void
  readonly gate = new Promise<void>((resolve) => { this.#open = resolve })
  open (): void { this.#open() }
  override async write (bucket: string, frames: readonly Frame[]): Promise<undefined> {
    await this.gate
    return await super.write(bucket, frames)
  }
}

const A_SCHEMA = { type: 'object', required: ['a'], properties: { a: { type: 'integer' } } }

function schemaSetup (opts: { deadLetter: boolean }) {
  const stats = new Stats()
  const primary = new FakeStream()
  const dlStream = new GatedStream()
  const stream = new StreamActor({ id: 's', role: 'primary', stream: primary, backup: null, probeIntervalMs: 1000, stats, log, supervisor })
  const dl = new StreamActor({ id: 'dl', role: 'primary', stream: dlStream, backup: null, probeIntervalMs: 1000, stats, log, supervisor })
  const bucketStats = stats.bucket('b')
  const schema = new PayloadSchema('/schemas/a.json', new Ajv().compile(A_SCHEMA), A_SCHEMA)
  const bucket = new BucketActor({
    name: 'b',
    config: { id: 'b', streams: ['s'], batch: 5, batchTimeout: 60_000, schema, deadLetter: opts.deadLetter ? 'dl' : null },
    bindings: [{ stream, slice: 1, sliceBy: 'random', flow: bucketStats.flow('s') }],
    deadLetter: opts.deadLetter ? { stream: dl, slice: 1, sliceBy: 'random', flow: bucketStats.flow('dl') } : null,
    stats: bucketStats,
    budget: new MemoryBudget(1024 * 1024),
    log,
    supervisor,
  })
  const settled: Receipt[] = []
  const receipt = new Receipt({ settled: (r) => settled.push(r) }, 0, 5, true)
  const bytes = encodeFrames(['{"a":1}', 'nope', '{"a":"x"}', '{"a":2}', '{"a":3}'].map((payload) => ({ bucket: 'b', payload })))
  const frames = decodeAll(bytes).frames
  tagFrames(frames, receipt)
  receipt.hold()
  bucket.tell({ type: 'frames', frames, bytes: bytes.length, receipt })
  receipt.seal()
  const stop = async (): Promise<void> => {
    dlStream.open()
    await bucket.stop()
    await stream.stop()
    await dl.stop()
  }
  return { primary, dlStream, bucket, bucketStats, receipt, settled, stop }
}

test('schema with deadLetter: valid payloads to the streams, rejected ones unchanged to the dead-letter stream; the durable receipt waits for it', async () => {
  const { primary, dlStream, bucket, bucketStats, receipt, settled, stop } = schemaSetup({ deadLetter: true })
  const own = bucketStats.flow('s')
  const dead = bucketStats.flow('dl')
  await waitFor(() => own.delivered === 3)
  assert.deepEqual(primary.written.get('b'), ['{"a":1}', '{"a":2}', '{"a":3}'])
  assert.deepEqual({ received: own.received, dropped: Object.fromEntries(own.dropped) }, { received: 5, dropped: { schema_rejected: 2 } })
  assert.deepEqual(Object.fromEntries(bucketStats.schemaRejected), { not_json: 1, invalid: 1 })
  assert.equal(dead.received, 2)
  assert.equal(bucket.pendingFor('dl'), 0, 'handed to the dead-letter stream')
  assert.equal(settled.length, 0, 'durable: not before the dead-letter stream has them')
  dlStream.open()
  await waitFor(() => dead.delivered === 2)
  assert.deepEqual(dlStream.written.get('b'), ['nope', '{"a":"x"}'])
  await waitFor(() => settled.length === 1)
  assert.deepEqual({ refused: receipt.refused, first: receipt.firstRefused, reason: receipt.reason }, { refused: 2, first: 1, reason: 'not_json' })
  await stop()
})

test('schema without deadLetter: rejected payloads are dropped (schema_rejected), counted and refused', async () => {
  const { primary, bucket, bucketStats, receipt, settled, stop } = schemaSetup({ deadLetter: false })
  const own = bucketStats.flow('s')
  await waitFor(() => bucket.pending.frames === 3)
  assert.deepEqual(Object.fromEntries(own.dropped), { schema_rejected: 2 }, 'dropped on arrival; the three valid wait for their batch')
  bucket.signal({ kind: 'flush' })
  await waitFor(() => own.delivered === 3)
  assert.deepEqual(primary.written.get('b'), ['{"a":1}', '{"a":2}', '{"a":3}'])
  assert.deepEqual(Object.fromEntries(own.dropped), { schema_rejected: 2 })
  assert.deepEqual(Object.fromEntries(bucketStats.schemaRejected), { not_json: 1, invalid: 1 })
  assert.equal(bucketStats.flows.has('dl'), false)
  await waitFor(() => settled.length === 1)
  assert.equal(receipt.refused, 2)
  await stop()
})

test('a durable receipt after a fire-and-forget batch is held by its own batch only, settled once, after it is written', async () => {
  const failures: unknown[] = []
  const watching: Supervisor = { childFailed: (_child, err) => { failures.push(err); return 'resume' } }
  const stats = new Stats()
  const primary = new GatedStream()
  const stream = new StreamActor({ id: 's', role: 'primary', stream: primary, backup: null, probeIntervalMs: 1000, stats, log, supervisor: watching })
  const bucketStats = stats.bucket('b')
  const flow = bucketStats.flow('s')
  const bucket = new BucketActor({
    name: 'b',
    config: { id: 'b', streams: ['s'], batch: 2, batchTimeout: 60_000, schema: null, deadLetter: null },
    bindings: [{ stream, slice: 1, sliceBy: 'random', flow }],
    stats: bucketStats,
    budget: new MemoryBudget(1024 * 1024),
    log,
    supervisor: watching,
  })
  const batch = (payloads: string[]): { frames: Frame[], bytes: number } => {
    const bytes = encodeFrames(payloads.map((payload) => ({ bucket: 'b', payload })))
    return { frames: decodeAll(bytes).frames, bytes: bytes.length }
  }
  // A fire-and-forget client's batch flushes with no receipts and waits in the stream...
  bucket.tell({ type: 'frames', ...batch(['f1', 'f2']) })
  await waitFor(() => bucket.pending.frames === 0)
  // ...then a durable client's frames make the next batch.
  const settled: Receipt[] = []
  const receipt = new Receipt({ settled: (r) => settled.push(r) }, 0, 2, true)
  const durable = batch(['d1', 'd2'])
  tagFrames(durable.frames, receipt)
  receipt.hold()
  bucket.tell({ type: 'frames', ...durable, receipt })
  receipt.seal()
  await waitFor(() => bucket.pending.frames === 0)
  assert.equal(settled.length, 0, 'not settled before its batch is written')
  primary.open()
  await waitFor(() => flow.delivered === 4)
  await waitFor(() => settled.length === 1)
  assert.deepEqual(failures, [])
  await bucket.stop()
  await stream.stop()
  assert.equal(settled.length, 1)
})
