// The MAXMEMORY bound (SPEC §4): every byte of a frame that kahets holds — waiting in a
// bucket, queued for a stream, in flight to Kafka — is charged here first. A charge that
// would pass the bound is refused, and the caller spills or drops (counted), so memory stays
// bounded without ever blocking a client.
export class MemoryBudget {
  readonly limit: number
  #used = 0
  #peak = 0

  constructor (limit: number) {
    this.limit = limit
  }

  get used (): number { return this.#used }
  get peak (): number { return this.#peak }

  tryAcquire (bytes: number): boolean {
    if (this.#used + bytes > this.limit) return false
    this.#used += bytes
    if (this.#used > this.#peak) this.#peak = this.#used
    return true
  }

  release (bytes: number): void {
    this.#used -= bytes
    if (this.#used < 0) throw new Error(`memory budget released more than it held (${this.#used})`)
  }
}
