// Node client in acknowledged mode (docs/protocol.md, "Control frames"): it says HELLO,
// keeps every frame until kahets reports it settled, and after CLOSING or a broken connection
// reconnects and sends again exactly the frames kahets did not take.
import net from 'node:net'
import { DEFAULT_MAX_FRAME_BYTES, LENGTH_BYTES } from '../../src/protocol/frame.ts'
import { frameLength, writeFrame } from '../../src/protocol/encoder.ts'
import { FrameStore } from './frame-store.ts'
import { AckLevel, type AckLevelName, type ControlFrame, ControlReader, encodeHello, encodeSync } from '../../src/protocol/control.ts'

export interface AckClientOptions {
  ack: AckLevelName
  /** Largest N kahets accepts: its MAX_FRAME_BYTES. Default 1 MiB. */
  maxFrameBytes?: number
  /** Unsettled frames past which send() returns false (await drain()). Default 100,000. */
  maxUnsettledFrames?: number
  /** Unsettled bytes past which send() returns false (await drain()). Default 64 MiB. */
  maxUnsettledBytes?: number
  /** Called with a line to log when the connection breaks, is refused, or comes back. Default: none. */
  log?: (message: string) => void
}

export interface Settlement {
  /** Frames sent through this client that kahets settled (reached the level), since connect(). */
  settled: number
  /** Of those, how many kahets refused (invalid, unknown bucket, rejected topic, …). */
  refused: number
}

interface FlushWaiter {
  target: number
  resolve: (s: Settlement) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout | null
}

const RECONNECT_MIN_MS = 10
const RECONNECT_MAX_MS = 1000

/**
 * A connection to kahets in acknowledged mode. Frames are numbered from 0 over the life of
 * the client (its "global" index); a connection's frame i is global frame `#connBase + i`,
 * since each new connection starts with HELLO and resends the unsettled frames in order.
 *
 * - send() validates, encodes, keeps the frame and writes it (batched per tick); it returns
 *   false when the socket buffer or the unsettled frames reach their bound: `await drain()`.
 * - flush() sends SYNC and resolves once every frame sent so far is settled.
 * - After CLOSING <read> the frames before `read` count as settled (kahets still delivers
 *   them) and the rest are sent again on a new connection; after a connection breaks
 *   without CLOSING, the frames past the last ACK are. Reconnects back off from 10 ms to 1 s.
 */
export class AckClient {
  readonly maxFrameBytes: number
  readonly level: AckLevelName
  readonly #path: string
  readonly #maxFrames: number
  readonly #maxBytes: number
  readonly #log: (message: string) => void
  /** Unsettled frames, oldest first (frame-store.ts). */
  readonly #store = new FrameStore()
  /** Absolute store offset up to which this connection has been written. */
  #writtenBytes = 0
  /** Global index of the store's first frame: every frame before it is settled. */
  #settled = 0
  #refused = 0
  #sent = 0
  #socket: net.Socket | null = null
  #reader = new ControlReader()
  /** Global index of this connection's frame 0, and #refused when it started. */
  #connBase = 0
  #connRefusedBase = 0
  /** Global index of the next frame to write on this connection. */
  #written = 0
  #writeScheduled: NodeJS.Immediate | null = null
  #reconnectTimer: NodeJS.Timeout | null = null
  #backoffMs = RECONNECT_MIN_MS
  #syncToken = 0
  #flushWaiters: FlushWaiter[] = []
  #drainWaiters: Array<() => void> = []
  #closing = false
  #closed = false
  #lastRefusal: { index: number, reason: string } | null = null

  private constructor (socketPath: string, opts: AckClientOptions) {
    this.#path = socketPath
    this.level = opts.ack
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    this.#maxFrames = opts.maxUnsettledFrames ?? 100_000
    this.#maxBytes = opts.maxUnsettledBytes ?? 64 * 1024 * 1024
    this.#log = opts.log ?? (() => {})
  }

