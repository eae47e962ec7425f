// One client session per connection (SPEC §3): decodes the byte stream and hands each
// decoded chunk's frames to their buckets, one mailbox message per bucket per chunk.
import type { Socket } from 'node:net'
import type { Logger } from '../log.ts'
import { RateLimitedLog } from '../log.ts'
import { ProtocolError } from '../errors.ts'
import { FrameDecoder, type InvalidReason } from '../protocol/decoder.ts'
import { WireFrame, type Frame } from '../protocol/frame.ts'
import { compact } from '../protocol/compact.ts'
import type { Stats } from '../stats.ts'
import type { HalfClose } from '../half-close.ts'
import type { Admission, MemoryBudget } from '../memory-budget.ts'
import { Actor, type Supervisor } from './actor.ts'

export interface Router {
  deliver (bucket: string, frames: readonly Frame[], bytes: number): void
}

export type SessionMsg =
  | { readonly type: 'chunk', readonly chunk: Buffer }
  | { readonly type: 'closed' }

export type SessionSignal =
  | { readonly kind: 'drain', readonly deadline: number }
  | { readonly kind: 'quiet?' }
  | { readonly kind: 'bound' }

export interface SessionOptions {
  id: number
  socket: Socket
  router: Router
  stats: Stats
  maxFrameBytes: number
  log: Logger
  supervisor: Supervisor
  /** Unfinished frames are charged here from their first byte (memory-budget.ts). */
  budget: MemoryBudget
  /** shutdown(2) for the drain, or null to read until the client is quiet (half-close.ts). */
  halfClose: HalfClose | null
  /** The fallback drain: the client is taken as done once it has been quiet this long. */
  drainQuietMs: number
  /** Bytes left unread when the shutdown bound hit (kahets_shutdown_unread_bytes_total). */
  unread: (bytes: number) => void
}

const warnings = new RateLimitedLog()

export class Session extends Actor<SessionMsg, SessionSignal> {
  readonly id: number
  readonly #socket: Socket
  readonly #router: Router
  readonly #stats: Stats
  readonly #log: Logger
  readonly #decoder: FrameDecoder
  readonly #opts: SessionOptions
  #lastData = Date.now()
  #closed = false
  #timer: NodeJS.Timeout | null = null
  #deadline = Infinity
  /** What this session's unfinished frame is charged to the budget. */
  #charged = 0
  #pauseWanted = false
  #draining = false
  #socketPaused = false
  /** The unfinished frame (decoder.partialsStarted) read to its end despite a pause, or -1. */
  #finishing = -1
  /** The unfinished frame that has MAXMEMORY's leave to hold its whole buffer, or -1. */
  #admitted = -1
  #waiting: Admission | null = null
  #waitingFor = -1
  /** The chunk being decoded (see #held). */
  #chunk: Buffer | null = null

  constructor (opts: SessionOptions) {
    super(`session:${opts.id}`, opts.supervisor)
    this.id = opts.id
    this.#socket = opts.socket
    this.#router = opts.router
    this.#stats = opts.stats
    this.#log = opts.log
    this.#opts = opts
    this.#decoder = new FrameDecoder({
      frames: (batch) => { this.#route(batch) },
      invalid: (reason, bytes) => { this.#invalid(reason, bytes) },
    }, { maxFrameBytes: opts.maxFrameBytes, mayHoldWhole: (total) => this.#mayHoldWhole(total) })
    this.#socket.on('data', (chunk: Buffer) => {
      this.#lastData = Date.now()
      if (this.state !== 'stopped') this.tell({ type: 'chunk', chunk })
    })
    // 'close' follows 'end' and 'error' alike; errors (ECONNRESET) only end the session.
    this.#socket.on('error', (err) => { this.#log.debug({ err, session: this.id }, 'client socket error') })
    this.#socket.on('close', () => { if (this.state !== 'stopped') this.tell({ type: 'closed' }) })
  }

