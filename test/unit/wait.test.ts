// The tests' own waiting (test/helpers/wait.ts): a condition that comes true is returned, and
// a check that never finishes fails the wait with a clear message instead of hanging it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { waitFor } from '../helpers/wait.ts'

test('waitFor returns the first value that is not undefined, null or false', async () => {
  let n = 0
  assert.equal(await waitFor(() => ++n >= 3 ? `after ${n}` : false, { intervalMs: 1 }), 'after 3')
  let m = 0
  assert.deepEqual(await waitFor(async () => { if (++m < 2) throw new Error('not yet'); return { m } }, { intervalMs: 1 }), { m: 2 })
})

test('waitFor gives up on a check that never finishes, and on a condition that never comes true', async () => {
  await assert.rejects(waitFor(() => new Promise<boolean>(() => {}), { timeoutMs: 50, what: 'a hung scrape' }), {
    message: 'timed out after 50 ms waiting for a hung scrape: one check of it did not finish',
  })
  await assert.rejects(waitFor(() => { throw new Error('still down') }, { timeoutMs: 50, intervalMs: 5, what: 'the broker' }), {
    message: 'timed out after 50 ms waiting for the broker: Error: still down',
  })
})
