// One acknowledged connection's counts and answers (docs/protocol.md, "Control frames"):
// data frames are numbered from 0 after HELLO; `settled` is the prefix of them that reached
// the HELLO's level, `refused` how many of those kahets refused. ACKs are coalesced to one
// per ACK_INTERVAL_MS; SYNCs are answered in order once everything sent before them settled.
// While the client leaves earlier replies unread, at most one ACK is pending (sent with the
// counts of the moment it goes out) and REFUSED details are skipped: what kahets holds for a
// client that does not read grows only with the SYNCs it sends (docs/protocol.md, "ACK").
import { AckLevel, encodeAck, encodeClosing, encodeRefused, encodeSynced } from '../protocol/control.ts'
import { Receipt, type ReceiptOwner } from '../receipts.ts'

export const ACK_INTERVAL_MS = 5
export const REFUSED_INTERVAL_MS = 100

/** Where the replies go: the session's socket. */
export interface ReplyChannel {
  write: (frame: Buffer) => void
  /** The client has not read earlier replies yet (they wait in kahets). */
  backedUp: () => boolean
}

interface PendingSync {
  readonly token: number
  /** Data frames sent before the SYNC. */
  readonly target: number
}

export class Acknowledger implements ReceiptOwner {
  readonly level: AckLevel
  readonly #channel: ReplyChannel
  #read = 0
  #settled = 0
  #refused = 0
  // Receipts in wire order; settled ones leave from the head.
  #queue: Receipt[] = []
  #head = 0
  #syncs: PendingSync[] = []
  #ackedSettled = 0
  #ackedRefused = 0
  #lastAckAt = 0
  #lastRefusedAt = -Infinity
  #timer: NodeJS.Timeout | null = null
  #closed = false
  /** An ACK came due while the client was not reading: sent once it reads (drained()). */
  #ackWaiting = false

  constructor (level: AckLevel, channel: ReplyChannel) {
    this.level = level
    this.#channel = channel
  }

  /** Data frames read since HELLO. */
  get read (): number { return this.#read }
  get settledCount (): number { return this.#settled }
  get refusedCount (): number { return this.#refused }

  /** The next `count` data frames, as one receipt. */
  receipt (count: number): Receipt {
    const r = new Receipt(this, this.#read, count, this.level === AckLevel.DURABLE)
    this.#read += count
    this.#queue.push(r)
    return r
  }

  /** One data frame kahets skipped as invalid: settled and refused at once. */
  invalid (reason: string): void {
    const r = this.receipt(1)
    r.refuseUnseen(reason)
    r.seal()
  }

  sync (token: number): void {
    this.#syncs.push({ token, target: this.#read })
    this.#answerSyncs()
  }

  settled (r: Receipt): void {
    if (this.#queue[this.#head] !== r) return // settles when the ones before it have
    this.#advance()
  }

  /** The last frame kahets writes on this connection: everything up to `read` will reach its level. */
  closing (): Buffer {
    this.#closed = true
    this.#clearTimer()
    return encodeClosing(this.#read)
  }

  /** The client read every earlier reply: a pending ACK goes out. */
  drained (): void {
    if (!this.#ackWaiting) return
    this.#ackWaiting = false
    this.#scheduleAck()
  }

  /** The connection is gone: nothing more is written. */
  close (): void {
    this.#closed = true
    this.#clearTimer()
  }

  #advance (): void {
    const q = this.#queue
    while (this.#head < q.length && q[this.#head]!.done) {
      const r = q[this.#head++]!
      this.#settled += r.count
      const refused = r.refused
      if (refused > 0) {
        this.#refused += refused
        this.#detail(r)
      }
    }
    if (this.#head > 1024 && this.#head * 2 > q.length) {
      this.#queue = q.slice(this.#head)
      this.#head = 0
    }
    this.#answerSyncs()
    this.#scheduleAck()
  }

  #answerSyncs (): void {
    while (this.#syncs.length > 0 && this.#syncs[0]!.target <= this.#settled) {
      const s = this.#syncs.shift()!
      this.#send(encodeSynced(s.token, this.#settled, this.#refused))
    }
  }

  #detail (r: Receipt): void {
    const now = performance.now()
    if (now - this.#lastRefusedAt < REFUSED_INTERVAL_MS || this.#channel.backedUp()) return
    this.#lastRefusedAt = now
    // Sent before the ACK that counts it.
    this.#send(encodeRefused(r.firstRefused, r.reason))
  }

  #scheduleAck (): void {
    if (this.#timer !== null || this.#closed || this.#ackWaiting) return
    if (this.#settled === this.#ackedSettled && this.#refused === this.#ackedRefused) return
    const delay = Math.max(0, this.#lastAckAt + ACK_INTERVAL_MS - performance.now())
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#lastAckAt = performance.now()
      if (this.#settled === this.#ackedSettled && this.#refused === this.#ackedRefused) return
      if (this.#channel.backedUp()) {
        this.#ackWaiting = true
        return
      }
      this.#ackedSettled = this.#settled
      this.#ackedRefused = this.#refused
      this.#send(encodeAck(this.#settled, this.#refused))
    }, delay)
  }

  #clearTimer (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  #send (frame: Buffer): void {
    if (!this.#closed) this.#channel.write(frame)
  }
}
