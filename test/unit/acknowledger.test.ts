// One acknowledged connection's counts (src/actors/acknowledger.ts, src/receipts.ts): in-order
// settlement, refusals counted once, SYNC answered when everything before it settled, ACKs
// coalesced, CLOSING carrying what was read.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Acknowledger, ACK_INTERVAL_MS } from '../../src/actors/acknowledger.ts'
import { AckLevel, ControlReader, type ControlFrame } from '../../src/protocol/control.ts'
import { refuseFrames, retag, tagFrames } from '../../src/receipts.ts'
import { FrameOrigin, WireFrame, type Frame } from '../../src/protocol/frame.ts'
import { waitFor } from '../helpers/wait.ts'

function wire (backedUp = (): boolean => false): { ack: Acknowledger, sent: () => ControlFrame[] } {
  const reader = new ControlReader()
  const out: ControlFrame[] = []
  const ack = new Acknowledger(AckLevel.DURABLE, { write: (b) => { out.push(...reader.push(b)) }, backedUp })
  return { ack, sent: () => out }
}

function frames (n: number): Frame[] {
  const origin = new FrameOrigin(Buffer.alloc(n * 8), 0)
  return Array.from({ length: n }, (_, i) => new WireFrame('b', origin, i * 8, i * 8 + 8))
}

test('a receipt settles only when sealed and released by every holder, and only after the ones before it', async () => {
  const { ack, sent } = wire()
  const first = ack.receipt(3)
  const second = ack.receipt(2)
  first.hold()
  first.seal()
  second.seal() // nobody holds it: done, but frames 0..2 are not
  assert.equal(second.done, true)
  assert.equal(ack.settledCount, 0)
  first.hold()
  first.release()
  assert.equal(ack.settledCount, 0, 'one hold left')
  first.release()
  assert.equal(ack.settledCount, 5)
  await waitFor(() => sent().length > 0, { timeoutMs: 1000, what: 'an ACK' })
  assert.deepEqual(sent(), [{ type: 'ack', settled: 5, refused: 0 }])
})

test('a frame refused by two streams counts once; a copied frame keeps its tag', async () => {
  const { ack, sent } = wire()
  const r = ack.receipt(4)
  const fs = frames(4)
  tagFrames(fs, r)
  const copy = new WireFrame('b', new FrameOrigin(Buffer.alloc(8), 0), 0, 8)
  retag(fs[3]!, copy)
  r.hold()
  r.seal()
  refuseFrames([fs[1]!], 'topic_rejected')
  refuseFrames([fs[1]!, copy], 'max_memory')
  r.release()
  assert.equal(ack.refusedCount, 2)
  await waitFor(() => sent().some((f) => f.type === 'ack'), { timeoutMs: 1000, what: 'an ACK' })
  assert.deepEqual(sent(), [
    { type: 'refused', index: 1, reason: 'topic_rejected' },
    { type: 'ack', settled: 4, refused: 2 },
  ])
})

test('invalid frames are settled and refused in their place; SYNC waits for what was sent before it', async () => {
  const { ack, sent } = wire()
  const r = ack.receipt(2)
  r.hold()
  r.seal()
  ack.invalid('bad_bucket')
  ack.sync(7)
  assert.deepEqual(sent().filter((f) => f.type === 'synced'), [], 'frames 0 and 1 are not settled yet')
  r.release()
  assert.deepEqual(sent().find((f) => f.type === 'synced'), { type: 'synced', token: 7, settled: 3, refused: 1 })
  ack.sync(8) // nothing new sent: answered at once
  assert.deepEqual(sent().filter((f) => f.type === 'synced').at(-1), { type: 'synced', token: 8, settled: 3, refused: 1 })
})

test('ACKs are coalesced: many settlements in one interval make one ACK with the latest counts', async () => {
  const { ack, sent } = wire()
  for (let i = 0; i < 100; i++) ack.receipt(1).seal()
  await new Promise((resolve) => setTimeout(resolve, ACK_INTERVAL_MS * 4))
  assert.deepEqual(sent(), [{ type: 'ack', settled: 100, refused: 0 }])
  for (let i = 0; i < 10; i++) ack.receipt(1).seal()
  await waitFor(() => sent().length === 2, { timeoutMs: 1000, what: 'a second ACK' })
  assert.deepEqual(sent()[1], { type: 'ack', settled: 110, refused: 0 })
})

test('CLOSING carries the frames read, settled or not, and nothing is written after it', async () => {
  const { ack, sent } = wire()
  const r = ack.receipt(5)
  r.hold()
  r.seal()
  const closing = new ControlReader().push(ack.closing())
  assert.deepEqual(closing, [{ type: 'closing', read: 5 }])
  r.release()
  await new Promise((resolve) => setTimeout(resolve, ACK_INTERVAL_MS * 4))
  assert.deepEqual(sent(), [])
})

test('while the client leaves replies unread, one ACK waits with the latest counts and REFUSED details are skipped; SYNCED still goes out', async () => {
  let backedUp = true
  const { ack, sent } = wire(() => backedUp)
  for (let i = 0; i < 5; i++) {
    const r = ack.receipt(2)
    if (i === 1) r.refuseUnseen('bad_bucket')
    r.seal()
    await new Promise((resolve) => setTimeout(resolve, ACK_INTERVAL_MS * 2))
  }
  assert.deepEqual(sent(), [], 'nothing written while backed up')
  ack.sync(7)
  assert.deepEqual(sent(), [{ type: 'synced', token: 7, settled: 10, refused: 2 }])
  backedUp = false
  ack.drained()
  await waitFor(() => sent().length > 1, { timeoutMs: 1000, what: 'the waiting ACK' })
  assert.deepEqual(sent().slice(1), [{ type: 'ack', settled: 10, refused: 2 }])
})
