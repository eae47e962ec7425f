// The stream actor (src/actors/stream-actor.ts) with fake streams: what a refused destination
// and a failed stream do to the lanes, the mode and the accounting (issue 10).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import pino from 'pino'
import { Charge, type Delivery } from '../../src/actors/delivery.ts'
import { decideFault } from '../../src/actors/fault-policy.ts'
import { StreamActor } from '../../src/actors/stream-actor.ts'
import type { Directive, Supervisor } from '../../src/actors/actor.ts'
import { ErrorCodes, KahetsError } from '../../src/errors.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { Stats } from '../../src/stats.ts'
import { decodeAll } from '../helpers/frames.ts'
import { FakeStream } from '../helpers/fake-stream.ts'
import { waitFor } from '../helpers/wait.ts'

const log = pino({ level: 'silent' })

// What BucketManager.childFailed does for a stream actor.
const supervisor: Supervisor = {
  childFailed (child, error): Directive {
    const d = decideFault(error, (child as StreamActor).backup !== null)
    return d.action === 'failover' || d.action === 'restart' ? d.action : 'resume'
  },
}

const forGood = new KahetsError(ErrorCodes.DESTINATION_REJECTED, 'ENAMETOOLONG', { scope: 'destination', retriable: false })
const forNow = new KahetsError(ErrorCodes.DESTINATION_REJECTED, 'EACCES', { scope: 'destination', retriable: true })

function setup (opts: { backup: boolean }): { primary: FakeStream, backupStream: FakeStream, actor: StreamActor, stats: Stats } {
  const stats = new Stats()
  const primary = new FakeStream()
  const backupStream = new FakeStream(true)
  const backup = opts.backup
    ? new StreamActor({ id: 's.backup', role: 'backup', stream: backupStream, backup: null, probeIntervalMs: 20, stats, log, supervisor })
    : null
  const actor = new StreamActor({ id: 's', role: 'primary', stream: primary, backup, probeIntervalMs: 20, stats, log, supervisor })
  return { primary, backupStream, actor, stats }
}

function send (actor: StreamActor, stats: Stats, bucket: string, ...payloads: string[]): void {
  const frames = decodeAll(encodeFrames(payloads.map((payload) => ({ bucket, payload })))).frames
  const flow = stats.bucket(bucket).flow('s')
  flow.received += frames.length
  const d: Delivery = { bucket, frames, bytes: frames.reduce((n, f) => n + f.size, 0), flow, charge: Charge.none() }
  actor.write(d)
}

const flow = (stats: Stats, bucket: string) => stats.bucket(bucket).flow('s')

test('a destination refused for good: that write is dropped and counted, the other buckets and the mode never notice', async () => {
  const { primary, actor, stats } = setup({ backup: true })
  primary.refuse.set('bad', forGood)
  send(actor, stats, 'bad', 'b0')
  send(actor, stats, 'good', 'g0', 'g1')
  send(actor, stats, 'bad', 'b1')
  await waitFor(() => flow(stats, 'bad').droppedTotal === 2 && flow(stats, 'good').delivered === 2)
  assert.equal(flow(stats, 'bad').dropped.get('destination_rejected'), 2)
  assert.equal(actor.mode, 'normal')
  assert.deepEqual(actor.divertedBuckets, [])
  assert.deepEqual(primary.written.get('good'), ['g0', 'g1'])
  assert.equal(actor.queued.frames, 0)
  await actor.stop()
})

test('a destination refused for now: only its lane goes to the backup; it is written to the stream again once it takes writes', async () => {
  const { primary, backupStream, actor, stats } = setup({ backup: true })
  primary.refuse.set('bad', forNow)
  send(actor, stats, 'bad', 'b0')
  await waitFor(() => flow(stats, 'bad').backedUp === 1)
  assert.deepEqual(actor.divertedBuckets, ['bad'])
  send(actor, stats, 'bad', 'b1')
  send(actor, stats, 'good', 'g0')
  await waitFor(() => flow(stats, 'bad').backedUp === 2 && flow(stats, 'good').delivered === 1)
  assert.equal(actor.mode === 'normal' || actor.mode === 'draining', true, actor.mode)
  assert.deepEqual(backupStream.written.get('bad'), ['b0', 'b1'])
  assert.equal(backupStream.written.get('good'), undefined, 'good never went to the backup')

  // The destination takes writes again: the next background replay finds the lane's bucket
  // absent from the backup's (empty) files and puts the lane back.
  primary.refuse.delete('bad')
  await waitFor(() => actor.divertedBuckets.length === 0, { what: 'the lane back to normal' })
  send(actor, stats, 'bad', 'b2')
  await waitFor(() => flow(stats, 'bad').delivered === 1)
  assert.deepEqual(primary.written.get('bad'), ['b2'])
  await actor.stop()
  await actor.backup!.stop()
})

test('a destination fault while the stream itself does not answer is a stream failure: failover', async () => {
  const { primary, actor, stats } = setup({ backup: true })
  primary.refuse.set('bad', forNow)
  primary.down = true // the probe says the stream is down: it is not one destination's fault
  send(actor, stats, 'good', 'g0')
  await waitFor(() => actor.mode === 'backup', { what: 'failed over' })
  send(actor, stats, 'other', 'o0')
  await waitFor(() => flow(stats, 'good').backedUp === 1 && flow(stats, 'other').backedUp === 1)
  primary.down = false
  primary.refuse.clear()
  await waitFor(() => actor.mode === 'normal', { what: 'recovered' })
  await actor.stop()
  await actor.backup!.stop()
})

test('a stream failure without a backup holds every lane and writes it once the stream answers', async () => {
  const { primary, actor, stats } = setup({ backup: false })
  primary.down = true
  send(actor, stats, 'a', 'a0')
  send(actor, stats, 'b', 'b0')
  await waitFor(() => actor.mode === 'retrying')
  assert.equal(actor.queued.frames, 2, 'held, not dropped')
  primary.down = false
  await waitFor(() => flow(stats, 'a').delivered === 1 && flow(stats, 'b').delivered === 1)
  assert.equal(actor.mode, 'normal')
  await actor.stop()
})

test('a destination refused for now without a backup: its lane is held and written again; other lanes flow', async () => {
  const { primary, actor, stats } = setup({ backup: false })
  primary.refuse.set('bad', forNow)
  send(actor, stats, 'bad', 'b0')
  send(actor, stats, 'good', 'g0')
  await waitFor(() => flow(stats, 'good').delivered === 1 && actor.divertedBuckets.includes('bad'))
  assert.equal(actor.queuedFor('bad'), 1, 'held in its lane')
  send(actor, stats, 'good', 'g1')
  await waitFor(() => flow(stats, 'good').delivered === 2)
  primary.refuse.delete('bad')
  await waitFor(() => flow(stats, 'bad').delivered === 1, { what: 'the held lane written' })
  assert.equal(actor.mode, 'normal')
  await actor.stop()
})

test('at stop, a lane still held for its destination is dropped and counted (shutdown), never lost silently', async () => {
  const { primary, actor, stats } = setup({ backup: false })
  primary.refuse.set('bad', forNow)
  send(actor, stats, 'bad', 'b0')
  await waitFor(() => actor.divertedBuckets.includes('bad'))
  const stopped = actor.stop()
  actor.signal({ kind: 'abandon' })
  await stopped
  assert.equal(flow(stats, 'bad').dropped.get('shutdown'), 1)
})
