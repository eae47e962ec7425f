// One client session per connection (docs/architecture.md#how-it-works): decodes the byte stream and hands each
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
import { Acknowledger } from './acknowledger.ts'
import { ControlFrameError, decodeControl, encodeClosing } from '../protocol/control.ts'
import { tagFrames, type Receipt } from '../receipts.ts'

export interface Router {
  /**
   * Hands one bucket's frames on. `receipt` (acknowledged connections only) is held once
   * for this call; the router or the bucket releases it (receipts.ts).
   */
  deliver (bucket: string, frames: readonly Frame[], bytes: number, receipt: Receipt | null): void
}

export type SessionMsg =
  | { readonly type: 'chunk', readonly chunk: Buffer }
  | { readonly type: 'ended' }
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
/** Replies a client leaves unread before kahets stops reading it (docs/protocol.md, ACK). */
const MAX_UNREAD_REPLY_BYTES = 64 * 1024
/** How long a connection that was sent CLOSING may take to close before kahets closes it. */
const CLOSING_GRACE_MS = 1000

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
  /** Acknowledged mode (docs/protocol.md): set by a HELLO as the connection's first frame. */
  #ack: Acknowledger | null = null
  /** Frames of any kind decoded so far: a HELLO counts only as the first. */
  #framesSeen = 0
  /** CLOSING was sent (or the connection is being refused): nothing more is read from it. */
  #closing = false
  #repliesBlocked = false

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
      invalid: (reason, bytes) => { this.#invalidData(reason, bytes) },
      control: (body) => { this.#control(body) },
    }, { maxFrameBytes: opts.maxFrameBytes, mayHoldWhole: (total) => this.#mayHoldWhole(total) })
    this.#socket.on('data', (chunk: Buffer) => {
      this.#lastData = Date.now()
      if (this.state !== 'stopped') this.tell({ type: 'chunk', chunk })
    })
    // 'close' follows 'end' and 'error' alike; errors (ECONNRESET) only end the session.
    this.#socket.on('error', (err) => { this.#log.debug({ err, session: this.id }, 'client socket error') })
    // The listener keeps half-open sockets (allowHalfOpen), so an acknowledged connection can
    // be sent CLOSING after its client's last byte was read; every connection is ended here.
    this.#socket.on('end', () => { if (this.state !== 'stopped') this.tell({ type: 'ended' }); else this.#socket.end() })
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
          if (this.#ack !== null) {
            // It counts as read and refused: the client must not send it again.
            this.#ack.invalid('oversized')
            this.#sendClosing()
          } else {
            this.#socket.destroy()
          }
        } finally {
          this.#chunk = null
          this.#charge()
          this.#applyPause()
        }
        return
      case 'ended':
        // Everything the client sent was read (at shutdown: up to the half-close).
        if (this.#draining) this.#sendClosing()
        else if (!this.#closing) this.#socket.end()
        return
      case 'closed':
        this.#end()
        this.#ack?.close()
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
    if (this.#draining) this.#sendClosing()
    if (!this.#closing) this.#socket.destroy()
  }

  /**
   * The last thing kahets writes on an acknowledged connection: how many data frames it read
   * (docs/protocol.md, CLOSING). A connection without HELLO is closed without a byte.
   */
  #sendClosing (): void {
    if (!this.#closing) this.#endWith(this.#ack?.closing() ?? null)
  }

  /**
   * Nothing more is read: `frame` is the last thing written, then the connection closes (at
   * the latest after CLOSING_GRACE_MS); with no frame, or a socket that cannot take it, at
   * once.
   */
  #endWith (frame: Buffer | null): void {
    this.#closing = true
    if (frame === null || this.#socket.destroyed || !this.#socket.writable) {
      this.#socket.destroy()
      return
    }
    this.#socket.end(frame)
    setTimeout(() => { this.#socket.destroy() }, CLOSING_GRACE_MS).unref()
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
    else if (this.#waiting !== null || this.#repliesBlocked) read = false
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
    this.#framesSeen += batch.length
    if (this.#closing) return // after CLOSING (or a refused HELLO) nothing is read
    const receipt = this.#ack?.receipt(batch.length) ?? null
    if (receipt !== null) tagFrames(batch, receipt)
    this.#deliverAll(batch, receipt)
    receipt?.seal()
  }

  #deliverAll (batch: Frame[], receipt: Receipt | null): void {
    // Usually a chunk carries one bucket; split only when it does not.
    const first = batch[0]!.bucket
    let bytes = 0
    let mixed = false
    for (const f of batch) {
      bytes += f.size
      if (f.bucket !== first) mixed = true
    }
    if (!mixed) {
      receipt?.hold()
      this.#router.deliver(first, this.#held(batch, bytes), bytes, receipt)
      return
    }
    const groups = new Map<string, { frames: Frame[], bytes: number }>()
    for (const f of batch) {
      let g = groups.get(f.bucket)
      if (g === undefined) groups.set(f.bucket, g = { frames: [], bytes: 0 })
      g.frames.push(f)
      g.bytes += f.size
    }
    for (const [bucket, g] of groups) {
      receipt?.hold()
      this.#router.deliver(bucket, this.#held(g.frames, g.bytes), g.bytes, receipt)
    }
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

  /** A data frame skipped as invalid: on an acknowledged connection it is settled and refused. */
  #invalidData (reason: InvalidReason, bytes: number): void {
    this.#framesSeen++
    if (this.#closing) return
    this.#invalid(reason, bytes)
    this.#ack?.invalid(reason)
  }

  #invalid (reason: InvalidReason, bytes: number): void {
    this.#stats.invalid(reason)
    warnings.warn(this.#log, `invalid:${reason}`, { session: this.id, reason, bytes }, 'invalid frame skipped')
  }

  /** docs/protocol.md, "Control frames": HELLO first, then SYNCs; nothing else from a client. */
  #control (body: Buffer): void {
    const first = this.#framesSeen === 0
    this.#framesSeen++
    if (this.#closing) return
    const frame = decodeControl(body)
    const isHello = frame instanceof ControlFrameError ? frame.problem === 'hello' : frame.type === 'hello'
    if (this.#ack === null && first && isHello) {
      if (frame instanceof ControlFrameError || frame.type !== 'hello') {
        // A version or level this kahets cannot serve: CLOSING 0, nothing read.
        this.#invalid('hello', body.length + 5)
        this.#closed = true
        this.#endWith(encodeClosing(0))
        return
      }
      this.#ack = new Acknowledger(frame.level, {
        write: (reply) => { this.#reply(reply) },
        backedUp: () => this.#socket.writableLength > 0,
      })
      return
    }
    if (this.#ack !== null && !(frame instanceof ControlFrameError) && frame.type === 'sync') {
      this.#ack.sync(frame.token)
      return
    }
    // Never answered: a client without HELLO never receives a byte.
    this.#invalid(isHello ? 'hello' : 'control_frame', body.length + 5)
  }

  #reply (frame: Buffer): void {
    const s = this.#socket
    if (s.destroyed || !s.writable) return
    // The callback runs once the kernel took the frame; 'drain' would not come for a
    // backlog below the stream's highWaterMark.
    s.write(frame, () => { if (s.writableLength === 0) this.#repliesDrained() })
    if (!this.#repliesBlocked && s.writableLength > MAX_UNREAD_REPLY_BYTES) {
      // The client does not read its replies (SYNCEDs piled up; ACKs do not, the
      // acknowledger keeps one): stop reading it until it does.
      this.#repliesBlocked = true
      warnings.warn(this.#log, 'unread-replies', { session: this.id, unreadReplyBytes: s.writableLength }, 'acknowledged client does not read its replies: not reading it until it does')
      this.#applyPause()
    }
  }

  #repliesDrained (): void {
    if (this.#repliesBlocked) {
      this.#repliesBlocked = false
      this.#applyPause()
    }
    this.#ack?.drained()
  }
}
