// One actor per stream definition (docs/architecture.md#how-it-works): delivery per bucket lane, and the stream's mode.
//
// Each bucket is a lane with at most one write outstanding, so per-bucket order holds while
// different buckets proceed in parallel; deliveries that queue behind a busy lane are
// coalesced into its next write. What a failed write means is decided in one place
// (fault-policy.ts): a refused destination affects its lane only (dropped, or diverted to the
// backup and tried again at a later replay), a failed stream affects every lane and is the
// supervisor's call (failover, restart). The stream's modes are the state machine of
// stream-state.ts; this actor feeds it events and performs its effects. Replay is replay.ts.
//
//   lane state   deliveries
//   normal       written to the stream (while the stream's mode lets them)
//   diverted     its destination refused them for now: to the backup (with no backup: kept
//                in the lane, written again after a probe interval)
//   held         last phase of a background replay: wait in the lane, then normal or diverted
import type { Logger } from '../log.ts'
import { RateLimitedLog } from '../log.ts'
import { StreamFailure } from '../errors.ts'
import { refuseFrames } from '../receipts.ts'
import type { Frame } from '../protocol/frame.ts'
import type { DropReason, Stats } from '../stats.ts'
import type { FileUsage, Rejections, Stream } from '../streams/stream.ts'
import { Actor, type Supervisor } from './actor.ts'
import { Charge, type Delivery } from './delivery.ts'
import { decideFault } from './fault-policy.ts'
import { Replay, StuckFiles, retryStuckFiles, type ReplayProgress } from './replay.ts'
import { initialState, transition, type StreamEffect, type StreamEvent, type StreamMode, type StreamState } from './stream-state.ts'

export type { StreamMode } from './stream-state.ts'
export type { ReplayProgress } from './replay.ts'

export type StreamMsg =
  | { readonly type: 'write', readonly delivery: Delivery }
  | { readonly type: 'settled', readonly bucket: string, readonly deliveries: Delivery[], readonly error: unknown, readonly rejections?: Rejections }
  /** The probe timer fired. */
  | { readonly type: 'tick' }
  | { readonly type: 'probed', readonly ok: boolean }
  /** The backup's files must be closed (flushed) before they are replayed. */
  | { readonly type: 'rotate', readonly done: (error?: unknown) => void }
  | { readonly type: 'rotated', readonly waiting: Array<(error?: unknown) => void>, readonly error: unknown }
  | { readonly type: 'replayed', readonly kind: 'background' | 'recovery', readonly error: unknown, readonly more: boolean, readonly refusedForNow: ReadonlySet<string>, readonly progress: boolean }
  /** A bucket spilled to this stream's backup (MAXMEMORY): those files need a replay too. */
  | { readonly type: 'spilled' }
  /** Backup files left by an earlier run: replay them once the stream answers. */
  | { readonly type: 'leftovers', readonly files: number }
  /** A diverted lane of a stream with no backup: time to write its destination again. */
  | { readonly type: 'lane-retry', readonly bucket: string }
  /** Whether the stream as a whole still answers after a destination fault (see #confirm). */
  | { readonly type: 'confirmed', readonly ok: boolean, readonly error: unknown }

export type StreamSignal =
  /** Shutdown deadline passed: stop waiting on the stream, hand everything on now. */
  | { readonly kind: 'abandon' }

type LaneState = 'normal' | 'diverted' | 'held'

interface Lane {
  busy: boolean
  queue: Delivery[]
  state: LaneState
  retry: NodeJS.Timeout | null
}

export interface StreamActorOptions {
  id: string
  role: 'primary' | 'backup'
  stream: Stream
  backup: StreamActor | null
  probeIntervalMs: number
  /** Replay speed bound, so a replay does not starve live traffic (issue 4). */
  replayBytesPerSec?: number
  stats: Stats
  log: Logger
  supervisor: Supervisor
}

const divertLog = new RateLimitedLog()
// A destination that keeps refusing for now has its frames read back and respooled by every
// replay: while replays do only that, the next one waits twice as long, up to this.
const MAX_DRAIN_DELAY_MS = 60_000

