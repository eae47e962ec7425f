// The queue of a topic's waiting messages (src/streams/item-queue.ts) against a plain array
// doing the same operations: the same messages in the same order after every step.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ItemQueue, type Items } from '../../src/streams/item-queue.ts'
import { seededRandom } from '../helpers/random.ts'

// A message stands for its frame and ticket by a number; the ticket's is the frame's negated,
// so a frame that moved without its ticket (or the other way round) shows.
interface Item { frame: { n: number }, ticket: { n: number } }
const item = (n: number): Item => ({ frame: { n }, ticket: { n: -n } })
const asItems = (taken: Items): Item[] => taken.frames.map((f, i) => ({ frame: f as never, ticket: taken.tickets[i] as never }))
const pairs = (items: readonly Item[]): Array<[number, number]> => items.map((i) => [i.frame.n, i.ticket.n])

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
        q.push(it.frame as never, it.ticket as never)
        model.push(it)
      }
    } else if (r < 0.85) {
      const n = Math.floor(rnd() * 4000)
      const taken = q.take(n)
      const expected = model.splice(0, n)
      assert.deepEqual(pairs(asItems(taken)), pairs(expected), `step ${step}: take(${n})`)
      // A request that must be sent again puts its messages back in front.
      if (rnd() < 0.3) {
        q.putBack(taken)
        model.unshift(...expected)
      }
    } else if (r < 0.87) {
      assert.deepEqual(pairs(asItems(q.takeAll())), pairs(model.splice(0)), `step ${step}: takeAll`)
    }
    assert.equal(q.length, model.length, `step ${step}: length`)
    assert.equal(q.frameAt(0), model[0]?.frame, `step ${step}: the oldest`)
    assert.equal(q.ticketAt(0), model[0]?.ticket, `step ${step}: the oldest's ticket`)
    if (model.length > 0) {
      assert.equal(q.frameAt(model.length - 1), model.at(-1)!.frame, `step ${step}: the newest`)
      assert.equal(q.ticketAt(model.length - 1), model.at(-1)!.ticket, `step ${step}: the newest's ticket`)
    }
    assert.equal(q.frameAt(model.length), undefined)
    assert.equal(q.ticketAt(model.length), undefined)
  }
})
