// The real kahets process (bin/kahets run), as an operator runs it, on a temp socket with a
// bench buckets file; and how the bench learns that a run is delivered (its /metrics).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { freePorts, REPO_DIR } from './broker.ts'
import { exited, spawnTracked, wallMs } from './proc.ts'

const BIN = path.join(REPO_DIR, 'bin', 'kahets')

export interface KahetsHandle {
  readonly pid: number
  readonly socket: string
  readonly dir: string
  readonly proc: ChildProcess
  /** Sums of kahets_delivered_total, _dropped_total, _backed_up_total and _replayed_total for one bucket. */
  flow (bucket: string): Promise<Flow>
  /** SIGTERM (clean shutdown, as in production), then the temp dir goes. */
  stop (): Promise<void>
  output (): string
}

export interface Flow {
  delivered: number
  dropped: number
  backedUp: number
  /** Frames replayed from backup files into their stream (counted apart from delivered). */
  replayed: number
}

export interface KahetsOptions {
  /** buckets.json content; the string `{dir}` in it is replaced by the temp dir. */
  buckets: object
  env?: Record<string, string>
  /**
   * Flags for node itself (e.g. --cpu-prof, which Node 20 refuses in NODE_OPTIONS). kahets is
   * then started as bin/kahets does it, `node --max-semi-space-size=16 FLAGS dist/kahets.js run`
   * (`make bench` builds dist/).
   */
  nodeFlags?: string[]
  /** With nodeFlags: the node binary (default: the one running the bench), to compare Node versions. */
  node?: string
}

export async function startKahets (opts: KahetsOptions): Promise<KahetsHandle> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kahets-bench-'))
  const socket = path.join(dir, 'kahets.sock')
  const bucketsFile = path.join(dir, 'buckets.json')
  await writeFile(bucketsFile, JSON.stringify(opts.buckets).replaceAll('{dir}', dir))
  const [metricsPort] = await freePorts(1) as [number]
  const [command, args] = opts.nodeFlags === undefined
    ? [BIN, ['run']]
    : [opts.node ?? process.execPath, ['--max-semi-space-size=16', ...opts.nodeFlags, '--enable-source-maps', path.join(REPO_DIR, 'dist', 'kahets.js'), 'run']]
  const proc = spawnTracked(command, args, {
    cwd: dir,
    env: {
      ...process.env,
      // No .env.bench.local exists in the temp dir: only what is set here applies.
      environment: 'bench',
      SOCKET: socket,
      BUCKETS_FILE: bucketsFile,
      METRICS: `127.0.0.1:${metricsPort}`,
      LOG_LEVEL: 'info',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  // Keep the head (start-up problems) and the tail (the latest warnings), not everything.
  const keep = (d: Buffer): void => {
    out += d.toString()
    if (out.length > 200_000) out = out.slice(0, 20_000) + '\n…\n' + out.slice(-100_000)
  }
  proc.stdout!.on('data', keep)
  proc.stderr!.on('data', keep)
  const gone = exited(proc)
  const deadline = Date.now() + 30_000
  // The log line, not the socket file: kahets listens and serves metrics before it logs it.
  while (!out.includes('"msg":"kahets started"')) {
    const failed = proc.exitCode !== null || proc.signalCode !== null ? `kahets exited at start:\n${out}` : Date.now() > deadline ? `kahets did not start within 30 s:\n${out}` : null
    if (failed !== null) {
      proc.kill('SIGKILL')
      await gone.catch(() => {})
      await rm(dir, { recursive: true, force: true })
      throw new Error(failed)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`
  return {
    pid: proc.pid!,
    socket,
    dir,
    proc,
    output: () => out,
    flow: async (bucket) => {
      const text = await (await fetch(metricsUrl)).text()
      const flow: Flow = { delivered: 0, dropped: 0, backedUp: 0, replayed: 0 }
      const needle = `bucket="${bucket}"`
      for (const line of text.split('\n')) {
        if (line.startsWith('#') || !line.includes(needle)) continue
        const value = Number(line.slice(line.lastIndexOf(' ') + 1))
        if (line.startsWith('kahets_delivered_total{')) flow.delivered += value
        else if (line.startsWith('kahets_dropped_total{')) flow.dropped += value
        else if (line.startsWith('kahets_backed_up_total{')) flow.backedUp += value
        else if (line.startsWith('kahets_replayed_total{')) flow.replayed += value
      }
      return flow
    },
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      const timer = setTimeout(() => { proc.kill('SIGKILL') }, 30_000)
      await gone.catch(() => {})
      clearTimeout(timer)
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/**
 * Polls kahets's /metrics until `expected` messages of `bucket` are accounted for (delivered, or
 * dropped / backed up, which a run reports as a failure) and returns the wall-clock time it saw
 * that. Each scrape costs kahets a little CPU (prom-client formats every metric), so the poll is
 * slow while much is left and quick near the end: the interval is about a quarter of the
 * estimated time left, between 5 and 100 ms, which keeps the end-time error to a few ms.
 */
export async function waitAccounted (k: KahetsHandle, bucket: string, expected: number, timeoutMs: number, stallMs = 10_000): Promise<{ atMs: number, flow: Flow, scrapes: number }> {
  const deadline = Date.now() + timeoutMs
  let last = { t: wallMs(), n: 0 }
  let progressAt = Date.now()
  let scrapes = 0
  while (true) {
    const flow = await k.flow(bucket)
    scrapes++
    const now = wallMs()
    const n = flow.delivered + flow.dropped + flow.backedUp
    if (n >= expected) return { atMs: now, flow, scrapes }
    if (k.proc.exitCode !== null || k.proc.signalCode !== null) throw new Error(`kahets exited during a run:\n${k.output().slice(-4000)}`)
    if (n > last.n) progressAt = Date.now()
    // A stream that is stuck (e.g. Kafka refusing every request, and no backup to fail over
    // to) makes no progress at all: say so after `stallMs` rather than at the deadline.
    const stalled = Date.now() - progressAt > stallMs
    if (stalled || Date.now() > deadline) {
      const warnings = k.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-3).join('\n')
      throw new Error(`only ${n} of ${expected} messages accounted for${stalled ? `, none for ${stallMs} ms` : ` after ${timeoutMs} ms`} (${JSON.stringify(flow)})${warnings === '' ? '' : `; kahets's last warnings:\n${warnings}`}`)
    }
    const rate = (n - last.n) / Math.max(1, now - last.t) // per ms
    const leftMs = rate > 0 ? (expected - n) / rate : 100
    last = { t: now, n }
    await new Promise((resolve) => setTimeout(resolve, Math.max(5, Math.min(100, leftMs / 4))))
  }
}
