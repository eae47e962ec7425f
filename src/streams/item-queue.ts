// One topic's messages waiting for a produce request (kafka-batching.ts): first in, first out,
// taken from the front a batch at a time, put back at the front when a request must be sent
// again. An array spliced at its front moves everything behind the batch on every take (0.7 ms
// per take of 10,000 messages with a million waiting); this keeps a head index instead, clears
// each taken slot (a delivered message must not stay reachable: its frame holds its socket
// chunk) and compacts once the taken part is the larger half.
import type { Item } from './kafka-batching.ts'

/** Taken slots kept before compacting is considered: small queues never copy. */
const COMPACT_AFTER = 1024

export class ItemQueue {
  #items: Array<Item | undefined> = []
  #head = 0

  get length (): number {
    return this.#items.length - this.#head
  }

  /** The message `i` places from the front (0: the oldest); undefined past the end. */
  at (i: number): Item | undefined {
    return this.#items[this.#head + i]
  }

  push (item: Item): void {
    this.#items.push(item)
  }

  /** Removes and returns the `n` oldest messages (fewer when fewer wait). */
  take (n: number): Item[] {
    const end = Math.min(this.#head + n, this.#items.length)
    const out = this.#items.slice(this.#head, end) as Item[]
    this.#items.fill(undefined, this.#head, end)
    this.#head = end
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return out
  }

  /** Removes and returns every message. */
  takeAll (): Item[] {
    return this.take(this.length)
  }

  /** Puts `items` back at the front, ahead of the rest, in their order. */
  putBack (items: readonly Item[]): void {
    if (items.length <= this.#head) {
      this.#head -= items.length
      for (let i = 0; i < items.length; i++) this.#items[this.#head + i] = items[i]
    } else {
      this.#items = [...items, ...this.#items.slice(this.#head)]
      this.#head = 0
    }
  }
}
