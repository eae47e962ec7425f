// A load-generating worker process: for each job it opens `connections` client connections
// to a UNIX socket (kahets, or the raw sink) and sends through clients/node's KahetsClient.
//
// It runs in its own process so that its CPU is never counted as kahets's CPU (kahets is
// measured from /proc), and a few of them spread the client connections over the cores. The
// processes live for the whole bench and take one job after another: starting Node with tsx
// costs about half a second, which per run would add minutes to a bench.
//
//   parent ──'job' {config}──▶ worker: connect all ──'ready'──▶ parent
//   parent ──'go' (to every worker of the job at once)──▶ worker: send, close ──'done'──▶ parent
//
// Modes:
//   burst  `messages` frames as fast as the socket takes them. The frames are pre-encoded once
//          (bench/lib/payload.ts) and written a ~64 KiB chunk per write with writeRaw(), so the
//          worker costs little CPU and kahets, not the client, is what limits the rate.
//   paced  `rate` messages/s for `durationMs`, for the half-rate runs. With `stamp`, each is
//          encoded by send() with the wall-clock send time stamped into its payload (latency
//          runs); without, the pre-encoded frames are written (steady-load runs at high rates,
//          where per-message encoding would make the client, not kahets, the busy process).
//
// With `ack` ('accepted' | 'durable', issue 11) the connections are clients/node's AckClient:
// every message goes through send() (an acknowledged client keeps each frame until kahets
// settles it, so there are no raw chunks), and a worker is done only when flush() resolved on
// every connection: `settledMs` is that moment. Paced ack runs also time each message from
// send() to the ACK that settled it (see SettleClock).
import { AckClient, KahetsClient } from '../clients/node/index.ts'
import { frameChunks, PayloadSource, STAMP_BYTES, writeStamp } from './lib/payload.ts'
import { wallMs } from './lib/proc.ts'

export interface LoadConfig {
  socket: string
  bucket: string
  /** Payload bytes per message. */
  size: number
  connections: number
  mode: 'burst' | 'paced'
  /** burst: messages this worker sends, spread evenly over its connections. */
  messages: number
  /** paced: messages per second this worker sends, over all its connections. */
  rate: number
  /** paced: how long to send. */
  durationMs: number
  /** paced: stamp each payload with its send time (see bench/lib/payload.ts). */
  stamp: boolean
  /** Acknowledged mode (AckClient) at this level; null: fire-and-forget (KahetsClient). */
  ack: 'accepted' | 'durable' | null
  /** paced ack: messages sent in the first `warmupMs` are left out of the latencies. */
  warmupMs: number
  /** burst: JSON events instead of letters (the payload-schema rows, issue 14). */
  payloads?: 'letters' | 'json'
}

/** Parent → worker. */
export type LoadCommand = { type: 'job', config: LoadConfig } | { type: 'go' }

/** Worker → parent. */
export type LoadMessage =
  | { type: 'up' }
  | { type: 'ready' }
  | { type: 'done', sent: number, bytes: number, firstWriteMs: number, lastWriteMs: number, cpuSeconds: number, ack?: AckDone }
  | { type: 'error', message: string }

/** What an acknowledged worker adds to 'done'. */
export interface AckDone {
  /** Wall clock (ms) when flush() had resolved on every connection of this worker. */
  settledMs: number
  settled: number
  refused: number
  /** Paced runs: ms from send() to the ACK settling it, per message sent after the warm-up. */
  latencies?: number[]
}

const send = (m: LoadMessage): void => { process.send!(m) }

let go: (() => void) | null = null
/** Tells the parent this worker is connected and waits for its 'go'. */
function ready (): Promise<void> {
  const p = new Promise<void>((resolve) => { go = resolve })
  send({ type: 'ready' })
  return p
}

interface Marks {
  firstWriteMs: number
  cpu0: NodeJS.CpuUsage
}

function mark (): Marks {
  return { firstWriteMs: wallMs(), cpu0: process.cpuUsage() }
}

