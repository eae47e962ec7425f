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
import type { Frame } from '../protocol/frame.ts'
import type { DropReason } from '../stats.ts'
import type { Stream } from '../streams/stream.ts'
import { Actor, type Supervisor } from './actor.ts'
import type { Delivery } from './delivery.ts'

export type StreamMode = 'normal' | 'backup' | 'retrying'

export type StreamMsg =
  | { readonly type: 'write', readonly delivery: Delivery }
  | { readonly type: 'settled', readonly bucket: string, readonly deliveries: Delivery[], readonly error: unknown }
  | { readonly type: 'probe' }

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
  log: Logger
  supervisor: Supervisor
}

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

  constructor (opts: StreamActorOptions) {
    super(`stream:${opts.id}`, opts.supervisor)
    this.id = opts.id
    this.role = opts.role
    this.backup = opts.backup
    this.#stream = opts.stream
    this.#log = opts.log
    this.#probeIntervalMs = opts.probeIntervalMs
  }

  get mode (): StreamMode { return this.#mode }
  get streamType (): Stream['type'] { return this.#stream.type }
  /** Frames and bytes this actor holds that are not yet delivered (queued, held, in flight). */
  get queued (): { frames: number, bytes: number } { return { frames: this.#queuedFrames, bytes: this.#queuedBytes } }

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
        this.#settled(msg.bucket, msg.deliveries, msg.error)
        return
      case 'probe':
        this.#probe()
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
    return this.#inFlight === 0 && (this.#held.length === 0 || this.#abandoned)
  }

  protected override onFailover (error: unknown): void {
    const failure = error as StreamFailure
    this.#log.error({ err: failure.cause ?? failure, stream: this.id, backup: this.backup?.id }, 'stream failed; failing over to the backup stream')
    this.#enter('backup')
    for (const d of failure.deliveries) this.#divert(d)
    this.#releaseIdleLanes()
  }

  protected override onRestart (error: unknown): void {
    const failure = error as StreamFailure
    this.#log.error({ err: failure.cause ?? failure, stream: this.id }, 'stream failed and has no backup; holding its messages and retrying')
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
    if (this.#mode !== 'normal' && !lane.busy) {
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
    if (lane.busy || lane.queue.length === 0 || this.#mode !== 'normal') return
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
      () => { this.tell({ type: 'settled', bucket, deliveries, error: null }) },
      (error: unknown) => { this.tell({ type: 'settled', bucket, deliveries, error: error ?? new Error('write failed') }) },
    )
  }

  #settled (bucket: string, deliveries: Delivery[], error: unknown): void {
    this.#inFlight--
    const lane = this.#lane(bucket)
    lane.busy = false
    if (error === null) {
      for (const d of deliveries) {
        if (this.role === 'backup') d.flow.backedUp += d.frames.length
        else d.flow.delivered += d.frames.length
        this.#finish(d)
      }
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
    if (this.#mode === 'backup' && this.backup !== null) {
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
      this.#log.info({ stream: this.id, from: this.#mode }, 'stream answers again; resuming normal delivery')
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
    this.#log.error({ stream: this.id, bucket: d.bucket, frames: d.frames.length, reason }, 'messages dropped')
    this.#finish(d)
  }

  #finish (d: Delivery): void {
    this.#untrack(d)
    d.charge.done()
  }

  #track (d: Delivery, sign: 1 | -1): void {
    this.#queuedFrames += sign * d.frames.length
    this.#queuedBytes += sign * d.bytes
  }

  #untrack (d: Delivery): void {
    this.#track(d, -1)
  }
}
