// The MAXMEMORY bound (docs/guarantees.md#bounded-memory): every byte of a frame that kahets holds — arriving on a
// connection, waiting in a bucket, queued for a stream, in flight to Kafka, on its way to a
// backup file — is charged here first.
//
// A bucket takes new frames only while the charge stays under the intake limit (80% of
// MAXMEMORY); past it, the caller spills them to the backup stream (or drops and counts them
// when there is none), so a slow Kafka never blocks a client. Spilled frames are charged too
// (acquireSpill), since they wait in memory until the backup file has them: when even the
// backup cannot keep up and the charge passes MAXMEMORY itself, the budget is under
// pressure and the sessions stop reading until the backup has caught up (the charge is back
// under the intake limit). That is the only case where a client waits: Kafka and the local
// disk are both behind, and the alternatives would be losing accepted messages or unbounded
// memory.
//
// Frames still arriving are charged from their first byte (holdUnfinished: what a session's
// decoder holds). They count toward MAXMEMORY and the pressure, not toward the intake limit:
// an unfinished frame becomes a queued one when it completes, and refusing it then would drop
// a frame for the memory it was itself holding. A frame larger than a socket chunk needs its
// whole buffer to complete (decoder.ts); a session asks for it with admit(), and gets it at
// once while it fits under the intake limit (so that it is taken in when it completes), else
// waits in line and the budget is under pressure (reading pauses) until enough is released
// for the first in line. What waiting connections hold — the bytes they had read, at most a
// socket chunk or so each — is charged too but left out of the pressure and admission sums:
// it cannot grow while they wait, and counting it could wedge every connection behind bytes
// none of them can finish.
const INTAKE_SHARE = 0.8

export type PressureListener = (underPressure: boolean) => void

/** A session waiting for the whole buffer of its unfinished frame. */
export interface Admission {
  readonly total: number
  /** What the session holds meanwhile (kept up to date through holdUnfinished). */
  held: number
  readonly granted: () => void
}

export class MemoryBudget {
  readonly limit: number
  /** What a bucket may fill up to before it spills. */
  readonly intakeLimit: number
  #used = 0
  #unfinished = 0
  #waitingHeld = 0
  readonly #waiting: Admission[] = []
  #grantScheduled = false
  #peak = 0
  #underPressure = false
  #episodes = 0
  readonly #listeners: PressureListener[] = []

  constructor (limit: number) {
    this.limit = limit
    this.intakeLimit = Math.floor(limit * INTAKE_SHARE)
  }

  get used (): number { return this.#used }
  /** Of `used`, what unfinished frames hold. */
  get unfinished (): number { return this.#unfinished }
  /** Connections waiting for the buffer of a large unfinished frame. */
  get waiting (): number { return this.#waiting.length }
  get peak (): number { return this.#peak }
  get underPressure (): boolean { return this.#underPressure }
  /** How many times reading was paused. */
  get pressureEpisodes (): number { return this.#episodes }

  /** Called with true when reading must pause, with false when it may go on. */
  onPressure (listener: PressureListener): void {
    this.#listeners.push(listener)
  }

  tryAcquire (bytes: number): boolean {
    if (this.#used - this.#unfinished + bytes > this.intakeLimit) return false
    this.#add(bytes)
    return true
  }

  /** Charges frames spilled to a backup: never refused, but past MAXMEMORY reading pauses. */
  acquireSpill (bytes: number): void {
    this.#add(bytes)
  }

  /**
   * What a session holds for its unfinished frame changed by `delta` bytes (either sign);
   * `waiting` is its pending admission, if any.
   */
  holdUnfinished (delta: number, waiting: Admission | null = null): void {
    this.#unfinished += delta
    if (waiting !== null) {
      waiting.held += delta
      this.#waitingHeld += delta
    }
    if (delta >= 0) this.#add(delta)
    else this.release(-delta)
  }

  /**
   * The whole buffer of an unfinished frame of `total` bytes, of which the session holds
   * `held` already. Returns null when granted (charged now), else the place in line;
   * `granted` is called (and the charge made) when it comes.
   */
  admit (total: number, held: number, granted: () => void): Admission | null {
    if (this.#waiting.length === 0 && !this.#grantScheduled && this.#fits(total - held)) {
      this.holdUnfinished(total - held)
      return null
    }
    const a: Admission = { total, held, granted }
    this.#waiting.push(a)
    this.#waitingHeld += held
    if (!this.#underPressure) this.#setPressure(true)
    return a
  }

  /** The connection closed while waiting; what it held is released by holdUnfinished. */
  cancel (a: Admission): void {
    const i = this.#waiting.indexOf(a)
    if (i < 0) return
    this.#waiting.splice(i, 1)
    this.#waitingHeld -= a.held
    this.#scheduleGrant()
    this.#maybeLift()
  }

  release (bytes: number): void {
    this.#used -= bytes
    if (this.#used < 0) throw new Error(`memory budget released more than it held (${this.#used})`)
    this.#scheduleGrant()
    this.#maybeLift()
  }

  // A completed frame releases its unfinished charge before its bucket charges it (the
  // bucket's mailbox runs in a microtask): grants wait for the next turn of the event loop,
  // so the room is the bucket's first and a waiting frame does not push it past the intake.
  #scheduleGrant (): void {
    if (this.#grantScheduled || this.#waiting.length === 0) return
    this.#grantScheduled = true
    setImmediate(() => {
      this.#grantScheduled = false
      this.#grantWaiting()
      this.#maybeLift()
    })
  }

  #maybeLift (): void {
    if (this.#underPressure && this.#counted() <= this.intakeLimit && this.#waiting.length === 0) this.#setPressure(false)
  }

  /** The charge that pressure and admission look at: all but what waiting connections hold. */
  #counted (): number {
    return this.#used - this.#waitingHeld
  }

  // With nothing else counted, one frame is let in whatever its size, so that a frame larger
  // than the intake limit (MAX_FRAME_BYTES above it) still completes.
  #fits (bytes: number): boolean {
    const counted = this.#counted()
    return counted + bytes <= this.intakeLimit || counted === 0
  }

  #grantWaiting (): void {
    while (this.#waiting.length > 0) {
      const a = this.#waiting[0]!
      if (!this.#fits(a.total - a.held)) return
      this.#waiting.shift()
      this.#waitingHeld -= a.held
      this.holdUnfinished(a.total - a.held)
      a.granted()
    }
  }

  #add (bytes: number): void {
    this.#used += bytes
    if (this.#used > this.#peak) this.#peak = this.#used
    if (!this.#underPressure && this.#counted() > this.limit) this.#setPressure(true)
  }

  #setPressure (on: boolean): void {
    this.#underPressure = on
    if (on) this.#episodes++
    for (const l of this.#listeners) l(on)
  }
}