async function burst (cfg: LoadConfig, clients: KahetsClient[]): Promise<{ marks: Marks, sent: number, bytes: number }> {
  const { chunks, framesPerChunk, frameBytes } = frameChunks(cfg.bucket, cfg.size, undefined, cfg.payloads)
  await ready()
  const marks = mark()
  const per = Math.floor(cfg.messages / clients.length)
  const extra = cfg.messages % clients.length
  // Each connection starts at another chunk, so concurrent connections do not send the same bytes.
  await Promise.all(clients.map(async (client, i) => {
    let left = per + (i < extra ? 1 : 0)
    let c = (i * 7) % chunks.length
    while (left > 0) {
      const n = Math.min(left, framesPerChunk)
      const chunk = chunks[c]!
      c = (c + 1) % chunks.length
      left -= n
      if (!client.writeRaw(n === framesPerChunk ? chunk : chunk.subarray(0, n * frameBytes))) await client.drain()
    }
    await client.close()
  }))
  return { marks, sent: cfg.messages, bytes: cfg.messages * frameBytes }
}

async function paced (cfg: LoadConfig, clients: KahetsClient[]): Promise<{ marks: Marks, sent: number, bytes: number }> {
  const source = new PayloadSource(cfg.size)
  const scratch = Buffer.alloc(cfg.size)
  const frameBytes = 4 + 2 + cfg.bucket.length + cfg.size
  const pre = cfg.stamp ? null : frameChunks(cfg.bucket, cfg.size)
  let chunk = 0
  await ready()
  const marks = mark()
  const start = performance.now()
  let sent = 0
  let next = 0
  while (true) {
    const elapsed = performance.now() - start
    const target = Math.floor(Math.min(elapsed, cfg.durationMs) * cfg.rate / 1000)
    if (target > sent && pre !== null) {
      // The frames due since the last tick, cut from the pre-encoded chunks and shared out
      // over the connections, whole frames only.
      let due = target - sent
      const per = Math.ceil(due / clients.length)
      while (due > 0) {
        const n = Math.min(due, per, pre.framesPerChunk)
        clients[next]!.writeRaw(pre.chunks[chunk]!.subarray(0, n * pre.frameBytes))
        chunk = (chunk + 1) % pre.chunks.length
        next = (next + 1) % clients.length
        due -= n
        sent += n
      }
    } else if (target > sent) {
      // Messages due since the last tick go now; each carries the time it is handed to the
      // client, which writes it to the socket on this same turn of the event loop.
      const stamp = wallMs()
      for (; sent < target; sent++) {
        source.next().copy(scratch)
        if (cfg.size >= STAMP_BYTES) writeStamp(scratch, stamp)
        clients[next]!.send(cfg.bucket, scratch)
        next = (next + 1) % clients.length
      }
    }
    if (elapsed >= cfg.durationMs) break
    // ~1 ms ticks: at the rates used (thousands to hundreds of thousands per second) a tick
    // carries a few to a few hundred messages; a busier loop would only burn the cores.
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await Promise.all(clients.map((c) => c.close()))
  return { marks, sent, bytes: sent * frameBytes }
}

/**
 * Times each message of one AckClient from send() to its settlement. AckClient reports
 * settlement only as a count (its `settlement` getter; it has no event per ACK), so the count is
 * polled: message i (0-based) is settled at the first poll that sees `settled > i`. Polls run
 * every ~1 ms (a timer) and on every tick of the paced loop; kahets sends an ACK at most every
 * 5 ms per connection, so the poll adds about 1 ms at most to what it measures.
 */
class SettleClock {
  readonly #client: AckClient
  /** performance.now() of each send, index = the client's message number. */
  readonly #sentAt: number[] = []
  #seen = 0
  /** Messages numbered below this were sent during the warm-up. */
  #measureFrom = Infinity
  readonly latencies: number[] = []

  constructor (client: AckClient) {
    this.#client = client
  }

  sent (at: number, measured: boolean): void {
    if (measured && this.#measureFrom === Infinity) this.#measureFrom = this.#sentAt.length
    this.#sentAt.push(at)
  }

  poll (now: number): void {
    const settled = this.#client.settlement.settled
    for (; this.#seen < settled && this.#seen < this.#sentAt.length; this.#seen++) {
      if (this.#seen >= this.#measureFrom) this.latencies.push(Math.round((now - this.#sentAt[this.#seen]!) * 1000) / 1000)
    }
  }
}

async function settleAll (clients: AckClient[]): Promise<{ settledMs: number, settled: number, refused: number }> {
  const counts = await Promise.all(clients.map((c) => c.flush()))
  const settledMs = wallMs()
  return { settledMs, settled: counts.reduce((n, c) => n + c.settled, 0), refused: counts.reduce((n, c) => n + c.refused, 0) }
}

/** burst, acknowledged: send() every message, awaiting drain() at the client's bounds, then flush(). */
async function ackBurst (cfg: LoadConfig, clients: AckClient[]): Promise<{ marks: Marks, sent: number, bytes: number, ack: AckDone }> {
  const source = new PayloadSource(cfg.size)
  const frameBytes = 4 + 2 + cfg.bucket.length + cfg.size
  // Pre-cut payloads: the client encodes (and keeps) each frame, as an application's send() does.
  const payloads = Array.from({ length: 1024 }, () => Buffer.from(source.next()))
  await ready()
  const marks = mark()
  const per = Math.floor(cfg.messages / clients.length)
  const extra = cfg.messages % clients.length
  const ack = await Promise.all(clients.map(async (client, i) => {
    const n = per + (i < extra ? 1 : 0)
    for (let m = 0; m < n; m++) {
      if (!client.send(cfg.bucket, payloads[(m + i * 7) & 1023]!)) await client.drain()
    }
    const s = await client.flush()
    return { settledMs: wallMs(), ...s }
  }))
  await Promise.all(clients.map((c) => c.close()))
  return {
    marks,
    sent: cfg.messages,
    bytes: cfg.messages * frameBytes,
    ack: { settledMs: Math.max(...ack.map((a) => a.settledMs)), settled: ack.reduce((n, a) => n + a.settled, 0), refused: ack.reduce((n, a) => n + a.refused, 0) },
  }
}

/** paced, acknowledged: `rate` messages/s through send(), each timed to its settlement. */
async function ackPaced (cfg: LoadConfig, clients: AckClient[]): Promise<{ marks: Marks, sent: number, bytes: number, ack: AckDone }> {
  const source = new PayloadSource(cfg.size)
  const frameBytes = 4 + 2 + cfg.bucket.length + cfg.size
  const payloads = Array.from({ length: 1024 }, () => Buffer.from(source.next()))
  const clocks = clients.map((c) => new SettleClock(c))
  const pollAll = (): void => {
    const now = performance.now()
    for (const c of clocks) c.poll(now)
  }
  await ready()
  const marks = mark()
  const start = performance.now()
  const poller = setInterval(pollAll, 1)
  let sent = 0
  let next = 0
  try {
    while (true) {
      pollAll()
      const elapsed = performance.now() - start
      const target = Math.floor(Math.min(elapsed, cfg.durationMs) * cfg.rate / 1000)
      const measured = elapsed >= cfg.warmupMs
      for (; sent < target; sent++) {
        const at = performance.now()
        clients[next]!.send(cfg.bucket, payloads[sent & 1023]!)
        clocks[next]!.sent(at, measured)
        next = (next + 1) % clients.length
      }
      if (elapsed >= cfg.durationMs) break
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    const s = await settleAll(clients)
    pollAll()
    await Promise.all(clients.map((c) => c.close()))
    return { marks, sent, bytes: sent * frameBytes, ack: { ...s, latencies: clocks.flatMap((c) => c.latencies) } }
  } finally {
    clearInterval(poller)
  }
}

async function job (cfg: LoadConfig): Promise<void> {
  if (cfg.ack !== null) {
    const level = cfg.ack
    const clients = await Promise.all(Array.from({ length: cfg.connections }, () => AckClient.connect(cfg.socket, { ack: level })))
    const r = cfg.mode === 'burst' ? await ackBurst(cfg, clients) : await ackPaced(cfg, clients)
    const cpu = process.cpuUsage(r.marks.cpu0)
    send({ type: 'done', sent: r.sent, bytes: r.bytes, firstWriteMs: r.marks.firstWriteMs, lastWriteMs: r.ack.settledMs, cpuSeconds: (cpu.user + cpu.system) / 1e6, ack: r.ack })
    return
  }
  const clients = await Promise.all(Array.from({ length: cfg.connections }, () => KahetsClient.connect(cfg.socket)))
  const { marks, sent, bytes } = cfg.mode === 'burst' ? await burst(cfg, clients) : await paced(cfg, clients)
  const lastWriteMs = wallMs()
  const cpu = process.cpuUsage(marks.cpu0)
  send({ type: 'done', sent, bytes, firstWriteMs: marks.firstWriteMs, lastWriteMs, cpuSeconds: (cpu.user + cpu.system) / 1e6 })
}

process.on('message', (m: LoadCommand) => {
  if (m.type === 'go') {
    go?.()
    go = null
    return
  }
  job(m.config).catch((err: unknown) => {
    send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) })
  })
})
// The parent going away (normally or not) ends the worker.
process.on('disconnect', () => { process.exit(0) })
send({ type: 'up' })
