// The bucket manager (docs/architecture.md#how-it-works) owns the stream actors (one per stream definition, shared by
// the buckets that use it) and the bucket actors (one per bucket name in use), and is their
// supervisor: a failing stream fails over to its backup, or holds and retries when it has
// none; one broken stream never stops the others.
import type { BucketConfig, BucketsConfig, StreamConfig } from '../config/buckets.ts'
import type { Logger } from '../log.ts'
import { RateLimitedLog } from '../log.ts'
import type { MemoryBudget } from '../memory-budget.ts'
import type { Frame } from '../protocol/frame.ts'
import { refuseFrames, type Receipt } from '../receipts.ts'
import type { Stats } from '../stats.ts'
import type { StreamFactory } from '../streams/create-stream.ts'
import { Actor, type ActorRef, type Directive, type Supervisor } from './actor.ts'
import { BucketActor, type Binding } from './bucket.ts'
import { StreamFailure } from '../errors.ts'
import { decideFault } from './fault-policy.ts'
import { StreamActor } from './stream-actor.ts'

export type ManagerMsg = never
export type ManagerSignal = never

export interface BucketManagerOptions {
  config: BucketsConfig
  stats: Stats
  budget: MemoryBudget
  log: Logger
  createStream: StreamFactory
  /** Milliseconds the stream actors get, at shutdown, before what they hold goes to backup. */
  shutdownTimeoutMs: number
  /** MAX_BUCKETS: bucket names kept (actors, per-bucket metrics); default 10,000. */
  maxBuckets?: number
}

const unknownLog = new RateLimitedLog()
const DEFAULT_MAX_BUCKETS = 10_000
/**
 * The bucket label frames of names past MAX_BUCKETS are counted under: not a valid bucket
 * name (docs/protocol.md), so it cannot be one a client sent.
 */
export const OTHER_BUCKETS = '(other)'
const DEFAULT_FILE_PROBE_MS = 1000

export class BucketManager extends Actor<ManagerMsg, ManagerSignal> implements Supervisor {
  #config: BucketsConfig
  readonly #stats: Stats
  readonly #budget: MemoryBudget
  readonly #log: Logger
  readonly #createStream: StreamFactory
  readonly #shutdownTimeoutMs: number
  readonly #maxBuckets: number
  #streams = new Map<string, StreamActor>()
  readonly #buckets = new Map<string, BucketActor>()

