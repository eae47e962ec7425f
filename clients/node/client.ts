// Node client for kahets (docs/clients.md): frames messages in the wire format of docs/protocol.md#data-frames and
// writes them to kahets' UNIX socket, batching all frames sent during one tick of the
// event loop into a single socket.write of a single buffer.
import net from 'node:net'
import { DEFAULT_MAX_FRAME_BYTES, LENGTH_BYTES } from '../../src/protocol/frame.ts'
import { frameLength, writeFrame } from '../../src/protocol/encoder.ts'

export interface KahetsClientOptions {
  /** Largest N (the length field: the frame minus its 4-byte prefix) kahets accepts; its MAX_FRAME_BYTES. Default 1 MiB. */
  maxFrameBytes?: number
  /** Bytes buffered in the socket (plus the current tick's batch) past which send() returns false. Default 256 KiB. */
  highWaterMark?: number
}

interface Waiter {
  resolve: () => void
  reject: (err: Error) => void
}

const DEFAULT_HIGH_WATER_MARK = 256 * 1024
const MIN_BATCH_BYTES = 4 * 1024
const MAX_PREALLOCATED_BATCH_BYTES = 1024 * 1024

/**
 * A connection to kahets.
 *
 * - send() validates and encodes a frame at once (so the caller may reuse its buffers) and
 *   queues it; frames queued during one tick go out with one socket.write at setImmediate.
 * - Backpressure: send() returns false once the socket's buffered bytes plus the queued
 *   batch reach the high-water mark; the caller should then `await client.drain()`.
 * - Errors never surface as an unhandled 'error' event: a socket error (or kahets closing the
 *   connection) rejects pending drain()/flush()/close() promises, and later calls to
 *   send()/writeRaw() throw. There is no reconnect: connect again.
 * - A key of null, undefined or '' (zero bytes) is sent as keyLen 0: a null Kafka key.
 */
export class KahetsClient {
  readonly maxFrameBytes: number
  readonly #socket: net.Socket
  /** Frames encoded since the last write; #batchUsed bytes of it are filled. */
  #batch: Buffer | null = null
  #batchUsed = 0
  #nextBatchBytes = MIN_BATCH_BYTES
  #scheduled: NodeJS.Immediate | null = null
  /** socket.write calls whose callback has not run yet (data not yet handed to the kernel). */
  #unfinishedWrites = 0
  #flushWaiters: Waiter[] = []
  #drainWaiters: Waiter[] = []
  #closeWaiters: Waiter[] = []
  #error: Error | null = null
  #closing: Promise<void> | null = null
  /** close() was called: no new frames. */
  #ending = false
  /** socket.end() was called: the peer closing its side is expected now. */
  #ended = false
  #closed = false