export class StreamActor extends Actor<StreamMsg, StreamSignal> {
  readonly id: string
  readonly role: 'primary' | 'backup'
  readonly backup: StreamActor | null
  readonly #stream: Stream
  readonly #log: Logger
  readonly #probeIntervalMs: number
  readonly #lanes = new Map<string, Lane>()
  #state: StreamState
  #held: Delivery[] = []
  #inFlight = 0
  #probeTimer: NodeJS.Timeout | null = null
  #abandoned = false
  #queuedFrames = 0
  #queuedBytes = 0
  /** Replays under way (one at a time: a new one starts after the last one ended). */
  #replaying = 0
  #replayChain: Promise<void> = Promise.resolve()
  // Last phase of a recovery replay: new deliveries wait in their lanes until the backup is empty.
  #holdLanes = false
  #rotations: Array<(error?: unknown) => void> = []
  #rotating = false
  #resetting = false
  /** Deliveries this (backup) actor wrote: a replay that saw this change knows more came in. */
  #accepted = 0
  #confirming = false
  /** Delay before a background replay (see MAX_DRAIN_DELAY_MS). */
  #drainDelayMs: number
  readonly #stats: Stats
  readonly #replayBytesPerSec: number
  readonly #queuedByBucket = new Map<string, number>()

  constructor (opts: StreamActorOptions) {
    super(`stream:${opts.id}`, opts.supervisor)
    this.id = opts.id
    this.role = opts.role
    this.backup = opts.backup
    this.#stream = opts.stream
    this.#log = opts.log
    this.#probeIntervalMs = opts.probeIntervalMs
    this.#stats = opts.stats
    this.#replayBytesPerSec = opts.replayBytesPerSec ?? 32 * 1024 * 1024
    this.#drainDelayMs = opts.probeIntervalMs
    this.#state = initialState(this.backup !== null && this.backup.keepsFiles)
  }

