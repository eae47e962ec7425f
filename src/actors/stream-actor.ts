// One actor per stream definition (SPEC §3): delivery, and the stream's mode.
//
//   normal ──write fails──▶ (supervisor) ──failover──▶ backup ──probe ok──▶ normal
//                                        └─restart───▶ retrying ─probe ok─▶ normal
//
// Each bucket is a lane with at most one write outstanding, so per-bucket order holds while
// different buckets proceed in parallel; deliveries that queue behind a busy lane are
// coalesced into its next write. While failed over, everything goes to the backup stream
// actor in per-bucket order; while retrying (no backup), deliveries are held, in order and
// charged to MAXMEMORY, until the stream takes writes again.
import type { Logger } from '../log.ts'
import { ErrorCodes, KahetsError } from '../errors.ts'
import { groupBy } from '../group-by.ts'
import type { Frame } from '../protocol/frame.ts'
import type { DropReason, Stats } from '../stats.ts'
import { readFrameFile, type FrameFileResult } from '../streams/frame-file.ts'
import { stat, unlink } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Rejections, Stream } from '../streams/stream.ts'
import { Actor, type Supervisor } from './actor.ts'
import type { Delivery } from './delivery.ts'

export type StreamMode = 'normal' | 'backup' | 'retrying' | 'replaying'

export interface ReplayProgress {
  filesLeft: number
  bytesLeft: number
  tornFrames: number
  /** Damaged runs found in backup files (each lost at least one record) and their bytes. */
  corruptRecords: number
  corruptBytes: number
}

export type StreamMsg =
  | { readonly type: 'write', readonly delivery: Delivery }
  | { readonly type: 'settled', readonly bucket: string, readonly deliveries: Delivery[], readonly error: unknown, readonly rejections?: Rejections }
  | { readonly type: 'probe' }
  /** The backup's files must be closed (flushed) before they are replayed. */
  | { readonly type: 'rotate', readonly done: (error?: unknown) => void }
  | { readonly type: 'rotated', readonly waiting: Array<(error?: unknown) => void>, readonly error: unknown }
  | { readonly type: 'replayed', readonly error: unknown }
  /** A bucket spilled to this stream's backup (MAXMEMORY): those files need a replay too. */
  | { readonly type: 'spilled' }
  /** Backup files left by an earlier run: replay them once the stream answers. */
  | { readonly type: 'leftovers', readonly files: number }

export type StreamSignal =
  /** Shutdown deadline passed: stop waiting on the stream, hand everything on now. */
  | { readonly kind: 'abandon' }

/** A write that failed; carries what it did not deliver so the supervisor's decision can place it. */
export class StreamFailure extends KahetsError {
  readonly deliveries: Delivery[]

  constructor (cause: unknown, deliveries: Delivery[]) {
    const retriable = cause instanceof KahetsError ? cause.retriable : true
    super(cause instanceof KahetsError ? cause.code : ErrorCodes.STREAM_WRITE_FAILED, `stream write failed: ${(cause as Error)?.message ?? String(cause)}`, { cause, retriable })
    this.deliveries = deliveries
  }
}

interface Lane {
  busy: boolean
  queue: Delivery[]
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

// Frames per write while replaying: enough to batch well, small enough to bound memory.
const REPLAY_CHUNK_FRAMES = 5000

export class StreamActor extends Actor<StreamMsg, StreamSignal> {
  readonly id: string
  readonly role: 'primary' | 'backup'
  readonly backup: StreamActor | null
  readonly #stream: Stream
  readonly #log: Logger
  readonly #probeIntervalMs: number
  readonly #lanes = new Map<string, Lane>()
  #held: Delivery[] = []
  #mode: StreamMode = 'normal'
  #inFlight = 0
  #probeTimer: NodeJS.Timeout | null = null
  #probing = false
  #abandoned = false
  #queuedFrames = 0
  #queuedBytes = 0
  #replaying = false
  // Last phase of a replay: new deliveries wait in their lanes until the backup is empty.
  #holdLanes = false
  #rotations: Array<(error?: unknown) => void> = []
  #rotating = false
  #resetting = false
  #replayPending = false
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
  }

  /** Does this stream's backup keep files that can be replayed into it? */
  get canReplay (): boolean {
    return this.backup !== null && this.backup.#stream.listClosedFiles !== undefined
  }