  private constructor (socket: net.Socket, maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes
    this.#socket = socket
    socket.on('error', (err) => this.#fail(err))
    socket.on('drain', () => settle(this.#drainWaiters.splice(0), null))
    // kahets never writes to clients; read and discard so that its closing is noticed.
    socket.on('data', () => {})
    socket.on('end', () => {
      if (this.#ended) return
      this.#fail(new Error('kahets closed the connection'))
      socket.destroy()
    })
    socket.on('close', () => {
      this.#closed = true
      const err = this.#error ?? new Error('connection to kahets closed')
      settle(this.#flushWaiters.splice(0), err)
      settle(this.#drainWaiters.splice(0), err)
      settle(this.#closeWaiters.splice(0), this.#error)
    })
  }

  /** Connects to kahets' socket; rejects (e.g. ENOENT, ECONNREFUSED) when it is not there. */
  static async connect (socketPath: string, opts: KahetsClientOptions = {}): Promise<KahetsClient> {
    const maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 3 || maxFrameBytes > 0xffffffff) {
      throw new RangeError(`maxFrameBytes must be an integer in 3..${0xffffffff}, not ${maxFrameBytes}`)
    }
    const highWaterMark = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK
    if (!Number.isInteger(highWaterMark) || highWaterMark < 1) {
      throw new RangeError(`highWaterMark must be a positive integer, not ${highWaterMark}`)
    }
    // net.Socket passes its options on to stream.Duplex, which reads writableHighWaterMark;
    // @types/node does not list it. Backpressure below uses socket.writableHighWaterMark, the
    // value actually in force, so it stays consistent even if a Node version ignored it.
    const connectOpts: net.IpcNetConnectOpts & { writableHighWaterMark: number } = { path: socketPath, writableHighWaterMark: highWaterMark }
    const socket = net.createConnection(connectOpts)
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.off('connect', onConnect)
        socket.destroy()
        reject(err)
      }
      const onConnect = (): void => {
        socket.off('error', onError)
        resolve()
      }
      socket.once('error', onError)
      socket.once('connect', onConnect)
    })
    return new KahetsClient(socket, maxFrameBytes)
  }

  /** Bytes not yet handed to the kernel: this tick's batch plus what the socket buffers. */
  get bufferedBytes (): number {
    return this.#batchUsed + this.#socket.writableLength
  }

  /** The error that ended the connection (a socket error, or kahets closing it), if any. */
  get error (): Error | null {
    return this.#error
  }

  /** True once the socket is closed, by close() or otherwise. */
  get closed (): boolean {
    return this.#closed
  }

  /**
   * Queues one message. Throws RangeError on input kahets would reject (bucket name, key over
   * 255 bytes, frame over maxFrameBytes), and Error after close() or a connection failure.
   * Returns false when the caller should `await drain()` before sending more.
   */
  send (bucket: string, payload: Buffer | string, key?: Buffer | string | null): boolean {
    this.#assertWritable()
    const len = frameLength(bucket, key, payload)
    if (len - LENGTH_BYTES > this.maxFrameBytes) {
      throw new RangeError(`frame for bucket ${bucket} is ${len - LENGTH_BYTES} bytes; at most ${this.maxFrameBytes} (maxFrameBytes)`)
    }
    const batch = this.#reserve(len)
    this.#batchUsed = writeFrame(batch, this.#batchUsed, { bucket, payload, key })
    this.#schedule()
    return this.#belowHighWaterMark()
  }

  /**
   * Writes bytes as they are, after the frames queued so far (for tests that send garbage
   * or hand-made frames). Returns false like send().
   */
  writeRaw (bytes: Buffer): boolean {
    this.#assertWritable()
    this.#writeBatch()
    if (bytes.length > 0) this.#write(bytes)
    return this.#belowHighWaterMark()
  }

  /** Writes the queued batch now and resolves once the socket's buffer has drained below its high-water mark. */
  drain (): Promise<void> {
    if (this.#error) return Promise.reject(this.#error)
    this.#writeBatch()
    if (this.#error) return Promise.reject(this.#error)
    if (this.#closed) return Promise.reject(new Error('connection to kahets closed'))
    if (!this.#socket.writableNeedDrain) return Promise.resolve()
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }))
  }

  /** Writes the queued batch now and resolves once every byte sent so far is handed to the kernel. */
  flush (): Promise<void> {
    if (this.#error) return Promise.reject(this.#error)
    this.#writeBatch()
    if (this.#error) return Promise.reject(this.#error)
    if (this.#unfinishedWrites === 0) return Promise.resolve()
    if (this.#closed) return Promise.reject(new Error('connection to kahets closed'))
    return new Promise((resolve, reject) => this.#flushWaiters.push({ resolve, reject }))
  }

  /** Flushes, ends the connection, and resolves once the socket is closed. Idempotent. */
  close (): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close (): Promise<void> {
    this.#ending = true
    try {
      await this.flush()
    } catch (err) {
      this.#socket.destroy()
      throw err
    }
    if (this.#closed) {
      if (this.#error) throw this.#error
      return
    }
    await new Promise<void>((resolve, reject) => {
      this.#closeWaiters.push({ resolve, reject })
      this.#ended = true
      this.#socket.end()
    })
  }

  #assertWritable (): void {
    if (this.#error) throw new Error(`kahets connection failed: ${this.#error.message}`, { cause: this.#error })
    if (this.#ending || this.#closed) throw new Error('kahets client is closed')
  }

  #belowHighWaterMark (): boolean {
    const s = this.#socket
    return !s.writableNeedDrain && s.writableLength + this.#batchUsed < s.writableHighWaterMark
  }

  /** Returns the batch buffer with room for `len` more bytes. */
  #reserve (len: number): Buffer {
    const batch = this.#batch
    const needed = this.#batchUsed + len
    if (batch !== null && needed <= batch.length) return batch
    const grown = Buffer.allocUnsafe(Math.max(needed, this.#nextBatchBytes, batch === null ? 0 : batch.length * 2))
    if (batch !== null) batch.copy(grown, 0, 0, this.#batchUsed)
    this.#batch = grown
    return grown
  }

  #schedule (): void {
    this.#scheduled ??= setImmediate(() => {
      this.#scheduled = null
      this.#writeBatch()
    })
  }

  #writeBatch (): void {
    if (this.#scheduled !== null) {
      clearImmediate(this.#scheduled)
      this.#scheduled = null
    }
    const used = this.#batchUsed
    if (used === 0 || this.#batch === null) return
    const chunk = this.#batch.subarray(0, used)
    // The next tick's batch starts at about this one's size, so a steady stream of frames
    // rarely regrows, and an idle client does not keep a large buffer.
    this.#nextBatchBytes = Math.min(Math.max(used, MIN_BATCH_BYTES), MAX_PREALLOCATED_BATCH_BYTES)
    this.#batch = null
    this.#batchUsed = 0
    this.#write(chunk)
  }

  #write (chunk: Buffer): void {
    const socket = this.#socket
    if (this.#error || this.#closed || socket.destroyed || socket.writableEnded) {
      this.#fail(this.#error ?? new Error('connection to kahets closed'))
      return
    }
    this.#unfinishedWrites++
    socket.write(chunk, (err) => {
      this.#unfinishedWrites--
      if (err) this.#fail(err)
      else if (this.#unfinishedWrites === 0) settle(this.#flushWaiters.splice(0), null)
    })
  }

  /** Records the first error, drops what is queued and rejects everyone waiting. */
  #fail (err: Error): void {
    this.#error ??= err
    this.#batch = null
    this.#batchUsed = 0
    if (this.#scheduled !== null) {
      clearImmediate(this.#scheduled)
      this.#scheduled = null
    }
    settle(this.#flushWaiters.splice(0), this.#error)
    settle(this.#drainWaiters.splice(0), this.#error)
    // close waiters are settled on 'close', which follows every error.
  }
}

function settle (waiters: Waiter[], err: Error | null): void {
  for (const w of waiters) {
    if (err) w.reject(err)
    else w.resolve()
  }
}
