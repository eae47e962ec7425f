// One topic's messages waiting for a produce request (kafka-batching.ts): first in, first out,
// taken from the front a batch at a time, put back at the front when a request must be sent
// again. An array spliced at its front moves everything behind the batch on every take (0.7 ms
// per take of 10,000 messages with a million waiting); this keeps a head index instead, clears
// each taken slot (a delivered message must not stay reachable: its frame holds its socket
// chunk) and compacts once the taken part is the larger half.
//
// A message is its frame and the ticket of the write() that queued it, kept in two arrays side
// by side rather than as one object per message: at a million messages a second that object
// was a third of what the Kafka path allocated.
import type { Frame } from '../protocol/frame.ts'
import type { Ticket } from './kafka-batching.ts'

/** Taken slots kept before compacting is considered: small queues never copy. */
const COMPACT_AFTER = 1024

/** Messages taken from a queue: frames[i] was queued by the write of tickets[i]. */
export interface Items {
  readonly frames: readonly Frame[]
  readonly tickets: readonly Ticket[]
}

export class ItemQueue {
  #frames: Array<Frame | undefined> = []
  #tickets: Array<Ticket | undefined> = []
  #head = 0

  get length (): number {
    return this.#frames.length - this.#head
  }

  /** The frame `i` places from the front (0: the oldest); undefined past the end. */
  frameAt (i: number): Frame | undefined {
    return this.#frames[this.#head + i]
  }

  /** The ticket of the message `i` places from the front; undefined past the end. */
  ticketAt (i: number): Ticket | undefined {
    return this.#tickets[this.#head + i]
  }

  push (frame: Frame, ticket: Ticket): void {
    this.#frames.push(frame)
    this.#tickets.push(ticket)
  }

  /** Removes and returns the `n` oldest messages (fewer when fewer wait). */
  take (n: number): Items {
    const head = this.#head
    const end = Math.min(head + n, this.#frames.length)
    const frames = this.#frames.slice(head, end) as Frame[]
    const tickets = this.#tickets.slice(head, end) as Ticket[]
    this.#head = end
    if (end === this.#frames.length) {
      this.#frames = []
      this.#tickets = []
      this.#head = 0
    } else {
      this.#frames.fill(undefined, head, end)
      this.#tickets.fill(undefined, head, end)
      if (end >= COMPACT_AFTER && end * 2 >= this.#frames.length) {
        this.#frames = this.#frames.slice(end)
        this.#tickets = this.#tickets.slice(end)
        this.#head = 0
      }
    }
    return { frames, tickets }
  }

  /** Removes and returns every message. */
  takeAll (): Items {
    return this.take(this.length)
  }

  /** Puts `items` back at the front, ahead of the rest, in their order. */
  putBack (items: Items): void {
    const { frames, tickets } = items
    const n = frames.length
    if (n <= this.#head) {
      this.#head -= n
      for (let i = 0; i < n; i++) {
        this.#frames[this.#head + i] = frames[i]
        this.#tickets[this.#head + i] = tickets[i]
      }
    } else {
      this.#frames = [...frames, ...this.#frames.slice(this.#head)]
      this.#tickets = [...tickets, ...this.#tickets.slice(this.#head)]
      this.#head = 0
    }
  }
}