  /**
   * Called once at start: backup files left by an earlier run (a crash, an outage that
   * outlived the process) are replayed as soon as the stream answers.
   */
  async checkLeftovers (): Promise<void> {
    if (!this.canReplay) return
    const files = await this.backup!.#stream.listClosedFiles!()
    if (files.length > 0 && this.state === 'running') this.tell({ type: 'leftovers', files: files.length })
  }

  /** MAXMEMORY sent some of this stream's messages straight to its backup. */
  spilled (): void {
    if (this.state !== 'stopped') this.tell({ type: 'spilled' })
  }

  /** Closes the files this (backup) stream has open, after every write queued before this call. */
  rotate (): Promise<void> {
    return new Promise((resolve, reject) => {
      this.tell({ type: 'rotate', done: (error) => { if (error === undefined) resolve(); else reject(error) } })
    })
  }

  get mode (): StreamMode { return this.#mode }
  readonly replayProgress: ReplayProgress = { filesLeft: 0, bytesLeft: 0, tornFrames: 0, corruptRecords: 0, corruptBytes: 0 }
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
      case 'probe':
        this.#probe()
        return
      case 'rotate':
        this.#rotations.push(msg.done)
        this.#maybeRotate()
        return
      case 'spilled':
        // Spilled while the stream itself is fine: replay once the pressure has had time to
        // pass (the next probe tick), as after an outage.
        if (this.#mode === 'normal' && this.canReplay && !this.#replayPending) {
          this.#replayPending = true
          this.#scheduleProbe()
        }
        return
      case 'rotated':
        this.#resetting = false
        this.#rotating = this.#rotations.length > 0
        for (const done of msg.waiting) done(msg.error ?? undefined)
        for (const [bucket, lane] of this.#lanes) this.#pump(bucket, lane)
        this.#maybeRotate()
        return
      case 'replayed':
        this.#replayed(msg.error)
        return
      case 'leftovers':
        if (this.#mode !== 'normal') return
        this.#log.info({ files: msg.files }, 'backup files from an earlier run found; replaying them once the stream answers')
        this.#mode = 'backup'
        this.#probeTimer = setTimeout(() => { this.#probeTimer = null; if (this.state !== 'stopped') this.tell({ type: 'probe' }) }, 0)
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
    return this.#inFlight === 0 && !this.#replaying && !this.#resetting && (this.#held.length === 0 || this.#abandoned)
  }

  protected override onFailover (error: unknown): void {
    const failure = error as StreamFailure
    this.#log.error({ err: failure.cause ?? failure, backup: this.backup?.id }, 'stream failed; failing over to the backup stream')
    this.#enter('backup')
    for (const d of failure.deliveries) this.#divert(d)
    this.#releaseIdleLanes()
  }

  protected override onRestart (error: unknown): void {
    const failure = error as StreamFailure
    this.#log.error({ err: failure.cause ?? failure }, 'stream failed and has no backup; holding its messages and retrying')
    this.#enter('retrying')
    for (const d of failure.deliveries) this.#divert(d)
    this.#releaseIdleLanes()
  }

  protected override async onStop (unhandled: StreamMsg[]): Promise<void> {
    this.#clearProbe()
    for (const m of unhandled) {
      if (m.type === 'write') this.#drop(m.delivery, 'stream_failed')
      else if (m.type === 'settled') m.deliveries.forEach((d) => this.#drop(d, 'stream_failed'))
    }
    for (const d of this.#held) this.#drop(d, 'shutdown')
    this.#held = []
    await this.#stream.close()
  }

  #route (d: Delivery): void {
    const lane = this.#lane(d.bucket)
    if (this.#mode !== 'normal' && !lane.busy && !this.#holdLanes) {
      this.#divert(d)
      return
    }
    lane.queue.push(d)
    this.#pump(d.bucket, lane)
  }

  #lane (bucket: string): Lane {
    let lane = this.#lanes.get(bucket)
    if (lane === undefined) {
      lane = { busy: false, queue: [] }
      this.#lanes.set(bucket, lane)
    }
    return lane
  }

  #pump (bucket: string, lane: Lane): void {
    if (lane.busy || lane.queue.length === 0 || this.#mode !== 'normal' || this.#rotating) return
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
      // A lane holds one bucket of one stream, so its deliveries share one flow.
      const flow = deliveries[0]!.flow
      let refused = 0
      for (const [reason, n] of rejections ?? []) {
        flow.drop(reason, n)
        refused += n
      }
      let total = 0
      for (const d of deliveries) {
        total += d.frames.length
        this.#finish(d)
      }
      if (this.role === 'backup') flow.backedUp += total - refused
      else flow.delivered += total - refused
      if (this.#mode === 'normal') this.#pump(bucket, lane)
      else this.#releaseLane(lane)
      return
    }
    if (this.#mode !== 'normal') {
      // Already failed over or retrying: this lane's failure joins the rest, in order.
      for (const d of deliveries) this.#divert(d)
      this.#releaseLane(lane)
      return
    }
    // The supervisor decides (failover, restart, stop); the deliveries travel with the error.
    throw new StreamFailure(error, [...deliveries, ...lane.queue.splice(0)])
  }

  // Deliveries that queued behind a lane that was busy when the mode changed.
  #releaseIdleLanes (): void {
    for (const lane of this.#lanes.values()) if (!lane.busy) this.#releaseLane(lane)
  }

  #releaseLane (lane: Lane): void {
    for (const d of lane.queue.splice(0)) this.#divert(d)
  }

  /** Out of normal mode: a delivery goes to the backup, or is held for the retry. */
  #divert (d: Delivery): void {
    if (this.#abandoned) {
      this.#handOff(d)
      return
    }
    if ((this.#mode === 'backup' || this.#mode === 'replaying') && this.backup !== null) {
      this.#untrack(d)
      this.backup.write(d)
    } else {
      this.#held.push(d)
    }
  }

  #enter (mode: StreamMode): void {
    this.#mode = mode
    this.#scheduleProbe()
  }

