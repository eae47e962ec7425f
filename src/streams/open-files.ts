// A bound on the files one file stream keeps open (`maxOpenFiles`, issue 10 finding 4). Every
// bucket has its own file, so with thousands of bucket names a stream would otherwise hold
// thousands of descriptors and run the process out of them (EMFILE), which also starves
// the sockets. Holders (one per bucket, see rotating-file.ts) take a slot before they open
// a file and give it back when they close it; when all slots are taken the least recently
// written idle holder is asked to close its file (it appends to it again later).
//
// EMFILE/ENFILE from the system (other descriptors: client sockets, Kafka, another stream)
// is pressure, not a failure: the bound is lowered to the files this stream had open when it
// happened (at most halved per burst), idle files of every file stream in the process are closed, and the caller waits
// for a slot under the lower bound before it tries again. Only when none of this stream's
// files is open and no stream has an idle file to close does closing files not help. The
// bound creeps back up to `maxOpenFiles` once a minute has passed without pressure.

// EMFILEs within this long of the one that lowered the bound belong to the same burst.
const PRESSURE_BURST_MS = 1000
// The bound is raised again (a step per idle sweep) only this long after it was last lowered.
const RECOVER_AFTER_MS = 60_000

/** What the bound asks of a holder: whether its file can be closed now, and to close it. */
export interface FileHolder {
  /** No write of this holder is pending or running: its file may be closed at once. */
  readonly idle: boolean
  /** Closes the holder's file (it gives its slot back through release()); later writes reopen it. */
  suspend (): Promise<void>
}

// Every live bound in the process: descriptors are the process's, so pressure on one file
// stream closes idle files of the others too (a backup's idle files must not starve its
// primary). Weak, so that a stream dropped by a reload is forgotten.
const everyBound = new Set<WeakRef<OpenFiles>>()

function otherBounds (self: OpenFiles): OpenFiles[] {
  const out: OpenFiles[] = []
  for (const ref of everyBound) {
    const bound = ref.deref()
    if (bound === undefined) everyBound.delete(ref)
    else if (bound !== self) out.push(bound)
  }
  return out
}

export class OpenFiles {
  readonly max: number
  #limit: number
  /** Holders with a slot, least recently written first (a Map keeps insertion order). */
  readonly #open = new Map<FileHolder, number>()
  /** Holders whose slot holds a descriptor now (the others are about to open one). */
  readonly #withFd = new Set<FileHolder>()
  readonly #closing = new Set<FileHolder>()
  /** Holders waiting for a slot, in order. */
  readonly #queue: Array<{ holder: FileHolder, grant: () => void }> = []
  /** Waiting for any file to close (pressure without a slot). */
  #waiters: Array<() => void> = []
  #loweredAt = -Infinity
  /** Files closed by this bound so far (to tell whether waiting for a slot freed one). */
  #closedTotal = 0
  readonly #now: () => number
  readonly #onPressure: () => void

  /** `onPressure`: the system said EMFILE/ENFILE. */
  constructor (max: number, opts: { onPressure?: () => void, now?: () => number } = {}) {
    this.max = Math.max(1, max)
    this.#limit = this.max
    this.#now = opts.now ?? Date.now
    this.#onPressure = opts.onPressure ?? (() => {})
    everyBound.add(new WeakRef(this))
  }

