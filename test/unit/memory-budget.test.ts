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
