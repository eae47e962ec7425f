// A stand-in for kahets for the client tests: a UNIX-socket server that keeps every byte it
// receives, per connection, so a test can compare them with encodeFrames() of what was sent.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

export interface SinkConn {
  socket: net.Socket
  chunks: Buffer[]
  bytes: number
  closed: boolean
}

export interface SinkOptions {
  /**
   * Do not read from connections until resume(). Every connection is accepted paused
   * (pauseOnConnect) and stays paused when its 'data' listener is attached, so the socket
   * buffers fill up and the client sees backpressure; resume() then reads everything that
   * was held back. A test that never calls resume() gets a kahets that is alive but stuck:
   * connections are accepted and closed, never read.
   */
  paused?: boolean
  /** Destroy the first connection as soon as it has received this many bytes. */
  destroyFirstAfterBytes?: number
}

/** Accepts connections on a UNIX socket and keeps every byte. */
export class Sink {
  readonly conns: SinkConn[] = []
  readonly server: net.Server

  private constructor (readonly path: string, opts: SinkOptions) {
    this.server = net.createServer({ pauseOnConnect: true }, (socket) => {
      const conn: SinkConn = { socket, chunks: [], bytes: 0, closed: false }
      this.conns.push(conn)
      if (opts.paused === true) socket.pause() // before 'data' is attached, which would resume it
      socket.on('data', (chunk: Buffer) => {
        conn.chunks.push(chunk)
        conn.bytes += chunk.length
        if (opts.destroyFirstAfterBytes !== undefined && conn === this.conns[0] && conn.bytes >= opts.destroyFirstAfterBytes) socket.destroy()
      })
      socket.on('error', () => {})
      socket.on('close', () => { conn.closed = true })
      if (opts.paused !== true) socket.resume()
    })
  }

  static async start (socketPath: string, opts: SinkOptions = {}): Promise<Sink> {
    const sink = new Sink(socketPath, opts)
    await new Promise<void>((resolve, reject) => {
      sink.server.once('error', reject)
      sink.server.listen(socketPath, () => {
        sink.server.off('error', reject)
        resolve()
      })
    })
    return sink
  }

  /** Bytes received over all connections. */
  get total (): number {
    return this.conns.reduce((n, c) => n + c.bytes, 0)
  }

  /** Everything received, connection after connection. */
  received (): Buffer {
    return Buffer.concat(this.conns.flatMap((c) => c.chunks))
  }

  /** Starts reading the connections of a `paused` sink. */
  resume (): void {
    for (const c of this.conns) c.socket.resume()
  }

  async close (): Promise<void> {
    for (const c of this.conns) c.socket.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

/** A temporary directory for one test file's sockets (and other files), and the sinks started in it. */
export class SinkDir {
  readonly dir: string
  readonly sinks: Sink[] = []
  #seq = 0

  constructor (prefix: string) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  }

  /** A new socket path in the directory, never handed out before: `${name}0.sock`, `${name}1.sock`… */
  socketPath (name = 's'): string {
    return path.join(this.dir, `${name}${this.#seq++}.sock`)
  }

  /** Starts a sink (at a new socket path unless given), to be closed by cleanup(). */
  async start (opts: SinkOptions = {}, socketPath = this.socketPath()): Promise<Sink> {
    const sink = await Sink.start(socketPath, opts)
    this.sinks.push(sink)
    return sink
  }

  /** Closes every sink and removes the directory. */
  async cleanup (): Promise<void> {
    for (const s of this.sinks) await s.close()
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Polls `cond` every 5 ms until it holds; fails with `what` after `ms`. */
export async function waitUntil (cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Fails with the lengths and the first differing byte (not a dump of both buffers) unless they are equal. */
export function assertSameBytes (actual: Buffer, expected: Buffer, what?: string): void {
  if (actual.equals(expected)) return
  let i = 0
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++
  assert.fail(`${what === undefined ? 'received' : `${what}:`} ${actual.length} bytes, expected ${expected.length}; first difference at byte ${i}`)
}