  /** Connects and says HELLO; rejects (ENOENT, ECONNREFUSED) when kahets is not there. */
  static async connect (socketPath: string, opts: AckClientOptions): Promise<AckClient> {
    if (opts.ack !== 'accepted' && opts.ack !== 'durable') throw new RangeError(`ack must be 'accepted' or 'durable', not ${JSON.stringify(opts.ack)}`)
    const maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 3 || maxFrameBytes > 0xffffffff) {
      throw new RangeError(`maxFrameBytes must be an integer in 3..${0xffffffff}, not ${maxFrameBytes}`)
    }
    for (const k of ['maxUnsettledFrames', 'maxUnsettledBytes'] as const) {
      const v = opts[k]
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new RangeError(`${k} must be a positive integer, not ${v}`)
    }
    const client = new AckClient(socketPath, opts)
    client.#attach(await openSocket(socketPath))
    return client
  }

  /** Settled and refused counts so far (cumulative since connect()). */
  get settlement (): Settlement {
    return { settled: this.#settled, refused: this.#refused }
  }

  /** Frames sent and not settled yet. */
  get unsettled (): number {
    return this.#store.frames
  }

  /** The last REFUSED detail kahets sent, with the frame's global index (0-based since connect()). */
  get lastRefusal (): { index: number, reason: string } | null {
    return this.#lastRefusal
  }

  get closed (): boolean {
    return this.#closed
  }

  /**
   * Queues one message. Throws RangeError on input kahets would reject and Error after
   * close(). Returns false when the caller should `await drain()` before sending more.
   */
  send (bucket: string, payload: Buffer | string, key?: Buffer | string | null): boolean {
    if (this.#closing || this.#closed) throw new Error('kahets client is closed')
    const length = frameLength(bucket, key, payload)
    if (length - LENGTH_BYTES > this.maxFrameBytes) {
      throw new RangeError(`frame for bucket ${bucket} is ${length - LENGTH_BYTES} bytes; at most ${this.maxFrameBytes} (maxFrameBytes)`)
    }
    const { buf, at } = this.#store.reserve(length)
    writeFrame(buf, at, { bucket, payload, key })
    this.#sent++
    if (this.#socket === null) this.#scheduleReconnect()
    else this.#scheduleWrite()
    return this.#belowBounds()
  }

  /**
   * Sends one whole frame as it is, unvalidated, counted as one data frame (for tests of what
   * kahets refuses: a bad bucket name, fields that do not fit N). Returns false like send().
   */
  sendRaw (frame: Buffer): boolean {
    if (this.#closing || this.#closed) throw new Error('kahets client is closed')
    if (frame.length < LENGTH_BYTES || frame.readUInt32LE(0) !== frame.length - LENGTH_BYTES || frame[LENGTH_BYTES] === 0) {
      throw new RangeError('sendRaw takes one whole data frame: its length field must match and its bucketLen must not be 0')
    }
    const { buf, at } = this.#store.reserve(frame.length)
    frame.copy(buf, at)
    this.#sent++
    if (this.#socket === null) this.#scheduleReconnect()
    else this.#scheduleWrite()
    return this.#belowBounds()
  }

  /** Resolves once send() would return true again: the socket drained and unsettled frames under their bounds. */
  drain (): Promise<void> {
    this.#writeNow()
    if (this.#belowBounds()) return Promise.resolve()
    return new Promise((resolve) => this.#drainWaiters.push(resolve))
  }

  /**
   * Sends SYNC and resolves with the counts once every frame sent so far is settled. Rejects
   * after `timeoutMs` (if given), or when the client is closed first.
   */
  flush (timeoutMs?: number): Promise<Settlement> {
    const target = this.#sent
    if (this.#settled >= target) return Promise.resolve(this.settlement)
    if (this.#closed) return Promise.reject(new Error('kahets client is closed'))
    return new Promise<Settlement>((resolve, reject) => {
      const w: FlushWaiter = { target, resolve, reject, timer: null }
      if (timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          this.#flushWaiters = this.#flushWaiters.filter((x) => x !== w)
          reject(new Error(`kahets did not settle ${target - this.#settled} of ${target} frames within ${timeoutMs} ms (is it running, with acknowledged mode?)`))
        }, timeoutMs)
      }
      this.#flushWaiters.push(w)
      if (this.#socket === null) this.#scheduleReconnect()
      else this.#sync()
    })
  }

  /** Flushes (bounded by `timeoutMs` if given), then closes. Frames still unsettled are given up. */
  async close (timeoutMs?: number): Promise<Settlement> {
    this.#closing = true
    try {
      return await this.flush(timeoutMs)
    } finally {
      this.#shutdown()
    }
  }

  #shutdown (): void {
    this.#closed = true
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer)
    if (this.#writeScheduled !== null) clearImmediate(this.#writeScheduled)
    this.#socket?.end()
    this.#socket = null
    const err = new Error('kahets client is closed')
    for (const w of this.#flushWaiters.splice(0)) {
      if (w.timer !== null) clearTimeout(w.timer)
      w.reject(err)
    }
    for (const d of this.#drainWaiters.splice(0)) d()
  }

  #belowBounds (): boolean {
    const s = this.#socket
    const socketOk = s === null || !s.writableNeedDrain
    return socketOk && this.unsettled < this.#maxFrames && this.#store.bytes < this.#maxBytes
  }

  #attach (socket: net.Socket): void {
    this.#socket = socket
    this.#reader = new ControlReader()
    this.#connBase = this.#settled
    this.#connRefusedBase = this.#refused
    this.#written = this.#settled
    this.#writtenBytes = this.#store.start
    socket.on('data', (chunk: Buffer) => {
      let frames: ControlFrame[]
      try {
        frames = this.#reader.push(chunk)
      } catch (err) {
        this.#log(`kahets client: unreadable reply from kahets (${(err as Error).message}); reconnecting`)
        this.#lost(socket)
        return
      }
      for (const f of frames) this.#onControl(socket, f)
    })
    socket.on('drain', () => this.#notifyDrain())
    socket.on('error', () => {}) // 'close' follows
    socket.on('close', () => this.#lost(socket))
    socket.write(encodeHello(this.level === 'durable' ? AckLevel.DURABLE : AckLevel.ACCEPTED))
    this.#writeNow()
    if (this.#flushWaiters.length > 0) this.#sync()
  }

  #onControl (socket: net.Socket, f: ControlFrame): void {
    if (socket !== this.#socket) return
    switch (f.type) {
      case 'ack':
      case 'synced':
        this.#settle(this.#connBase + f.settled, this.#connRefusedBase + f.refused)
        this.#backoffMs = RECONNECT_MIN_MS
        return
      case 'refused':
        this.#lastRefusal = { index: this.#connBase + f.index, reason: f.reason }
        return
      case 'closing':
        // Frames before `read` still reach their level; the rest were not read.
        this.#settle(this.#connBase + f.read, this.#refused)
        if (f.read > 0) this.#backoffMs = RECONNECT_MIN_MS
        this.#log(`kahets client: kahets is closing the connection after ${f.read} frames; ${this.unsettled} will be sent again`)
        this.#lost(socket)
        return
      case 'hello':
      case 'sync':
        this.#log(`kahets client: kahets sent a ${f.type.toUpperCase()}, which only clients send; reconnecting`)
        this.#lost(socket)
        return
      default: {
        const never: never = f
        throw new TypeError(`unknown control frame ${JSON.stringify(never)}`)
      }
    }
  }

  #settle (settled: number, refused: number): void {
    // Never past what this connection carried, whatever kahets says.
    const upTo = Math.min(settled, this.#written)
    if (upTo > this.#settled) {
      this.#store.drop(upTo - this.#settled)
      this.#settled = upTo
    }
    if (refused > this.#refused) this.#refused = refused
    for (const w of this.#flushWaiters.filter((x) => x.target <= this.#settled)) {
      this.#flushWaiters.splice(this.#flushWaiters.indexOf(w), 1)
      if (w.timer !== null) clearTimeout(w.timer)
      w.resolve(this.settlement)
    }
    this.#notifyDrain()
  }

  #notifyDrain (): void {
    if (this.#drainWaiters.length > 0 && this.#belowBounds()) for (const d of this.#drainWaiters.splice(0)) d()
  }

  #sync (): void {
    this.#writeNow()
    const s = this.#socket
    if (s !== null && !s.destroyed) s.write(encodeSync(++this.#syncToken))
  }

  #scheduleWrite (): void {
    this.#writeScheduled ??= setImmediate(() => {
      this.#writeScheduled = null
      this.#writeNow()
    })
  }

  /** Writes every kept frame this connection has not carried yet, as one buffer. */
  #writeNow (): void {
    if (this.#writeScheduled !== null) {
      clearImmediate(this.#writeScheduled)
      this.#writeScheduled = null
    }
    const s = this.#socket
    if (s === null || s.destroyed || this.#written >= this.#sent) return
    const chunk = this.#store.bytesFrom(this.#writtenBytes)
    this.#written = this.#sent
    this.#writtenBytes = this.#store.end
    s.write(chunk)
  }

  /** The connection ended (CLOSING, EOF, error, bad reply): reconnect if anything is left to do. */
  #lost (socket: net.Socket): void {
    if (socket !== this.#socket) return
    this.#socket = null
    socket.destroy()
    // An idle client reconnects at its next send() or flush(), so a script that has nothing
    // left to send is not kept alive retrying a kahets that is gone.
    if (this.#closed || (this.unsettled === 0 && this.#flushWaiters.length === 0)) return
    this.#scheduleReconnect()
  }

  #scheduleReconnect (): void {
    if (this.#reconnectTimer !== null || this.#closed) return
    const wait = this.#backoffMs
    this.#backoffMs = Math.min(this.#backoffMs * 2, RECONNECT_MAX_MS)
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null
      openSocket(this.#path).then((s) => {
        if (this.#closed) {
          s.destroy()
          return
        }
        if (this.unsettled > 0) this.#log(`kahets client: reconnected to ${this.#path}; sending ${this.unsettled} unsettled frames again`)
        this.#attach(s)
      }, (err: Error) => {
        if (wait === RECONNECT_MIN_MS) this.#log(`kahets client: cannot reconnect to ${this.#path} (${err.message}); retrying`)
        if (this.unsettled > 0 || this.#flushWaiters.length > 0) this.#scheduleReconnect()
      })
    }, wait)
  }
}


function openSocket (socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath })
    const onError = (err: Error): void => {
      socket.off('connect', onConnect)
      socket.destroy()
      reject(err)
    }
    const onConnect = (): void => {
      socket.off('error', onError)
      resolve(socket)
    }
    socket.once('error', onError)
    socket.once('connect', onConnect)
  })
}