  #scheduleProbe (): void {
    if (this.#probeTimer !== null || this.#abandoned) return
    const delay = this.#mode === 'retrying' ? Math.min(1000, this.#probeIntervalMs) : this.#probeIntervalMs
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = null
      if (this.state !== 'stopped') this.tell({ type: 'probe' })
    }, delay)
    this.#probeTimer.unref()
  }

  #clearProbe (): void {
    if (this.#probeTimer !== null) clearTimeout(this.#probeTimer)
    this.#probeTimer = null
  }

  #probe (): void {
    if (this.#mode === 'normal' && this.#replayPending && !this.#abandoned) {
      this.#replayPending = false
      this.#startReplay()
      return
    }
    if (this.#mode === 'normal' || this.#probing || this.#abandoned) return
    this.#probing = true
    const stream = this.#stream
    const attempt = async (): Promise<boolean> => {
      await stream.reset()
      return await stream.probe()
    }
    attempt().then((ok) => ok, () => false).then((ok) => {
      this.#probing = false
      if (this.state === 'stopped') return
      if (!ok) {
        this.#scheduleProbe()
        return
      }
      if (this.#mode === 'backup' && this.canReplay) {
        this.#log.info({}, 'stream answers again; replaying the backup files')
        this.#startReplay()
        return
      }
      this.#log.info({ from: this.#mode }, 'stream answers again; resuming normal delivery')
      this.#recover()
    })
  }

  #recover (): void {
    this.#mode = 'normal'
    const held = this.#held
    this.#held = []
    for (const d of held) this.#lane(d.bucket).queue.push(d)
    for (const [bucket, lane] of this.#lanes) this.#pump(bucket, lane)
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

  // Backup files go to Kafka oldest first; each is deleted only once all of it was
  // acknowledged, so a crash re-sends at most the file under way (SPEC §4). Phase 1 runs
  // while new messages still go to the backup; phase 2 holds new messages in their lanes,
  // flushes the backup and replays what is left, so per-bucket order is kept.
  #startReplay (): void {
    this.#mode = 'replaying'
    this.#replaying = true
    const backup = this.backup!
    const run = async (): Promise<void> => {
      await backup.rotate()
      await this.#replayFiles()
      this.#holdLanes = true
      await backup.rotate()
      await this.#replayFiles()
    }
    run().then(() => { this.tell({ type: 'replayed', error: null }) }, (error: unknown) => { this.tell({ type: 'replayed', error: error ?? new Error('replay failed') }) })
  }

  async #replayFiles (): Promise<void> {
    const backupStream = this.backup!.#stream
    const list = (): Promise<string[]> => backupStream.listClosedFiles!()
    while (true) {
      const files = await list()
      if (files.length === 0) return
      const sizes = await Promise.all(files.map((f) => stat(f).then((st) => st.size, () => 0)))
      this.replayProgress.filesLeft = files.length
      this.replayProgress.bytesLeft = sizes.reduce((a, b) => a + b, 0)
      for (const [i, file] of files.entries()) {
        const started = Date.now()
        let bytes = 0
        const result = await readFrameFile(file, async (frames) => {
          if (this.#abandoned) throw new KahetsError(ErrorCodes.STREAM_UNAVAILABLE, 'replay abandoned at shutdown', { retriable: true })
          for (const [bucket, group] of groupBy(frames, (f) => f.bucket)) {
            for (let at = 0; at < group.length; at += REPLAY_CHUNK_FRAMES) {
              const chunk = group.slice(at, at + REPLAY_CHUNK_FRAMES)
              const rejections = await this.#stream.write(bucket, chunk)
              const flow = this.#stats.bucket(bucket).flow(this.id)
              let refused = 0
              for (const [reason, n] of rejections ?? []) {
                refused += n
                flow.refuseOnReplay(reason, n)
                this.#log.error({ bucket, frames: n, reason }, 'replayed messages refused by the stream')
              }
              flow.replayed += chunk.length - refused
              for (const f of chunk) bytes += f.size
            }
          }
          // Bound the replay rate so live traffic is not starved.
          const due = started + (bytes / this.#replayBytesPerSec) * 1000
          if (due > Date.now()) await sleep(due - Date.now())
        })
        if (result.tornBytes > 0) {
          this.replayProgress.tornFrames++
          this.#log.warn({ file, tornBytes: result.tornBytes }, 'backup file ends in a torn frame (written when kahets was killed); whole frames replayed, the tail skipped')
        }
        // A file not read whole is never deleted: it goes where replay will not list it again.
        if (result.whole) await unlink(file)
        else await this.#quarantine(file, result)
        this.replayProgress.filesLeft = files.length - i - 1
        this.replayProgress.bytesLeft -= sizes[i]!
        if (result.whole) this.#log.info({ file, frames: result.frames }, 'backup file replayed and removed')
      }
    }
  }

  async #quarantine (file: string, result: FrameFileResult): Promise<void> {
    this.replayProgress.corruptRecords += result.damaged.length
    this.replayProgress.corruptBytes += result.corruptBytes
    const backupStream = this.backup!.#stream
    const to = backupStream.quarantine === undefined ? null : await backupStream.quarantine(file)
    this.#log.error({
      file,
      quarantined: to,
      format: result.format,
      frames: result.frames,
      corruptRecords: result.damaged.length,
      corruptBytes: result.corruptBytes,
      damaged: result.damaged.slice(0, 20).map((r) => `${r.start}-${r.end}`),
      unreadable: result.unreadable ?? undefined,
    }, 'backup file damaged: its verified records were replayed, the damaged ranges skipped; the file is kept in quarantine (kahets inspect shows it)')
  }

  #replayed (error: unknown): void {
    this.#replaying = false
    this.#holdLanes = false
    if (error === null) {
      this.#log.info({}, 'replay finished; resuming normal delivery')
      this.#recover()
      return
    }
    this.#log.error({ err: error }, 'replay interrupted; staying on the backup')
    this.#mode = 'backup'
    this.#releaseIdleLanes()
    this.#scheduleProbe()
  }

  #abandon (): void {
    this.#abandoned = true
    this.#clearProbe()
    const held = this.#held
    this.#held = []
    for (const d of held) this.#handOff(d)
    for (const lane of this.#lanes.values()) for (const d of lane.queue.splice(0)) this.#handOff(d)
  }

  /** At the shutdown deadline: to the backup if there is one, otherwise dropped and counted. */
  #handOff (d: Delivery): void {
    if (this.backup !== null && this.backup.state !== 'stopped') {
      this.#untrack(d)
      this.backup.write(d)
    } else {
      this.#drop(d, 'shutdown')
    }
  }

  #drop (d: Delivery, reason: DropReason): void {
    d.flow.drop(reason, d.frames.length)
    this.#log.error({ bucket: d.bucket, frames: d.frames.length, reason }, 'messages dropped')
    this.#finish(d)
  }

  #finish (d: Delivery): void {
    this.#untrack(d)
    d.charge.done()
  }

  #track (d: Delivery, sign: 1 | -1): void {
    this.#queuedFrames += sign * d.frames.length
    this.#queuedBytes += sign * d.bytes
    this.#queuedByBucket.set(d.bucket, (this.#queuedByBucket.get(d.bucket) ?? 0) + sign * d.frames.length)
  }

  #untrack (d: Delivery): void {
    this.#track(d, -1)
  }
}
