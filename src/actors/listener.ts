// The listener (docs/architecture.md#how-it-works) owns the socket file: it refuses to start while another live
// process serves it, replaces a stale file left by a crash, applies SOCKET_MODE, accepts
// connections (one session each) and removes the file when it stops. A socket passed by
// systemd (LISTEN_FDS, src/listen-fds.ts) is not its own: it is never unlinked, re-created or
// chmod-ed, and at shutdown the listener only stops accepting, so that connections made
// while kahets restarts wait in the socket's backlog for the next kahets.
import { chmod, unlink } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../log.ts'
import type { MemoryBudget } from '../memory-budget.ts'
import type { Stats } from '../stats.ts'
import { HALF_CLOSE_SWITCH, loadHalfClose, type HalfClose } from '../half-close.ts'
import { ErrorCodes, KahetsError } from '../errors.ts'
import { claimSocketPath } from '../socket-file.ts'
import { Actor, type ActorRef, type Directive, type Supervisor } from './actor.ts'
import { Session, type Router } from './session.ts'

export interface ListenerOptions {
  socketPath: string
  socketMode: number
  maxFrameBytes: number
  router: Router
  stats: Stats
  log: Logger
  /** Unfinished frames are charged to it by their sessions. */
  budget: MemoryBudget
  /** Reading clients at shutdown is bounded by this (SHUTDOWN_TIMEOUT). */
  shutdownTimeoutMs: number
  /** Without the half-close binding, a client quiet this long is taken as done (SHUTDOWN_DRAIN_MS). */
  shutdownDrainMs: number
  /** A listening UNIX socket passed by systemd (LISTEN_FDS); socketPath then only names it in logs. */
  listenFd?: number
}

const LISTEN_BACKLOG = 4096
/** At shutdown, the listen backlog is taken as drained once no connection came for this long. */
const BACKLOG_QUIET_MS = 50
/** …and shutdown does not wait on it longer than this. */
const BACKLOG_DRAIN_MAX_MS = 2000

// Connections are accepted in the server's callback (see start()), so the listener's own
// mailbox carries no user messages; it is an actor for its lifecycle and its supervision.
type ListenerMsg = never

export class Listener extends Actor<ListenerMsg> implements Supervisor {
  readonly #opts: ListenerOptions
  readonly #log: Logger
  readonly #sessions = new Set<Session>()
  #server: Server | null = null
  #nextId = 1
  #readsPaused = false
  #lastAcceptAt = 0
  #halfClose: HalfClose | null = null
  #unreadBytes = 0

  constructor (opts: ListenerOptions) {
    super('listener', null)
    this.#opts = opts
    this.#log = opts.log
  }