  constructor (opts: BucketManagerOptions) {
    super('bucket-manager', null)
    this.#config = opts.config
    this.#stats = opts.stats
    this.#budget = opts.budget
    this.#log = opts.log
    this.#createStream = opts.createStream
    this.#shutdownTimeoutMs = opts.shutdownTimeoutMs
    this.#maxBuckets = opts.maxBuckets ?? DEFAULT_MAX_BUCKETS
    for (const [id, sc] of this.#config.streams) this.#streams.set(id, this.#streamActor(id, sc, 'primary'))
  }

  get streams (): ReadonlyMap<string, StreamActor> { return this.#streams }
  /** The configuration in force (the last one a reload applied). */
  get config (): BucketsConfig { return this.#config }
  get buckets (): ReadonlyMap<string, BucketActor> { return this.#buckets }

  /**
   * The routing step of a client session: hands a decoded batch of one bucket to that
   * bucket's actor (created on first use), or counts it as unknown.
   */
  deliver (bucket: string, frames: readonly Frame[], bytes: number, receipt: Receipt | null = null): void {
    let actor = this.#buckets.get(bucket)
    if (actor === undefined) {
      // Every name kahets has seen keeps an actor and its metrics: a client that puts an id
      // in the bucket name would otherwise grow kahets without bound (≈ 20 KB and 9 series a
      // name). Past MAX_BUCKETS names a new one is refused and counted under OTHER_BUCKETS.
      // A bucket the buckets file lists is always served.
      const served = this.#bucketConfig(bucket) !== null
      if (!this.#config.buckets.has(bucket) && !this.#stats.buckets.has(bucket) && this.#stats.buckets.size >= this.#maxBuckets) {
        this.#refuse(OTHER_BUCKETS, frames, receipt, served ? 'too_many_buckets' : 'unknown_bucket')
        if (served) unknownLog.error(this.#log, 'max_buckets', { bucket, frames: frames.length, maxBuckets: this.#maxBuckets }, 'frames for a new bucket name dropped: MAX_BUCKETS names are in use')
        else unknownLog.warn(this.#log, 'unknown:(other)', { bucket, frames: frames.length }, 'frames for an unknown bucket dropped (no such bucket and no defaultBucket)')
        return
      }
      actor = this.#spawnBucket(bucket) ?? undefined
    }
    if (actor === undefined) {
      this.#refuse(bucket, frames, receipt, 'unknown_bucket')
      unknownLog.warn(this.#log, `unknown:${bucket}`, { bucket, frames: frames.length }, 'frames for an unknown bucket dropped (no such bucket and no defaultBucket)')
      return
    }
    actor.tell({ type: 'frames', frames, bytes, receipt })
  }

  /** Frames no bucket takes: counted on `label`'s flow of no stream, refused to an acknowledged client. */
  #refuse (label: string, frames: readonly Frame[], receipt: Receipt | null, reason: 'unknown_bucket' | 'too_many_buckets'): void {
    if (reason === 'unknown_bucket') this.#stats.unknownBucketFrames += frames.length
    const stats = this.#stats.bucket(label)
    stats.received += frames.length
    const flow = stats.flow('')
    flow.received += frames.length
    flow.drop(reason, frames.length)
    if (receipt !== null) {
      refuseFrames(frames, reason)
      receipt.release()
    }
  }

  childFailed (child: ActorRef, error: unknown): Directive {
    if (child instanceof StreamActor && error instanceof StreamFailure) {
      // A StreamFailure is stream-wide; destination faults never reach here (stream-actor.ts).
      const decision = decideFault(error, child.backup !== null)
      if (decision.action === 'failover' || decision.action === 'restart') return decision.action
    }
    this.#log.error({ err: error, actor: child.name }, 'actor failed; resuming it')
    return 'resume'
  }

  protected override receive (msg: ManagerMsg): void {
    const never: never = msg
    throw new Error(`unexpected message ${String(never)}`)
  }

  /** Buckets flush, then streams drain; past the shutdown timeout what is left goes to backup. */
  protected override async onStop (): Promise<void> {
    await Promise.all([...this.#buckets.values()].map((b) => b.stop()))
    const primaries = [...this.#streams.values()]
    const deadline = setTimeout(() => {
      for (const s of primaries) {
        if (s.state !== 'stopped') {
          this.#log.warn({ stream: s.id, queued: s.queued }, 'shutdown timeout: handing what is left to the backup')
          s.signal({ kind: 'abandon' })
        }
      }
    }, this.#shutdownTimeoutMs)
    try {
      await Promise.all(primaries.map((s) => s.stop()))
    } finally {
      clearTimeout(deadline)
    }
    // Backups last: the primaries' final hand-offs land in them.
    const backups = primaries.map((s) => s.backup).filter((b): b is StreamActor => b !== null)
    const backupDeadline = setTimeout(() => { for (const b of backups) b.signal({ kind: 'abandon' }) }, this.#shutdownTimeoutMs)
    try {
      await Promise.all(backups.map((b) => b.stop()))
    } finally {
      clearTimeout(backupDeadline)
    }
  }

  /**
   * SIGHUP (docs/guarantees.md#reload): swaps in a new, already validated buckets file without losing what is
   * buffered. Each bucket flushes what it holds to the streams it had, then takes its new
   * streams; streams that changed or went away drain and stop; unchanged streams (and their
   * connections, modes and backups) carry on.
   */
  async reload (config: BucketsConfig): Promise<void> {
    const old = this.#streams
    const next = new Map<string, StreamActor>()
    const built: StreamActor[] = []
    try {
      for (const [id, sc] of config.streams) {
        const same = this.#config.streams.get(id)
        const keep = old.get(id)
        if (keep !== undefined && same !== undefined && JSON.stringify(same) === JSON.stringify(sc)) next.set(id, keep)
        else next.set(id, this.#streamActor(id, sc, 'primary', built))
      }
    } catch (err) {
      // A reload that cannot be built leaves nothing behind: what it built so far is stopped
      // (closing its streams) and the running configuration stays (issue 10, finding 9).
      await Promise.all(built.map((a) => a.stop()))
      throw err
    }
    this.#config = config
    this.#streams = next
    const gone: BucketActor[] = []
    await Promise.all([...this.#buckets].map(async ([name, actor]) => {
      const bc = this.#bucketConfig(name)
      if (bc === null) {
        this.#buckets.delete(name)
        gone.push(actor)
        return
      }
      await new Promise<void>((resolve) => { actor.signal({ kind: 'reconfigure', config: bc, bindings: this.#bindings(name, bc), deadLetter: this.#deadLetter(name, bc), done: resolve }) })
    }))
    await Promise.all(gone.map((a) => a.stop()))
    const retired = [...old.values()].filter((a) => ![...next.values()].includes(a))
    await Promise.all(retired.map(async (a) => {
      await a.stop()
      await a.backup?.stop()
    }))
    for (const w of config.warnings) this.#log.warn(w)
    this.#log.info({ streams: [...next.keys()], buckets: [...config.buckets.keys()], retired: retired.map((a) => a.id) }, 'buckets file reloaded')
  }

  #bucketConfig (name: string): BucketConfig | null {
    return this.#config.buckets.get(name) ?? this.#config.defaultBucket
  }

  #bindings (name: string, config: BucketConfig): Binding[] {
    const stats = this.#stats.bucket(name)
    return config.streams.map((id) => {
      const sc = this.#config.streams.get(id)!
      return { stream: this.#streams.get(id)!, slice: sc.slice, sliceBy: sc.sliceBy, flow: stats.flow(id) }
    })
  }

  /** The dead-letter stream takes every rejected message: no slice. */
  #deadLetter (name: string, config: BucketConfig): Binding | null {
    if (config.deadLetter === null) return null
    return { stream: this.#streams.get(config.deadLetter)!, slice: 1, sliceBy: 'random', flow: this.#stats.bucket(name).flow(config.deadLetter) }
  }

  #spawnBucket (name: string): BucketActor | null {
    const config = this.#bucketConfig(name)
    if (config === null || this.state !== 'running') return null
    const stats = this.#stats.bucket(name)
    const actor = new BucketActor({ name, config, bindings: this.#bindings(name, config), deadLetter: this.#deadLetter(name, config), stats, budget: this.#budget, log: this.#log.child({ bucket: name }), supervisor: this })
    this.#buckets.set(name, actor)
    return actor
  }

  /** `built` collects every actor made here (backups too), so a failed reload can stop them. */
  #streamActor (id: string, config: StreamConfig, role: 'primary' | 'backup', built: StreamActor[] = []): StreamActor {
    const backup = config.backup === null ? null : this.#streamActor(`${id}.backup`, config.backup, 'backup', built)
    const log = this.#log.child({ stream: id })
    const actor = new StreamActor({
      id,
      role,
      stream: this.#createStream(config, log, role),
      backup,
      probeIntervalMs: config.type === 'kafka' ? config.settings.probeIntervalMs : DEFAULT_FILE_PROBE_MS,
      replayBytesPerSec: config.type === 'kafka' ? config.settings.replayBytesPerSec : undefined,
      stats: this.#stats,
      log,
      supervisor: this,
    })
    built.push(actor)
    if (role === 'primary') {
      actor.checkLeftovers().catch((err: unknown) => { this.#log.error({ err, stream: id }, 'cannot list backup files left by an earlier run') })
    }
    return actor
  }
}
