// The actor runtime (docs/architecture.md#how-it-works). Each actor owns private state and two mailboxes: system
// messages (stop, flush, reload…) are taken before user messages, and exactly one message is
// handled at a time. A handler that throws fails the actor; its parent (the supervisor)
// picks a directive from a small fixed set and the runtime applies it:
//
//   resume    keep the state, go on with the next message
//   restart   the actor rebuilds its resources (onRestart) and goes on
//   failover  the actor hands what it holds to its backup and goes on in backup mode
//   stop      the actor stops; messages still queued are handed to onStop
//   escalate  the parent fails in turn, and its own parent decides
//
// On the hot path a mailbox message carries a batch (a decoded chunk, a flushed batch),
// never a single frame, so the per-message cost is paid per batch.
import { ErrorCodes, KahetsError } from '../errors.ts'

export type Directive = 'resume' | 'restart' | 'failover' | 'stop' | 'escalate'

export interface ActorRef {
  readonly name: string
}

export interface Supervisor {
  /** Decides what happens to a child whose handler threw. Must not throw. */
  childFailed (child: ActorRef, error: unknown): Directive
}

// A FIFO that does not shift arrays: head index, compacted when half consumed.
class Queue<T> {
  #items: T[] = []
  #head = 0
  get length (): number { return this.#items.length - this.#head }
  push (item: T): void { this.#items.push(item) }
  shift (): T | undefined {
    if (this.#head >= this.#items.length) return undefined
    const item = this.#items[this.#head]!
    this.#items[this.#head++] = undefined as T
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return item
  }
  drain (): T[] {
    const rest = this.#items.slice(this.#head)
    this.#items = []
    this.#head = 0
    return rest
  }
}

type Lifecycle = 'running' | 'stopping' | 'stopped'

export abstract class Actor<M, S = never> implements ActorRef {
  readonly name: string
  readonly #supervisor: Supervisor | null
  readonly #user = new Queue<M>()
  readonly #system = new Queue<S | { readonly kind: '$stop' }>()
  #scheduled = false
  #busy = false
  #state: Lifecycle = 'running'
  #stopped: Promise<void>
  #resolveStopped!: () => void

  constructor (name: string, supervisor: Supervisor | null) {
    this.name = name
    this.#supervisor = supervisor
    this.#stopped = new Promise((resolve) => { this.#resolveStopped = resolve })
  }

  get state (): Lifecycle { return this.#state }
  get mailboxSize (): number { return this.#user.length }

  /**
   * Queues a user message. A stopping actor still accepts them (its own completions arrive
   * this way while it drains); a stopped one refuses.
   */
  tell (msg: M): void {
    if (this.#state === 'stopped') throw new KahetsError(ErrorCodes.ACTOR_STOPPED, `${this.name} is stopping; message refused`)
    this.#user.push(msg)
    this.#schedule()
  }

  /** Queues a lifecycle message ahead of every user message. */
  signal (msg: S): void {
    if (this.#state === 'stopped') return
    this.#system.push(msg)
    this.#schedule()
  }

  /**
   * Clean stop: the messages already queued are still handled (drained), then onStop runs.
   * Resolves once the actor has stopped.
   */
  stop (): Promise<void> {
    if (this.#state === 'running') {
      this.#state = 'stopping'
      this.#system.push({ kind: '$stop' })
      this.#schedule()
    }
    return this.#stopped
  }

  /** Resolves once stopped, whoever stopped it. */
  get stopped (): Promise<void> { return this.#stopped }

  protected abstract receive (msg: M): void | Promise<void>
  /** False while work started by this actor is still under way; a stop waits for it. */
  protected isIdle (): boolean { return true }
  /** Takes the user messages queued behind the current one, so a handler can coalesce them. */
  protected takeQueued (): M[] { return this.#user.drain() }
  protected receiveSystem (_msg: S): void | Promise<void> {}
  /** Releases resources. `unhandled` holds user messages left when stopped by a directive. */
  protected onStop (_unhandled: M[]): void | Promise<void> {}
  protected onRestart (_error: unknown): void | Promise<void> {}
  protected onFailover (_error: unknown): void | Promise<void> {}
  /** Called when this actor must fail because a child escalated. */
  protected fail (error: unknown): void {
    void this.#handleFailure(error)
  }

  // One function for every schedule, not a closure each time.
  readonly #runTask = (): void => { this.#run() }

  #schedule (): void {
    if (this.#scheduled || this.#busy) return
    this.#scheduled = true
    queueMicrotask(this.#runTask)
  }

  // Every handler on the hot path is synchronous, and a mailbox there often holds a single
  // decoded chunk: the loop runs synchronously and only waits (a promise, a suspended
  // continuation) when a handler returns a promise or fails. Awaiting every message
  // allocated an async frame and two promises per decoded chunk.
  #run (): void {
    this.#scheduled = false
    if (this.#busy) return
    this.#busy = true
    this.#proceed()
  }

  /** Handles messages until the mailboxes are empty, or goes on once a handler is done. */
  #proceed (): void {
    const waiting = this.#drain()
    if (waiting !== undefined) {
      void waiting.then(() => { this.#proceed() })
      return
    }
    this.#busy = false
    if (this.#state !== 'stopped' && (this.#user.length > 0 || (this.#system.length > 0 && this.isIdle()))) this.#schedule()
  }

  /** Runs handlers while they complete synchronously; returns what must be waited for first. */
  #drain (): Promise<void> | undefined {
    while (this.#state !== 'stopped') {
      const sys = this.#system.shift()
      if (sys !== undefined) {
        if (isStop(sys)) {
          // A stop drains: user messages already queued go first.
          if (this.#user.length > 0) {
            this.#system.push(sys)
            const waiting = this.#handleUser()
            if (waiting !== undefined) return waiting
            continue
          }
          if (!this.isIdle()) {
            // Work is still under way outside the mailbox; its completion message wakes us.
            // Lifecycle messages queued behind the stop (the shutdown deadline's abandon) are
            // handled now: they may be what lets that work end.
            this.#system.push(sys)
            if (this.#system.length > 1) continue
            return undefined
          }
          return this.#finish([])
        }
        let waiting: Promise<void> | undefined
        try {
          waiting = this.#settled(this.receiveSystem(sys as S))
        } catch (err) {
          waiting = this.#handleFailure(err)
        }
        if (waiting !== undefined) return waiting
        continue
      }
      if (this.#user.length === 0) return undefined
      const waiting = this.#handleUser()
      if (waiting !== undefined) return waiting
    }
    return undefined
  }

  #handleUser (): Promise<void> | undefined {
    const msg = this.#user.shift()!
    try {
      return this.#settled(this.receive(msg))
    } catch (err) {
      return this.#handleFailure(err)
    }
  }

  /** A handler's result: nothing to wait for, or its promise with failures handled. */
  #settled (result: void | Promise<void>): Promise<void> | undefined {
    if (result === undefined) return undefined
    return result.then(undefined, (err: unknown) => this.#handleFailure(err))
  }

  async #handleFailure (error: unknown): Promise<void> {
    const directive = this.#supervisor?.childFailed(this, error) ?? 'resume'
    switch (directive) {
      case 'resume':
        return
      case 'restart':
        await this.#guardHook(() => this.onRestart(error))
        return
      case 'failover':
        await this.#guardHook(() => this.onFailover(error))
        return
      case 'stop':
        this.#state = 'stopping'
        await this.#finish(this.#user.drain())
        return
      case 'escalate':
        if (this.#supervisor instanceof Actor) (this.#supervisor as Actor<unknown, unknown>).fail(error)
        return
      default: {
        const never: never = directive
        throw new Error(`unknown directive ${String(never)}`)
      }
    }
  }

  // A lifecycle hook that throws must not recurse into supervision forever: it stops the actor.
  async #guardHook (fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn()
    } catch (err) {
      this.#supervisor?.childFailed(this, err)
      this.#state = 'stopping'
      await this.#finish(this.#user.drain())
    }
  }

  async #finish (unhandled: M[]): Promise<void> {
    try {
      await this.onStop(unhandled)
    } finally {
      this.#state = 'stopped'
      this.#resolveStopped()
    }
  }
}

function isStop (m: unknown): m is { kind: '$stop' } {
  return typeof m === 'object' && m !== null && (m as { kind?: unknown }).kind === '$stop'
}