  get sessions (): number { return this.#sessions.size }
  /** The socket takes new connections: listening, and shutdown has not begun (/readyz). */
  get accepting (): boolean { return this.state === 'running' && this.#server !== null && this.#server.listening }
  /** Bytes clients had sent that shutdown could not read within SHUTDOWN_TIMEOUT. */
  get shutdownUnreadBytes (): number { return this.#unreadBytes }

  /** Memory pressure: every session (and each new one) stops reading until it is lifted. */
  pauseReading (paused: boolean): void {
    if (this.state === 'running') this.#setReadsPaused(paused)
  }

  #setReadsPaused (paused: boolean): void {
    if (paused === this.#readsPaused) return
    this.#readsPaused = paused
    for (const s of this.#sessions) {
      if (paused) s.pauseReading()
      else s.resumeReading()
    }
  }

  async start (): Promise<void> {
    const path = this.#opts.socketPath
    const fd = this.#opts.listenFd
    if (fd === undefined && await claimSocketPath(path) === 'stale') this.#log.warn({ socket: path }, 'removing stale socket file left by a previous run')
    const halfClose = await loadHalfClose()
    if (typeof halfClose === 'string') {
      this.#log.warn({ reason: halfClose, quietMs: this.#opts.shutdownDrainMs, switch: HALF_CLOSE_SWITCH }, 'shutdown cannot half-close connections: it reads each until the client has been quiet for SHUTDOWN_DRAIN_MS, and what a client writes after that is lost')
    } else {
      this.#halfClose = halfClose
      this.#log.info('shutdown reads every connection to its end (shutdown(2), SHUT_RD)')
    }
    // Connections are taken at once, not through the mailbox: at shutdown the ones already in
    // the listen backlog must still be accepted while onStop runs (see there).
    const server = createServer({ allowHalfOpen: true }, (socket) => {
      if (this.#server !== null && this.state !== 'stopped') this.#accept(socket)
      else socket.destroy()
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      // PHP workers without persistent connections connect once a request: Node's default
      // backlog (511) overflowed at ~40k connects/s in the bench and clients got EAGAIN. On a
      // passed socket, listen(2) is called again with it: it must not shrink the socket's own.
      const listening = (): void => { server.off('error', reject); resolve() }
      try {
        // With an fd, Node ignores options.backlog (and listens with 511): it must be an argument.
        if (fd === undefined) server.listen({ path, backlog: LISTEN_BACKLOG }, listening)
        else server.listen({ fd }, LISTEN_BACKLOG, listening)
      } catch (err) {
        // A descriptor that is neither a UNIX nor a TCP stream socket throws here (ERR_INVALID_FD_TYPE).
        reject(err)
      }
    }).catch((err: unknown) => {
      if (fd === undefined) throw err
      throw new KahetsError(ErrorCodes.CONFIG_INVALID, `LISTEN_FDS: cannot listen on descriptor ${fd}: ${(err as Error).message}`, { cause: err })
    })
    // A TCP socket passed by mistake (ListenStream=PORT) reports an address; a UNIX socket none.
    if (fd !== undefined && server.address() !== null) {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      throw new KahetsError(ErrorCodes.CONFIG_INVALID, `LISTEN_FDS: descriptor ${fd} is not a UNIX socket (kahets.socket needs ListenStream=/path)`)
    }
    server.on('error', (err) => { this.#log.error({ err }, 'listener error') })
    this.#server = server
    if (fd === undefined) {
      await chmod(path, this.#opts.socketMode)
      this.#log.info({ socket: path, mode: this.#opts.socketMode.toString(8) }, 'listening')
    } else {
      this.#log.info({ fd, socket: path }, 'listening on the socket passed by systemd (LISTEN_FDS); SOCKET and SOCKET_MODE are not applied')
    }
  }

  childFailed (child: ActorRef, error: unknown): Directive {
    this.#log.error({ err: error, actor: child.name }, 'session failed; closing it')
    return 'stop'
  }

  protected override receive (msg: ListenerMsg): void {
    throw new Error(`the listener takes no messages: ${JSON.stringify(msg)}`)
  }

  #accept (socket: Socket): void {
    this.#lastAcceptAt = Date.now()
    const id = this.#nextId++
    const { stats } = this.#opts
    stats.connections++
    stats.connectionsTotal++
    const session = new Session({
      id,
      socket,
      router: this.#opts.router,
      stats,
      maxFrameBytes: this.#opts.maxFrameBytes,
      log: this.#log,
      supervisor: this,
      budget: this.#opts.budget,
      halfClose: this.#halfClose,
      drainQuietMs: this.#opts.shutdownDrainMs,
      unread: (bytes) => { this.#unreadBytes += bytes },
    })
    this.#sessions.add(session)
    if (this.#readsPaused) session.pauseReading()
    void session.stopped.then(() => {
      this.#sessions.delete(session)
      stats.connections--
    })
  }

  /**
   * Remove the socket file, stop accepting, read what connected clients already sent, close
   * them. A client whose connection is still in the listen backlog has sent too (its write went to
   * the kernel, and its send() returned true): the socket file goes first, so that no new
   * client can connect, then what the backlog holds is accepted until none has come for
   * BACKLOG_QUIET_MS, and only then is the server closed. Each connection is then
   * half-closed and read to its end (session.ts, drain), all within SHUTDOWN_TIMEOUT.
   *
   * A socket passed by systemd is neither removed nor drained: it outlives this process, and
   * what waits in its backlog is the next kahets's to accept. Closing this process's
   * descriptor at once stops accepting; the socket, its file and its backlog stay.
   */
  protected override async onStop (): Promise<void> {
    const deadline = Date.now() + this.#opts.shutdownTimeoutMs
    if (this.#opts.listenFd === undefined) {
      await unlink(this.#opts.socketPath).catch(() => {})
      const backlogDeadline = Math.min(deadline, Date.now() + BACKLOG_DRAIN_MAX_MS)
      this.#lastAcceptAt = Date.now()
      while (this.#server !== null && Date.now() - this.#lastAcceptAt < BACKLOG_QUIET_MS && Date.now() < backlogDeadline) {
        await sleep(BACKLOG_QUIET_MS / 5)
      }
    }
    const server = this.#server
    this.#server = null
    const closed = server === null ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()))
    // Shutdown reads everything clients already sent, pressure or not (what does not fit
    // spills to the backup or is counted as dropped).
    this.#setReadsPaused(false)
    await Promise.all([...this.#sessions].map((s) => s.drain(deadline)))
    await closed
    if (this.#unreadBytes > 0) this.#log.error({ unreadBytes: this.#unreadBytes }, 'shutdown: bytes clients had sent were left unread at SHUTDOWN_TIMEOUT (kahets_shutdown_unread_bytes_total)')
  }
}
