// Starts the real kahets process (bin/kahets) on a temp socket with a given buckets file,
// and tears it down after the test file.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after } from 'node:test'
import { freePort } from './ports.ts'
import { waitFor } from './wait.ts'

export const ROOT = resolve(import.meta.dirname, '../..')
export const BIN = join(ROOT, 'bin/kahets')

export interface KahetsProcess {
  readonly dir: string
  readonly socket: string
  readonly proc: ChildProcess
  readonly pid: number
  /** stdout + stderr so far (pino JSON lines and CLI messages). */
  output (): string
  /** Parsed pino lines. */
  logs (): Array<Record<string, unknown>>
  /** SIGTERM, then the exit code. */
  stop (signal?: NodeJS.Signals): Promise<number | null>
  kill (): Promise<void>
  exited: Promise<number | null>
}

export interface StartOptions {
  /** buckets.json content; `{dir}` inside string values is replaced by the temp dir. */
  buckets: object
  env?: Record<string, string>
  dir?: string
  /** Wait for the socket to appear (default true). */
  waitReady?: boolean
  args?: string[]
  /** The kahets command to start (default this checkout's bin/kahets). */
  bin?: string
}

export async function makeTempDir (prefix = 'kahets-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  after(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/**
 * KAHETS_TEST_KAFKA_CLIENT=kafkajs (or platformatic) runs a test file's Kafka streams on that
 * client wherever the file does not name one (docs/kafka-clients.md: both must pass).
 */
function withTestKafkaClient (buckets: object): object {
  const client = process.env.KAHETS_TEST_KAFKA_CLIENT
  if (client === undefined || client === '') return buckets
  const copy = structuredClone(buckets) as { streamsConfigs?: Record<string, unknown> }
  const visit = (stream: unknown): void => {
    if (stream === null || typeof stream !== 'object') return
    const s = stream as { type?: unknown, settings?: Record<string, unknown>, backup?: unknown }
    if (s.type === 'kafka' && s.settings !== undefined) s.settings['kahets.client'] ??= client
    visit(s.backup)
  }
  for (const stream of Object.values(copy.streamsConfigs ?? {})) visit(stream)
  return copy
}

export async function startKahets (opts: StartOptions): Promise<KahetsProcess> {
  const dir = opts.dir ?? await makeTempDir()
  const socket = join(dir, 'kahets.sock')
  const bucketsFile = join(dir, 'buckets.json')
  await writeFile(bucketsFile, JSON.stringify(withTestKafkaClient(opts.buckets)).replaceAll('{dir}', dir))
  const proc = spawn(opts.bin ?? BIN, opts.args ?? ['run'], {
    cwd: dir,
    env: {
      ...process.env,
      environment: 'test',
      SOCKET: socket,
      BUCKETS_FILE: bucketsFile,
      LOG_LEVEL: 'info',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  const handle: KahetsProcess = {
    dir,
    socket: opts.env?.SOCKET ?? socket,
    proc,
    pid: proc.pid!,
    output: () => out,
    logs: () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      return await exited
    },
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
      await exited
    },
    exited,
  }
  after(async () => { await handle.kill() })
  if (opts.waitReady !== false) {
    // The log line, not the file: a stale socket file may be there before kahets is.
    await waitFor(() => out.includes('"msg":"kahets started"') || proc.exitCode !== null, { timeoutMs: 20_000, what: 'kahets to listen' })
    if (proc.exitCode !== null) throw new Error(`kahets exited with ${proc.exitCode}:\n${out}`)
  }
  return handle
}

/** A kahets serving /metrics (and the health endpoints) on a free port of 127.0.0.1. */
export interface KahetsWithMetrics extends KahetsProcess {
  /** Its base URL, http://127.0.0.1:PORT. */
  readonly metrics: string
}

/** startKahets with METRICS on a free port: scrape `metrics`. */
export async function startKahetsWithMetrics (opts: StartOptions): Promise<KahetsWithMetrics> {
  const port = await freePort()
  const k = await startKahets({ ...opts, env: { METRICS: `127.0.0.1:${port}`, ...opts.env } })
  return Object.assign(k, { metrics: `http://127.0.0.1:${port}` })
}

/** streamsConfigs of one file stream, `files`, writing to {dir}/primary, with a file backup in {dir}/backup. */
export const FILES_WITH_BACKUP = { files: { type: 'file', settings: { path: '{dir}/primary' }, backup: { type: 'file', settings: { path: '{dir}/backup' } } } } as const
