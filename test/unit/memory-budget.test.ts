// MAXMEMORY's accounting: buckets take frames up to the intake limit, spilled frames are
// charged beyond it, and past MAXMEMORY itself reading pauses until the charge is back under
// the intake limit.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryBudget } from '../../src/memory-budget.ts'

test('a bucket fills up to 80% of MAXMEMORY, then is refused', () => {
  const b = new MemoryBudget(1000)
  assert.equal(b.intakeLimit, 800)
  assert.equal(b.tryAcquire(800), true)
  assert.equal(b.tryAcquire(1), false)
  assert.equal(b.used, 800)
  b.release(300)
  assert.equal(b.tryAcquire(300), true)
  assert.equal(b.peak, 800)
})

test('spills are charged; past MAXMEMORY reading pauses, and resumes under the intake limit', () => {
  const b = new MemoryBudget(1000)
  const events: boolean[] = []
  b.onPressure((on) => { events.push(on) })
  assert.equal(b.tryAcquire(800), true)
  b.acquireSpill(150)
  assert.deepEqual(events, [], 'at 950 of 1000: the backup is keeping up')
  b.acquireSpill(100)
  assert.deepEqual(events, [true], 'at 1050: pause')
  assert.equal(b.underPressure, true)
  b.acquireSpill(100)
  assert.deepEqual(events, [true], 'one pause, not one per spill')
  b.release(300)
  assert.deepEqual(events, [true], 'at 850: still above the intake limit')
  b.release(50)
  assert.deepEqual(events, [true, false], 'at 800: reading again')
  assert.equal(b.underPressure, false)
  assert.equal(b.pressureEpisodes, 1)
  assert.equal(b.peak, 1150)
  assert.throws(() => { b.release(801) }, /released more than it held/)
})

test('unfinished frames count toward MAXMEMORY and pressure, not toward the intake of queued frames', () => {
  const b = new MemoryBudget(1000)
  const events: boolean[] = []
  b.onPressure((on) => { events.push(on) })
  b.holdUnfinished(700)
  assert.equal(b.used, 700)
  assert.equal(b.unfinished, 700)
  assert.equal(b.tryAcquire(700), true, 'a completed frame is taken in: its memory was already held')
  assert.deepEqual(events, [true], 'at 1400 of 1000: pause')
  b.holdUnfinished(-700)
  assert.deepEqual(events, [true, false], 'back at 700: resume')
  assert.equal(b.unfinished, 0)
})

test('a large frame is admitted while it fits under the intake limit, else waits in line under pressure', async () => {
  const b = new MemoryBudget(1000)
  const events: boolean[] = []
  b.onPressure((on) => { events.push(on) })
  b.holdUnfinished(50) // a session holds the first 50 bytes of a 500-byte frame
  assert.equal(b.admit(500, 50, () => assert.fail('granted at once')), null)
  assert.equal(b.used, 500, 'the charge grows from what was held to the whole frame')
  const granted: string[] = []
  b.holdUnfinished(40)
  const second = b.admit(600, 40, () => { granted.push('second') })
  assert.notEqual(second, null)
  b.holdUnfinished(20, second) // it had read a little more meanwhile
  assert.equal(b.used, 560)
  assert.equal(b.waiting, 1)
  assert.deepEqual(events, [true], 'a frame waiting for room pauses reading')
  // What a waiting connection holds is not counted against the next admission.
  b.holdUnfinished(-500) // the first frame completed
  assert.deepEqual(granted, [], 'grants wait for the next turn, so the bucket takes the completed frame first')
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(granted, ['second'])
  assert.equal(b.used, 600)
  assert.deepEqual(events, [true, false])
})

test('with nothing else held, a frame larger than the intake limit is admitted', () => {
  const b = new MemoryBudget(1000)
  assert.equal(b.admit(5000, 100, () => {}), null)
})

test('a connection that closes while waiting leaves the line', async () => {
  const b = new MemoryBudget(1000)
  b.holdUnfinished(800)
  b.holdUnfinished(10)
  const w = b.admit(600, 10, () => assert.fail('not granted after cancel'))!
  b.cancel(w)
  b.holdUnfinished(-10)
  b.holdUnfinished(-800)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(b.used, 0)
  assert.equal(b.waiting, 0)
  assert.equal(b.underPressure, false)
})