  /** Files open now (slots taken). */
  get size (): number { return this.#open.size }
  /** The bound in force: maxOpenFiles, or less after EMFILE/ENFILE. */
  get limit (): number { return this.#limit }

  /**
   * Waits for a slot for `holder`, first come first served; when all are taken the least
   * recently written idle files are closed to make room.
   */
  async acquire (holder: FileHolder): Promise<void> {
    if (this.#open.has(holder)) return
    if (this.#queue.length === 0 && this.#open.size < this.#limit) {
      this.#open.set(holder, this.#now())
      return
    }
    await new Promise<void>((resolve) => {
      this.#queue.push({ holder, grant: resolve })
      this.#pump()
    })
  }

  /** Grants free slots in order, and closes as many idle files as the queue still needs. */
  #pump (): void {
    while (this.#queue.length > 0 && this.#open.size < this.#limit) {
      const { holder, grant } = this.#queue.shift()!
      this.#open.set(holder, this.#now())
      grant()
    }
    let need = this.#queue.length + Math.max(0, this.#open.size - this.#limit) - this.#closing.size
    if (need <= 0) return
    for (const h of this.#open.keys()) {
      if (need <= 0) break
      if (!this.#closable(h)) continue
      need--
      void this.#close(h)
    }
  }

  /** The holder's slot now holds a descriptor. */
  opened (holder: FileHolder): void {
    if (this.#open.has(holder)) this.#withFd.add(holder)
  }

  /** The holder closed its file (or gave up opening one). */
  release (holder: FileHolder): void {
    this.#withFd.delete(holder)
    if (this.#open.delete(holder)) {
      this.#pump()
      this.#wake()
    }
  }

  /** The holder wrote: it becomes the most recently written. */
  touch (holder: FileHolder): void {
    if (!this.#open.has(holder)) return
    this.#open.delete(holder)
    this.#open.set(holder, this.#now())
  }

  /** The holder's pending writes are done: a waiting acquire() may now close its file. */
  idle (): void {
    this.#pump()
    this.#wake()
  }

  /**
   * The system refused `holder` a descriptor (EMFILE/ENFILE). Lowers the bound to the
   * files open then, closes a quarter of the other file streams' idle files, and waits
   * until a descriptor of this stream is free for the holder. Returns false when that
   * cannot help: none of this stream's files is open and no other stream had one to close.
   */
  async pressure (holder: FileHolder): Promise<boolean> {
    this.#onPressure()
    const fds = this.#withFd.size
    // Once per burst, and at most halved: the openers already under way hit EMFILE too, and
    // while files are being closed and reopened the count at one moment can be far below
    // what the process can hold.
    if (this.#now() - this.#loweredAt > PRESSURE_BURST_MS) {
      this.#limit = Math.max(1, Math.ceil(this.#limit / 2), Math.min(this.#limit, fds))
      this.#loweredAt = this.#now()
    }
    let closedElsewhere = 0
    for (const other of otherBounds(this)) closedElsewhere += await other.#shed()
    const closedBefore = this.#closedTotal
    if (this.#open.has(holder) && !this.#withFd.has(holder)) {
      // A slot still waiting for its descriptor: queue again under the lower bound.
      this.release(holder)
      await this.acquire(holder)
    }
    if (closedElsewhere > 0 || this.#closedTotal > closedBefore) return true
    // Nothing was closed on the way: close one file of this stream, waiting for one to
    // become idle; none open but the holder's own means closing cannot help.
    while (!await this.#closeOne(holder)) {
      if (this.#withFd.size === (this.#withFd.has(holder) ? 1 : 0)) return false
      await this.#changed()
    }
    return true
  }

  /** The idle sweep: holders not written since before `before` (ms), to be closed; the bound recovers a step. */
  sweep (before: number): FileHolder[] {
    if (this.#limit < this.max && this.#now() - this.#loweredAt > RECOVER_AFTER_MS) this.#limit = Math.min(this.max, this.#limit + Math.ceil(this.max / 8))
    const out: FileHolder[] = []
    for (const [h, at] of this.#open) {
      if (at >= before) break
      if (h.idle && !this.#closing.has(h)) out.push(h)
    }
    return out
  }

  /** Another stream is short of descriptors: close a quarter of the idle files here (at least one). */
  async #shed (): Promise<number> {
    const want = Math.max(1, Math.ceil(this.#withFd.size / 4))
    let closed = 0
    while (closed < want && await this.#closeOne(null)) closed++
    return closed
  }

  #closable (h: FileHolder): boolean {
    return h.idle && this.#withFd.has(h) && !this.#closing.has(h)
  }

  async #close (h: FileHolder): Promise<void> {
    this.#closing.add(h)
    try {
      await h.suspend()
    } catch {
      // Its file is abandoned (rotating-file.ts); the slot is given back all the same.
    } finally {
      this.#closing.delete(h)
      this.#closedTotal++
      this.release(h)
    }
  }

  async #closeOne (except: FileHolder | null): Promise<boolean> {
    for (const h of this.#open.keys()) {
      if (h === except || !this.#closable(h)) continue
      await this.#close(h)
      return true
    }
    return false
  }

  #changed (): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  #wake (): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }
}
