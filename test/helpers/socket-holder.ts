// Socket activation without PID 1: test/fixtures/socket-holder.py holds a listening UNIX
// socket (as systemd holds kahets.socket's) and starts kahets with it as fd 3, as often as a
// test asks, so that kahets can be restarted while the socket and its backlog stay. Every
// process is stopped by its pid after the test file.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after } from 'node:test'
import { BIN, ROOT } from './kahets.ts'
import { waitFor } from './wait.ts'

export interface ActivatedKahets {
  readonly pid: number
  /** stdout + stderr so far. */
  output (): string
  /** Parsed pino lines. */
  logs (): Array<Record<string, unknown>>
  /** SIGTERM (or `signal`), then the exit code (negative: killed by that signal). */
  stop (signal?: NodeJS.Signals): Promise<number>
  readonly exited: Promise<number>
}

export interface SocketHolder {
  readonly path: string
  /** Starts bin/kahets run with the held socket; waits for "kahets started" unless waitReady is false. */
  start (opts: { buckets: object, dir: string, env?: Record<string, string>, waitReady?: boolean }): Promise<ActivatedKahets>
}

export async function holdSocket (path: string, backlog = 4096): Promise<SocketHolder> {
  const holder = spawn('python3', [join(ROOT, 'test/fixtures/socket-holder.py'), path, String(backlog)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const holderExited = new Promise<void>((resolve) => holder.once('exit', () => resolve()))
  const exits = new Map<number, (code: number) => void>()
  const exitCodes = new Map<number, number>()
  let started: ((pid: number) => void) | null = null
  let listening: (() => void) | null = null
  const ready = new Promise<void>((resolve) => { listening = resolve })
  createInterface({ input: holder.stdout }).on('line', (line) => {
    const msg = JSON.parse(line) as { listening?: string, started?: number, exited?: number, code?: number }
    if (msg.listening !== undefined) listening?.()
    if (msg.started !== undefined) started?.(msg.started)
    if (msg.exited !== undefined) {
      exitCodes.set(msg.exited, msg.code!)
      exits.get(msg.exited)?.(msg.code!)
    }
  })
  const running = new Set<number>()
  after(async () => {
    for (const pid of running) {
      try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
    }
    holder.stdin.end()
    await holderExited
  })
  await Promise.race([ready, holderExited.then(() => { throw new Error(`socket-holder.py could not listen on ${path}`) })])
  let n = 0
  return {
    path,
    async start (opts) {
      const bucketsFile = join(opts.dir, 'buckets.json')
      await writeFile(bucketsFile, JSON.stringify(opts.buckets).replaceAll('{dir}', opts.dir))
      const log = join(opts.dir, `kahets-${++n}.log`)
      const env = { ...process.env, environment: 'test', SOCKET: path, BUCKETS_FILE: bucketsFile, LOG_LEVEL: 'info', ...opts.env }
      const pid = await new Promise<number>((resolve) => {
        started = resolve
        holder.stdin.write(JSON.stringify({ argv: [BIN, 'run'], env, cwd: opts.dir, log }) + '\n')
      })
      running.add(pid)
      const exited = new Promise<number>((resolve) => {
        const known = exitCodes.get(pid)
        if (known !== undefined) resolve(known)
        else exits.set(pid, resolve)
      }).finally(() => running.delete(pid))
      const output = (): string => existsSync(log) ? readFileSync(log, 'utf8') : ''
      const handle: ActivatedKahets = {
        pid,
        output,
        logs: () => output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
        stop: async (signal = 'SIGTERM') => {
          if (running.has(pid)) process.kill(pid, signal)
          return await exited
        },
        exited,
      }
      if (opts.waitReady !== false) {
        let code: number | null = null
        void exited.then((c) => { code = c })
        await waitFor(() => output().includes('"msg":"kahets started"') || code !== null, { timeoutMs: 20_000, what: 'kahets to start on the held socket' })
        if (code !== null) throw new Error(`kahets exited with ${String(code)}:\n${output()}`)
      }
      return handle
    },
  }
}