  protected override receive (msg: SessionMsg): void {
    switch (msg.type) {
      case 'chunk':
        if (this.#closed) return
        this.#chunk = msg.chunk
        try {
          this.#decoder.push(msg.chunk)
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err
          this.#stats.oversizedFrames++
          warnings.warn(this.#log, 'oversized', { session: this.id, err: err.message }, 'oversized frame: closing the connection')
          this.#closed = true
          this.#socket.destroy()
        } finally {
          this.#chunk = null
          this.#charge()
          this.#applyPause()
        }
        return
      case 'closed':
        this.#end()
        void this.stop()
        return
      default: {
        const never: never = msg
        throw new Error(`unknown message ${JSON.stringify(never)}`)
      }
    }
  }

  protected override receiveSystem (msg: SessionSignal): void {
    switch (msg.kind) {
      case 'drain':
        this.#deadline = msg.deadline
        if (this.#closed || this.#socket.destroyed) {
          void this.stop()
          return
        }
        // Half-closed, the socket reads what the client had sent and then ends ('closed').
        if (this.#opts.halfClose?.shutdownRead(this.#socket) === true) this.#arm(msg.deadline - Date.now(), { kind: 'bound' })
        else this.#waitQuiet()
        return
      case 'quiet?':
        this.#waitQuiet()
        return
      case 'bound':
        this.#bound()
        return
      default: {
        const never: never = msg
        throw new Error(`unknown signal ${JSON.stringify(never)}`)
      }
    }
  }

  protected override onStop (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#end()
    this.#socket.destroy()
  }

  /**
   * Memory pressure (memory-budget.ts): stop reading; what the client sends waits in the
   * kernel. An unfinished frame begun before the pause that has its whole buffer is read to
   * its end first: that costs no memory, and the frames that were begun complete and leave.
   */
  pauseReading (): void {
    this.#pauseWanted = true
    this.#finishing = this.#decoder.partialTotal > 0 ? this.#decoder.partialsStarted : -1
    this.#applyPause()
  }

  resumeReading (): void {
    this.#pauseWanted = false
    // A drain waits for the client to be quiet; a paused socket was only quiet because it
    // was not read, so the quiet period starts now.
    this.#lastData = Date.now()
    this.#applyPause()
  }

  #applyPause (): void {
    const d = this.#decoder
    let read: boolean
    if (this.#draining) read = true // shutdown reads what clients sent, pressure or not
    else if (this.#waiting !== null) read = false
    else if (!this.#pauseWanted) read = true
    else read = d.partialTotal > 0 && d.partialsStarted === this.#finishing && (d.holdsWholeBuffer || this.#admitted === d.partialsStarted)
    if (read === !this.#socketPaused) return
    this.#socketPaused = !read
    if (read) this.#socket.resume()
    else this.#socket.pause()
  }

  /** The decoder asks for the whole buffer of a large frame: MAXMEMORY admits it, or it waits. */
  #mayHoldWhole (total: number): boolean {
    const frame = this.#decoder.partialsStarted
    if (this.#admitted === frame) return true
    if (this.#waiting !== null) return false
    const waiting = this.#opts.budget.admit(total, this.#charged, () => {
      this.#waiting = null
      this.#admitted = frame
      this.#charged = total
      this.#applyPause()
    })
    if (waiting === null) {
      this.#admitted = frame
      this.#charged = total
      return true
    }
    this.#waiting = waiting
    this.#waitingFor = frame
    return false
  }

  /** Keeps the budget's charge equal to what the unfinished frame holds (or was admitted to). */
  #charge (): void {
    const d = this.#decoder
    if (this.#waiting !== null && (d.partialTotal === 0 || d.partialsStarted !== this.#waitingFor)) {
      // The frame completed (or the connection ended) before its turn came.
      this.#opts.budget.cancel(this.#waiting)
      this.#waiting = null
    }
    const held = d.partialTotal > 0 && this.#admitted === d.partialsStarted ? d.partialTotal : d.heldBytes
    if (held === this.#charged) return
    const delta = held - this.#charged
    this.#charged = held
    this.#opts.budget.holdUnfinished(delta, this.#waiting)
  }

  /**
   * Shutdown: half-close the read side and read to the end (or, without the binding, read
   * until the client is quiet), then close; at `deadline` what is still unread is counted
   * and the session closes anyway. Resolves when the session stopped.
   */
  drain (deadline: number): Promise<void> {
    this.#draining = true
    this.#applyPause()
    this.signal({ kind: 'drain', deadline })
    return this.stopped
  }

  #arm (ms: number, signal: SessionSignal): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { this.#timer = null; this.signal(signal) }, Math.max(0, ms))
  }

  #waitQuiet (): void {
    const now = Date.now()
    if (now >= this.#deadline) {
      this.#bound()
      return
    }
    const quietFor = now - this.#lastData
    if (quietFor >= this.#opts.drainQuietMs || this.#socket.destroyed) {
      void this.stop()
      return
    }
    this.#arm(Math.min(this.#opts.drainQuietMs - quietFor, this.#deadline - now), { kind: 'quiet?' })
  }

  /** SHUTDOWN_TIMEOUT hit before the client's bytes were all read: count them, then close. */
  #bound (): void {
    const kernel = this.#opts.halfClose?.unreadBytes(this.#socket) ?? null
    const partial = this.#decoder.pendingBytes
    const unread = (kernel ?? 0) + partial
    if (unread > 0 || kernel === null) {
      if (unread > 0) this.#opts.unread(unread)
      this.#log.error({ session: this.id, unreadBytes: kernel ?? 'unknown', partialFrameBytes: partial }, 'SHUTDOWN_TIMEOUT reached: closing a connection with bytes still unread')
    }
    void this.stop()
  }

  #end (): void {
    if (this.#closed && this.#decoder.pendingBytes === 0) return
    this.#closed = true
    const lost = this.#decoder.end()
    this.#charge()
    if (lost > 0) {
      this.#stats.truncatedFrames++
      warnings.warn(this.#log, 'truncated', { session: this.id, bytes: lost }, 'connection ended mid-frame: partial frame discarded')
    }
  }

  #route (batch: Frame[]): void {
    // A frame that just completed leaves the unfinished charge before its bucket charges it.
    this.#charge()
    // Usually a chunk carries one bucket; split only when it does not.
    const first = batch[0]!.bucket
    let bytes = 0
    let mixed = false
    for (const f of batch) {
      bytes += f.size
      if (f.bucket !== first) mixed = true
    }
    if (!mixed) {
      this.#router.deliver(first, this.#held(batch, bytes), bytes)
      return
    }
    const groups = new Map<string, { frames: Frame[], bytes: number }>()
    for (const f of batch) {
      let g = groups.get(f.bucket)
      if (g === undefined) groups.set(f.bucket, g = { frames: [], bytes: 0 })
      g.frames.push(f)
      g.bytes += f.size
    }
    for (const [bucket, g] of groups) this.#router.deliver(bucket, this.#held(g.frames, g.bytes), g.bytes)
  }

  /**
   * Frames as a bucket may hold them: copied out of the chunk when they would keep a much
   * larger chunk alive than MAXMEMORY charges (compact.ts). The common case — the frames of
   * one bucket fill the chunk just read — is decided without looking at each frame.
   */
  #held (frames: Frame[], bytes: number): readonly Frame[] {
    const chunk = this.#chunk
    const head = frames[0]!
    const last = frames[frames.length - 1]!
    if (chunk !== null && last instanceof WireFrame && last.origin.chunk === chunk) {
      // Only the first frame of a chunk can come from elsewhere: an unfinished frame it completed.
      const inChunk = head !== last && !(head instanceof WireFrame && head.origin.chunk === chunk) ? bytes - head.size : bytes
      if (inChunk * 2 >= chunk.length) return frames
    }
    return compact(frames)
  }

  #invalid (reason: InvalidReason, bytes: number): void {
    this.#stats.invalid(reason)
    warnings.warn(this.#log, `invalid:${reason}`, { session: this.id, reason, bytes }, 'invalid frame skipped')
  }
}
