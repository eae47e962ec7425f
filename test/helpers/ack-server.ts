// A FAKE kahets for the clients' unit tests of acknowledged mode (docs/protocol.md): a
// UNIX-socket server that reads frames, answers HELLO/SYNC with ACK/SYNCED through
// src/protocol/control.ts, and can be told to send CLOSING or break a connection at a given
// frame. It proves the clients' side of the contract only; the proof against a real kahets
// uses the same client drivers (test/helpers/ack-clients.ts) pointed at its socket.
import net from 'node:net'
import { after } from 'node:test'
import { SinkDir } from './sink.ts'
import type { AckMessage } from './ack-clients.ts'
import { type ControlFrame, ControlFrameError, decodeControl, encodeAck, encodeClosing, encodeRefused, encodeSynced } from '../../src/protocol/control.ts'

export interface AckConn {
  socket: net.Socket
  /** The connection's first frame was a HELLO at this level (1 or 2); null without one. */
  level: number | null
  /** Control frames the client sent, in order (HELLO included). */
  control: ControlFrame[]
  /** Data frames read, as their raw bytes (length prefix included). */
  frames: Buffer[]
  /** Data frames settled (and of those, refused) so far. */
  settled: number
  refused: number
  /** Bytes the server wrote to this client. */
  bytesOut: number
  closed: boolean
}

export interface AckServerOptions {
  /** Data frames of the FIRST connection to read; CLOSING <n> is sent when the next one arrives, then the connection closes and later bytes are discarded unread. */
  closingAfter?: number
  /** On the FIRST connection: after `read` data frames, report only `settled` of them in an ACK, then destroy the connection (no CLOSING). */
  breakAfter?: { read: number, settled: number }
  /** Settle nothing and answer no SYNC (a kahets that does not acknowledge). */
  silent?: boolean
  /** Frames whose bucket this returns true for are refused (settled and counted in `refused`). */
  refuse?: (bucket: string) => boolean
}

/** Bucket name of a raw data frame. */
export function bucketOf (raw: Buffer): string {
  return raw.toString('latin1', 5, 5 + raw[4]!)
}

export class AckServer {
  readonly conns: AckConn[] = []
  readonly server: net.Server
  readonly path: string
  readonly #stops: Array<() => void> = []

