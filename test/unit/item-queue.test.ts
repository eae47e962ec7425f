// The queue of a topic's waiting messages (src/streams/item-queue.ts) against a plain array
// doing the same operations: the same messages in the same order after every step.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ItemQueue } from '../../src/streams/item-queue.ts'
import type { Item } from '../../src/streams/kafka-batching.ts'
import { seededRandom } from '../helpers/random.ts'

const item = (n: number): Item => ({ frame: { n } as never, ticket: { n } as never })
const ids = (items: readonly Item[]): number[] => items.map((i) => (i.frame as unknown as { n: number }).n)

test('take, putBack, takeAll and push keep first-in first-out order, across compactions', () => {
  const rnd = seededRandom(3)
  const q = new ItemQueue()
  const model: Item[] = []
  let next = 0
  for (let step = 0; step < 20_000; step++) {
    const r = rnd()
    if (r < 0.5) {
      for (let k = Math.floor(rnd() * 3000); k > 0; k--) {
        const it = item(next++)
        q.push(it)
        model.push(it)
      }
    } else if (r < 0.85) {
      const n = Math.floor(rnd() * 4000)
      const taken = q.take(n)
      assert.deepEqual(ids(taken), ids(model.splice(0, n)), `step ${step}: take(${n})`)
      // A request that must be sent again puts its messages back in front.
      if (rnd() < 0.3) {
        q.putBack(taken)
        model.unshift(...taken)
      }
    } else if (r < 0.87) {
      assert.deepEqual(ids(q.takeAll()), ids(model.splice(0)), `step ${step}: takeAll`)
    }
    assert.equal(q.length, model.length, `step ${step}: length`)
    assert.equal(q.at(0), model[0], `step ${step}: the oldest`)
    if (model.length > 0) assert.equal(q.at(model.length - 1), model.at(-1), `step ${step}: the newest`)
    assert.equal(q.at(model.length), undefined)
  }
})
