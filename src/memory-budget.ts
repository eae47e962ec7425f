// The MAXMEMORY bound (SPEC §4): every byte of a frame that kahets holds — waiting in a
// bucket, queued for a stream, in flight to Kafka, on its way to a backup file — is charged
// here first.
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
const INTAKE_SHARE = 0.8

export type PressureListener = (underPressure: boolean) => void

export class MemoryBudget {
  readonly limit: number
  /** What a bucket may fill up to before it spills. */
  readonly intakeLimit: number
  #used = 0
  #peak = 0
  #underPressure = false
  #episodes = 0
  readonly #listeners: PressureListener[] = []

  constructor (limit: number) {
    this.limit = limit
    this.intakeLimit = Math.floor(limit * INTAKE_SHARE)
  }

  get used (): number { return this.#used }
  get peak (): number { return this.#peak }
  get underPressure (): boolean { return this.#underPressure }
  /** How many times reading was paused. */
  get pressureEpisodes (): number { return this.#episodes }

  /** Called with true when reading must pause, with false when it may go on. */
  onPressure (listener: PressureListener): void {
    this.#listeners.push(listener)
  }

  tryAcquire (bytes: number): boolean {
    if (this.#used + bytes > this.intakeLimit) return false
    this.#add(bytes)
    return true
  }

  /** Charges frames spilled to a backup: never refused, but past MAXMEMORY reading pauses. */
  acquireSpill (bytes: number): void {
    this.#add(bytes)
  }

  release (bytes: number): void {
    this.#used -= bytes
    if (this.#used < 0) throw new Error(`memory budget released more than it held (${this.#used})`)
    if (this.#underPressure && this.#used <= this.intakeLimit) this.#setPressure(false)
  }

  #add (bytes: number): void {
    this.#used += bytes
    if (this.#used > this.#peak) this.#peak = this.#used
    if (!this.#underPressure && this.#used > this.limit) this.#setPressure(true)
  }

  #setPressure (on: boolean): void {
    this.#underPressure = on
    if (on) this.#episodes++
    for (const l of this.#listeners) l(on)
  }
}