  private constructor (socketPath: string, readonly opts: AckServerOptions) {
    this.path = socketPath
    this.server = net.createServer((socket) => this.#accept(socket))
  }

  static async start (socketPath: string, opts: AckServerOptions = {}): Promise<AckServer> {
    const s = new AckServer(socketPath, opts)
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject)
      s.server.listen(socketPath, () => {
        s.server.off('error', reject)
        resolve()
      })
    })
    return s
  }

  /** Every data frame read, over all connections, in order. */
  allFrames (): Buffer[] {
    return this.conns.flatMap((c) => c.frames)
  }

  /**
   * Shuts down as kahets does (docs/protocol.md, "CLOSING"): stops accepting, and tells every
   * acknowledged connection how many data frames it read before closing it; bytes that arrive
   * later are not read. Connections without HELLO are closed without a byte.
   */
  async shutdown (): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const stop of this.#stops) stop()
    await closed
  }

  async close (): Promise<void> {
    for (const c of this.conns) c.socket.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  #accept (socket: net.Socket): void {
    const conn: AckConn = { socket, level: null, control: [], frames: [], settled: 0, refused: 0, bytesOut: 0, closed: false }
    const first = this.conns.length === 0
    this.conns.push(conn)
    let pending: Buffer = Buffer.alloc(0)
    let seenFirstFrame = false
    let done = false
    let ackTimer: NodeJS.Timeout | null = null
    let acked = { settled: 0, refused: 0 }
    const write = (bytes: Buffer): void => {
      if (conn.level === null) throw new Error('the fake kahets must never write to a client without HELLO')
      conn.bytesOut += bytes.length
      socket.write(bytes)
    }
    // ACKs coalesced as docs/protocol.md says: when counts moved, at most every 5 ms.
    const scheduleAck = (): void => {
      ackTimer ??= setTimeout(() => {
        ackTimer = null
        if (done || (acked.settled === conn.settled && acked.refused === conn.refused)) return
        acked = { settled: conn.settled, refused: conn.refused }
        write(encodeAck(conn.settled, conn.refused))
      }, 5)
    }
    const onData = (frameBytes: Buffer): void => {
      const isFirst = !seenFirstFrame
      seenFirstFrame = true
      if (frameBytes[4] === 0) {
        const f = decodeControl(frameBytes.subarray(5))
        if (f instanceof ControlFrameError) throw f
        conn.control.push(f)
        if (f.type === 'hello' && isFirst) conn.level = f.level
        else if (f.type === 'sync' && conn.level !== null && this.opts.silent !== true) write(encodeSynced(f.token, conn.settled, conn.refused))
        return
      }
      if (first && this.opts.closingAfter !== undefined && conn.frames.length === this.opts.closingAfter) {
        // The next frame arrived: not read. CLOSING goes out only now, so that the client
        // always has a frame to send again (a test does not depend on when it reads CLOSING).
        done = true
        write(encodeClosing(conn.frames.length))
        // Closed for good, as kahets does: the client still reads CLOSING from its buffer.
        socket.end(() => socket.destroy())
        return
      }
      conn.frames.push(Buffer.from(frameBytes))
      if (conn.level === null || this.opts.silent === true) return
      const refused = this.opts.refuse?.(bucketOf(frameBytes)) === true
      // A connection about to break has settled only what its last ACK will say.
      const cap = first && this.opts.breakAfter !== undefined ? this.opts.breakAfter.settled : Infinity
      if (conn.settled < cap) conn.settled++
      if (refused) {
        write(encodeRefused(conn.frames.length - 1, 'unknown_bucket'))
        conn.refused++
      }
      if (first && this.opts.breakAfter !== undefined && conn.frames.length === this.opts.breakAfter.read) {
        done = true
        const settled = this.opts.breakAfter.settled
        socket.write(encodeAck(settled, 0), () => socket.destroy())
        conn.bytesOut += 18
        return
      }
      scheduleAck()
    }
    socket.on('data', (chunk: Buffer) => {
      if (done) return // not read: the client must send these again
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      let pos = 0
      while (!done && pending.length - pos >= 4) {
        const n = pending.readUInt32LE(pos)
        if (pending.length - pos < 4 + n) break
        onData(pending.subarray(pos, pos + 4 + n))
        pos += 4 + n
      }
      pending = pending.subarray(pos)
    })
    this.#stops.push(() => {
      if (done || conn.closed) return
      done = true
      if (conn.level !== null) {
        conn.bytesOut += 14
        socket.end(encodeClosing(conn.frames.length), () => socket.destroy())
      } else {
        socket.destroy()
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      conn.closed = true
      if (ackTimer !== null) clearTimeout(ackTimer)
    })
  }
}

/**
 * The fixture of a client test file: a temp folder (test/helpers/sink.ts), fake servers
 * started in it, and `messages(n)` alternating two buckets with every third key null; all
 * torn down after the file's tests.
 */
export function ackFixture (prefix: string, tag: string): {
  sinks: SinkDir
  servers: AckServer[]
  server: (opts?: AckServerOptions) => Promise<AckServer>
  messages: (n: number, bucket?: (i: number) => string) => AckMessage[]
} {
  const sinks = new SinkDir(prefix)
  const servers: AckServer[] = []
  after(async () => {
    for (const s of servers) await s.close()
    await sinks.cleanup()
  })
  return {
    sinks,
    servers,
    server: async (opts = {}) => {
      const s = await AckServer.start(sinks.socketPath('ack'), opts)
      servers.push(s)
      return s
    },
    messages: (n, bucket = (i) => (i % 2 === 0 ? 'orders' : 'clicks')) =>
      Array.from({ length: n }, (_, i) => ({ bucket: bucket(i), payload: `${tag} ${i} ${'x'.repeat(i % 50)}`, key: i % 3 === 0 ? null : `k${i}` })),
  }
}