  /** Does this stream keep files that can be replayed (a file stream)? */
  get keepsFiles (): boolean { return this.#stream.listClosedFiles !== undefined }

  /** Does this stream's backup keep files that can be replayed into it? */
  get canReplay (): boolean { return this.#state.canReplay }

  /** The files this (backup) stream wrote and has closed, oldest first. */
  async closedFiles (): Promise<string[]> {
    return this.#stream.listClosedFiles === undefined ? [] : await this.#stream.listClosedFiles()
  }

  /** Moves a backup file that could not be read whole out of the replay's way; where to, or null. */
  async quarantine (file: string): Promise<string | null> {
    return this.#stream.quarantine === undefined ? null : await this.#stream.quarantine(file)
  }

  /** The files a file stream holds (a backup's spool), or null for other streams. */
  async usage (): Promise<FileUsage | null> {
    return this.#stream.usage === undefined ? null : await this.#stream.usage()
  }

  /** Deliveries this actor has written so far. */
  get accepted (): number { return this.#accepted }

  /**
   * Called once at start: backup files left by an earlier run (a crash, an outage that
   * outlived the process) are replayed as soon as the stream answers.
   */
  async checkLeftovers (): Promise<void> {
    if (!this.canReplay) return
    const files = await this.backup!.closedFiles()
    if (files.length > 0 && this.state === 'running') this.tell({ type: 'leftovers', files: files.length })
  }

  /** Can a delivery skip this stream for its backup (MAXMEMORY, bucket.ts)? */
  get canSpill (): boolean { return this.backup !== null && this.backup.state !== 'stopped' }

  /**
   * MAXMEMORY reached (bucket.ts): the delivery skips this stream and goes straight to the
   * backup, and a replay brings it back at the next probe tick (stream-state.ts).
   */
  spill (d: Delivery): void {
    this.backup!.write(d)
    if (this.state !== 'stopped') this.tell({ type: 'spilled' })
  }

  /** Closes the files this (backup) stream has open, after every write queued before this call. */
  rotate (): Promise<void> {
    return new Promise((resolve, reject) => {
      this.tell({ type: 'rotate', done: (error) => { if (error === undefined) resolve(); else reject(error) } })
    })
  }

  get mode (): StreamMode { return this.#state.mode }
  /** Why the stream last failed over or held (code and message), until it answers again: /healthz shows it. */
  get lastFailure (): { code: string, message: string } | null { return this.#lastFailure }
  #lastFailure: { code: string, message: string } | null = null
  /** Buckets whose destination refused writes for now: their messages go to the backup. */
  get divertedBuckets (): string[] {
    return [...this.#lanes].filter(([, lane]) => lane.state === 'diverted').map(([bucket]) => bucket)
  }

  readonly replayProgress: ReplayProgress = { filesLeft: 0, bytesLeft: 0, bytesReplayed: 0, tornFrames: 0, corruptRecords: 0, corruptBytes: 0, stuckFiles: 0 }
  /** Replayed backup files that could not be deleted or quarantined (replay.ts). */
  readonly #stuck = new StuckFiles()
  #stuckTimer: NodeJS.Timeout | null = null
  get streamType (): Stream['type'] { return this.#stream.type }
  /** Frames and bytes this actor holds that are not yet delivered (queued, held, in flight). */
  get queued (): { frames: number, bytes: number } { return { frames: this.#queuedFrames, bytes: this.#queuedBytes } }
  /** Frames of one bucket this actor holds, not yet delivered, backed up or dropped. */
  queuedFor (bucket: string): number { return this.#queuedByBucket.get(bucket) ?? 0 }

  write (delivery: Delivery): void {
    this.#track(delivery, 1)
    this.tell({ type: 'write', delivery })
  }

  protected override receive (msg: StreamMsg): void {
    switch (msg.type) {
      case 'write':
        this.#route(msg.delivery)
        return
      case 'settled':
        this.#settled(msg.bucket, msg.deliveries, msg.error, msg.rejections)
        return
      case 'tick':
        this.#apply({ type: 'tick' })
        return
      case 'probed':
        if (msg.ok) {
          this.#log.info({ from: this.mode }, 'stream answers again')
          this.#lastFailure = null
        }
        this.#apply({ type: 'probed', ok: msg.ok })
        return
      case 'rotate':
        this.#rotations.push(msg.done)
        this.#maybeRotate()
        return
      case 'spilled':
        // A MAXMEMORY spill drains within two probe intervals, whatever a refusing
        // destination's backoff had reached.
        if (this.#writing && this.#drainDelayMs !== this.#probeIntervalMs) {
          this.#drainDelayMs = this.#probeIntervalMs
          this.#clearProbe()
        }
        this.#apply({ type: 'spilled' })
        return
      case 'rotated':
        this.#resetting = false
        this.#rotating = this.#rotations.length > 0
        for (const done of msg.waiting) done(msg.error ?? undefined)
        this.#flushLanes()
        this.#maybeRotate()
        return
      case 'replayed':
        this.#replayed(msg)
        return
      case 'leftovers':
        if (this.mode !== 'normal') return
        this.#log.info({ files: msg.files }, 'backup files from an earlier run found; replaying them once the stream answers')
        this.#apply({ type: 'leftovers' })
        return
      case 'lane-retry': {
        const lane = this.#lane(msg.bucket)
        lane.retry = null
        if (lane.state === 'diverted') lane.state = 'normal'
        this.#pump(msg.bucket, lane)
        return
      }
      case 'confirmed':
        this.#confirming = false
        if (!msg.ok && this.#writing) throw new StreamFailure(msg.error)
        return
      default: {
        const never: never = msg
        throw new Error(`unknown message ${JSON.stringify(never)}`)
      }
    }
  }

  protected override receiveSystem (msg: StreamSignal): void {
    switch (msg.kind) {
      case 'abandon':
        this.#abandon()
        return
      default: {
        const never: never = msg.kind
        throw new Error(`unknown signal ${String(never)}`)
      }
    }
  }

  protected override isIdle (): boolean {
    if (this.#inFlight > 0 || this.#replaying > 0 || this.#resetting) return false
    if (this.#abandoned) return true
    if (this.#held.length > 0) return false
    for (const lane of this.#lanes.values()) if (lane.queue.length > 0) return false
    return true
  }

  #noteFailure (error: unknown): void {
    // A StreamFailure wraps what the stream threw; that one names the stream and the reason.
    const cause = (error as Error).cause ?? error
    const code = (cause as { code?: unknown }).code
    this.#lastFailure = { code: typeof code === 'string' ? code : 'KAHETS_STREAM_WRITE_FAILED', message: (cause as Error)?.message ?? String(cause) }
  }

  protected override onFailover (error: unknown): void {
    this.#undivertLanes()
    this.#noteFailure(error)
    this.#log.error({ err: (error as Error).cause ?? error, backup: this.backup?.id }, 'stream failed; failing over to the backup stream')
    this.#apply({ type: 'failed', backup: true })
  }

  protected override onRestart (error: unknown): void {
    this.#undivertLanes()
    this.#noteFailure(error)
    this.#log.error({ err: (error as Error).cause ?? error }, 'stream failed and has no backup; holding its messages and retrying')
    this.#apply({ type: 'failed', backup: false })
  }

  protected override async onStop (unhandled: StreamMsg[]): Promise<void> {
    this.#clearProbe()
    if (this.#stuckTimer !== null) clearTimeout(this.#stuckTimer)
    this.#stuckTimer = null
    for (const m of unhandled) {
      if (m.type === 'write') this.#drop(m.delivery, 'stream_failed')
      else if (m.type === 'settled') m.deliveries.forEach((d) => this.#drop(d, 'stream_failed'))
    }
    for (const d of this.#held) this.#drop(d, 'shutdown')
    this.#held = []
    for (const lane of this.#lanes.values()) {
      if (lane.retry !== null) clearTimeout(lane.retry)
      for (const d of lane.queue.splice(0)) this.#drop(d, 'shutdown')
    }
    await this.#stream.close()
  }

  /** The one way the mode changes: the state machine's transition, then its effects. */
  #apply (event: StreamEvent): void {
    const { state, effects } = transition(this.#state, event)
    this.#state = state
    for (const effect of effects) this.#perform(effect)
  }

  #perform (effect: StreamEffect): void {
    switch (effect) {
      case 'divert':
        this.#flushLanes()
        return
      case 'wait':
        if (this.mode === 'retrying') this.#scheduleProbe(Math.min(1000, this.#probeIntervalMs))
        else this.#scheduleProbe(this.#writing ? this.#drainDelayMs : this.#probeIntervalMs)
        return
      case 'probe-now':
        this.#clearProbe()
        this.#scheduleProbe(0)
        return
      case 'probe':
        this.#probe()
        return
      case 'replay':
        this.#log.info({}, 'replaying the backup files')
        this.#startReplay('recovery')
        return
      case 'drain':
        this.#startReplay('background')
        return
      case 'resume':
        this.#resume()
        return
      default: {
        const never: never = effect
        throw new Error(`unknown effect ${String(never)}`)
      }
    }
  }

  /** Whether lanes write to the stream now (normal delivery, possibly with a background replay). */
  get #writing (): boolean {
    return this.mode === 'normal' || this.mode === 'draining'
  }

  #route (d: Delivery): void {
    const lane = this.#lane(d.bucket)
    if (!this.#writing) {
      if (!lane.busy && !(this.mode === 'replaying' && this.#holdLanes)) this.#divert(d)
      else lane.queue.push(d)
      return
    }
    if (lane.state === 'diverted' && this.backup !== null && !lane.busy) {
      this.#toBackup(d)
      return
    }
    lane.queue.push(d)
    this.#pump(d.bucket, lane)
  }

  #lane (bucket: string): Lane {
    let lane = this.#lanes.get(bucket)
    if (lane === undefined) {
      lane = { busy: false, queue: [], state: 'normal', retry: null }
      this.#lanes.set(bucket, lane)
    }
    return lane
  }

  #pump (bucket: string, lane: Lane): void {
    if (lane.busy || lane.queue.length === 0 || !this.#writing || this.#rotating || lane.state !== 'normal') return
    const deliveries = lane.queue
    lane.queue = []
    lane.busy = true
    this.#inFlight++
    let frames: readonly Frame[]
    if (deliveries.length === 1) frames = deliveries[0]!.frames
    else {
      const all: Frame[] = []
      for (const d of deliveries) for (const f of d.frames) all.push(f)
      frames = all
    }
    this.#stream.write(bucket, frames).then(
      (rejections) => { this.tell({ type: 'settled', bucket, deliveries, error: null, rejections }) },
      (error: unknown) => { this.tell({ type: 'settled', bucket, deliveries, error: error ?? new Error('write failed') }) },
    )
  }

  #settled (bucket: string, deliveries: Delivery[], error: unknown, rejections: Rejections | undefined): void {
    this.#inFlight--
    const lane = this.#lane(bucket)
    lane.busy = false
    this.#maybeRotate()
    if (error === null) {
      this.#delivered(deliveries, rejections)
      this.#flushLane(bucket, lane)
      return
    }
    const decision = decideFault(error, this.backup !== null)
    switch (decision.action) {
      case 'drop':
        // This destination refuses these frames for good (issue 10): counted, and the lane goes on.
        divertLog.error(this.#log, `refused:${bucket}`, { bucket, reason: decision.reason, err: error }, 'destination refused messages for good; dropped')
        for (const d of deliveries) this.#drop(d, decision.reason, false)
        this.#flushLane(bucket, lane)
        return
      case 'divert':
        this.#divertLane(bucket, lane, deliveries, error)
        return
      case 'failover':
      case 'restart':
        if (!this.#writing) {
          // Already failed over or retrying: this lane's failure joins the rest, in order.
          for (const d of deliveries) this.#divert(d)
          this.#releaseLane(lane)
          return
        }
        // The lane keeps its deliveries, in order; the supervisor applies the directive
        // (onFailover, onRestart), which diverts every idle lane.
        lane.queue.unshift(...deliveries)
        throw new StreamFailure(error)
      default: {
        const never: never = decision
        throw new Error(`unknown decision ${JSON.stringify(never)}`)
      }
    }
  }

  #delivered (deliveries: Delivery[], rejections: Rejections | undefined): void {
    // A lane holds one bucket of one stream, so its deliveries share one flow.
    const flow = deliveries[0]!.flow
    let refused = 0
    for (const [reason, n] of rejections ?? []) {
      flow.drop(reason, n)
      refused += n
    }
    let total = 0
    let bytes = 0
    let oldest = Infinity
    for (const d of deliveries) {
      this.#accepted++
      if (d.respooled !== true) {
        total += d.frames.length
        bytes += d.bytes
        const first = d.frames[0]
        if (first !== undefined && first.receivedAt < oldest) oldest = first.receivedAt
      }
      this.#finish(d)
    }
    // One observation per write (batch-metrics.ts); respooled frames are a replay's.
    if (total > 0) this.#stats.batches.observe(this.id, (Date.now() - oldest) / 1000, total, bytes)
    if (this.role === 'backup') flow.backedUp += Math.max(0, total - refused)
    else flow.delivered += total - refused
  }

  /** One destination refuses writes for now: only its lane leaves the stream. */
  #divertLane (bucket: string, lane: Lane, deliveries: Delivery[], error: unknown): void {
    lane.state = 'diverted'
    lane.queue.unshift(...deliveries)
    this.#confirm(error)
    if (this.backup !== null) {
      divertLog.warn(this.#log, `diverted:${bucket}`, { bucket, err: error, backup: this.backup.id }, 'destination refuses messages for now; its messages go to the backup and are tried again at the next replay')
      this.#releaseLane(lane)
      this.#apply({ type: 'spilled' })
      return
    }
    divertLog.warn(this.#log, `diverted:${bucket}`, { bucket, err: error }, 'destination refuses messages for now; holding them and trying again')
    if (lane.retry === null && !this.#abandoned) {
      lane.retry = setTimeout(() => { if (this.state !== 'stopped') this.tell({ type: 'lane-retry', bucket }) }, Math.min(1000, this.#probeIntervalMs))
      lane.retry.unref()
    }
  }

  /**
   * A destination fault is believed only while the stream itself answers: a file stream whose
   * folder is gone refuses every bucket's path (ENOTDIR, EACCES) before it refuses anything
   * else, and that is the stream's fault, for the supervisor (issue 10).
   */
  #confirm (error: unknown): void {
    if (this.#confirming) return
    this.#confirming = true
    this.#stream.probe().then((ok) => ok, () => false).then((ok) => {
      if (this.state !== 'stopped') this.tell({ type: 'confirmed', ok, error })
    })
  }

  /** The whole stream failed: per-destination diversions no longer mean anything. */
  #undivertLanes (): void {
    for (const lane of this.#lanes.values()) {
      if (lane.state === 'diverted') lane.state = 'normal'
      if (lane.retry !== null) clearTimeout(lane.retry)
      lane.retry = null
    }
  }

  /** After a write, or when the mode changed: the lane writes on, or hands its queue on. */
  #flushLane (bucket: string, lane: Lane): void {
    if (lane.busy) return
    if (!this.#writing) {
      if (!(this.mode === 'replaying' && this.#holdLanes)) this.#releaseLane(lane)
      return
    }
    if (lane.state === 'diverted' && this.backup !== null) this.#releaseLane(lane)
    else this.#pump(bucket, lane)
  }

  #flushLanes (): void {
    for (const [bucket, lane] of this.#lanes) this.#flushLane(bucket, lane)
  }

  #releaseLane (lane: Lane): void {
    for (const d of lane.queue.splice(0)) this.#divert(d)
  }

  /** Out of normal delivery: a delivery goes to the backup, or is held for the retry. */
  #divert (d: Delivery): void {
    if (this.#abandoned) {
      this.#handOff(d)
      return
    }
    if (this.backup !== null && this.mode !== 'retrying') this.#toBackup(d)
    else this.#held.push(d)
  }

  #toBackup (d: Delivery): void {
    this.#untrack(d)
    this.backup!.write(d)
  }

  #scheduleProbe (delayMs: number): void {
    if (this.#probeTimer !== null || this.#abandoned) return
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = null
      if (this.state !== 'stopped') this.tell({ type: 'tick' })
    }, delayMs)
    this.#probeTimer.unref()
  }

  #clearProbe (): void {
    if (this.#probeTimer !== null) clearTimeout(this.#probeTimer)
    this.#probeTimer = null
  }

  #probe (): void {
    if (this.#abandoned) return
    const stream = this.#stream
    const attempt = async (): Promise<boolean> => {
      await stream.reset()
      return await stream.probe()
    }
    attempt().then((ok) => ok, () => false).then((ok) => {
      if (this.state !== 'stopped') this.tell({ type: 'probed', ok })
    })
  }

  #resume (): void {
    const held = this.#held
    this.#held = []
    for (const d of held) this.#lane(d.bucket).queue.push(d)
    this.#flushLanes()
  }

  #maybeRotate (): void {
    if (this.#rotations.length === 0) return
    // Writes already started finish first; new ones wait until the files are closed.
    this.#rotating = true
    if (this.#inFlight > 0 || this.#resetting) return
    this.#resetting = true
    const waiting = this.#rotations
    this.#rotations = []
    this.#stream.reset().then(() => null, (err: unknown) => err ?? new Error('rotate failed')).then((error) => {
      this.tell({ type: 'rotated', waiting, error })
    })
  }

  // Backup files go to the stream oldest first (replay.ts). Phase 1 runs while new messages
  // still go to the backup; phase 2 holds them in their lanes (all lanes in a recovery, the
  // diverted ones in a background replay), flushes the backup and replays what is left, so
  // per-bucket order is kept.
  #startReplay (kind: 'background' | 'recovery'): void {
    this.#replaying++
    const backup = this.backup!
    const mark = backup.accepted
    const replay = new Replay({
      streamId: this.id,
      stream: this.#stream,
      backup,
      respool: (bucket, frames) => { this.#respool(bucket, frames) },
      stats: this.#stats,
      log: this.#log,
      bytesPerSec: this.#replayBytesPerSec,
      progress: this.replayProgress,
      abandoned: () => this.#abandoned,
      stuck: this.#stuck,
    })
    const run = async (): Promise<void> => {
      await backup.rotate()
      await replay.pass()
      if (kind === 'recovery') this.#holdLanes = true
      else for (const lane of this.#lanes.values()) if (lane.state === 'diverted') lane.state = 'held'
      await backup.rotate()
      await replay.pass()
    }
    const done = (error: unknown): void => {
      const more = backup.accepted !== mark || backup.queued.frames > 0
      const progress = replay.replayedFrames > 0 || replay.respooledFrames === 0
      this.tell({ type: 'replayed', kind, error, more, refusedForNow: replay.refusedForNow, progress })
    }
    this.#replayChain = this.#replayChain.then(run).then(() => { done(null) }, (error: unknown) => { done(error ?? new Error('replay failed')) })
  }

  /** Frames a replay read back whose destination refuses them for now: back to the backup. */
  #respool (bucket: string, frames: readonly Frame[]): void {
    const backup = this.backup!
    if (backup.state !== 'running') throw new Error('backup stopped during a replay')
    let bytes = 0
    for (const f of frames) bytes += f.size
    backup.write({ bucket, frames, bytes, flow: this.#stats.bucket(bucket).flow(this.id), charge: Charge.none(), respooled: true })
  }

  #replayed (msg: Extract<StreamMsg, { type: 'replayed' }>): void {
    this.#replaying--
    if (msg.kind === 'recovery') this.#holdLanes = false
    for (const [bucket, lane] of this.#lanes) {
      if (msg.refusedForNow.has(bucket)) lane.state = 'diverted'
      else if (lane.state === 'held' || (msg.kind === 'recovery' && msg.error === null)) lane.state = 'normal'
    }
    this.#drainDelayMs = msg.progress ? this.#probeIntervalMs : Math.min(MAX_DRAIN_DELAY_MS, this.#drainDelayMs * 2)
    if (msg.error === null) this.#log.info({ kind: msg.kind, diverted: [...msg.refusedForNow] }, 'replay finished')
    else this.#log.error({ err: msg.error, kind: msg.kind }, 'replay interrupted')
    this.#apply({ type: 'replayed', kind: msg.kind, ok: msg.error === null, more: msg.more })
    this.#flushLanes()
    this.#armStuckRetry()
  }

  /**
   * Stuck backup files (replay.ts) are retried on their backoff even when no replay comes,
   * in the replay chain so that a retry never races a replay.
   */
  #armStuckRetry (): void {
    const at = this.#stuck.nextRetryAt
    if (at === null || this.#stuckTimer !== null || this.backup === null) return
    const backup = this.backup
    this.#stuckTimer = setTimeout(() => {
      this.#stuckTimer = null
      if (this.state === 'stopped') return
      this.#replayChain = this.#replayChain
        .then(async () => { await retryStuckFiles(this.#stuck, backup, this.#log, this.replayProgress) })
        .catch((err: unknown) => { this.#log.error({ err }, 'retrying stuck backup files failed') })
        .finally(() => { if (this.state !== 'stopped') this.#armStuckRetry() })
    }, Math.max(0, at - Date.now()))
    this.#stuckTimer.unref()
  }

  #abandon (): void {
    this.#abandoned = true
    this.#clearProbe()
    const held = this.#held
    this.#held = []
    for (const d of held) this.#handOff(d)
    for (const lane of this.#lanes.values()) {
      if (lane.retry !== null) clearTimeout(lane.retry)
      lane.retry = null
      for (const d of lane.queue.splice(0)) this.#handOff(d)
    }
  }

  /** At the shutdown deadline: to the backup if there is one, otherwise dropped and counted. */
  #handOff (d: Delivery): void {
    if (this.backup !== null && this.backup.state !== 'stopped') this.#toBackup(d)
    else this.#drop(d, 'shutdown')
  }

  #drop (d: Delivery, reason: DropReason, log = true): void {
    // Respooled frames were counted as backed up already: a loss of them is a replay refusal.
    if (d.respooled === true) d.flow.refuseOnReplay(reason, d.frames.length)
    else d.flow.drop(reason, d.frames.length)
    refuseFrames(d.frames, reason)
    if (log) this.#log.error({ bucket: d.bucket, frames: d.frames.length, reason }, 'messages dropped')
    this.#finish(d)
  }

  #finish (d: Delivery): void {
    this.#untrack(d)
    d.charge.done()
  }

  #track (d: Delivery, sign: 1 | -1): void {
    // Respooled frames are backed up already, not in flight (accounting identity, stats.ts).
    if (d.respooled === true) return
    this.#queuedFrames += sign * d.frames.length
    this.#queuedBytes += sign * d.bytes
    this.#queuedByBucket.set(d.bucket, (this.#queuedByBucket.get(d.bucket) ?? 0) + sign * d.frames.length)
  }

  #untrack (d: Delivery): void {
    this.#track(d, -1)
  }
}
