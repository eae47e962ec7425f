// The load-client worker processes (bench/load-client.ts) and the coordination of one run:
// every connection is open before the first message is sent, and every worker starts on the
// same 'go'.
import path from 'node:path'
import type { ChildProcess } from 'node:child_process'
import type { LoadCommand, LoadConfig, LoadMessage } from '../load-client.ts'
import { REPO_DIR } from './broker.ts'
import { exited, spawnTracked, wallMs } from './proc.ts'

export interface LoadSpec {
  socket: string
  bucket: string
  size: number
  /** Client connections in all, spread over the pool's workers. */
  clients: number
  mode: 'burst' | 'paced'
  /** burst: messages in all. */
  messages?: number
  /** paced: messages per second in all. */
  rate?: number
  durationMs?: number
  /** paced: stamp send times into the payloads (latency runs). Default false. */
  stamp?: boolean
  /** Acknowledged mode (bench/load-client.ts): AckClient connections at this level. Default null. */
  ack?: 'accepted' | 'durable' | null
  /** paced ack: messages sent in the first `warmupMs` are left out of the latencies. */
  warmupMs?: number
  /** burst: JSON events (bench/lib/payload.ts) instead of letters. Default letters. */
  payloads?: 'letters' | 'json'
}

export interface LoadResult {
  sent: number
  bytes: number
  /** Wall clock (ms) of the first worker's first write. */
  firstWriteMs: number
  /** Wall clock (ms) when the last worker had handed its last byte to the kernel (ack: had flush() resolve). */
  lastWriteMs: number
  /** CPU seconds of all workers during the send (nobody's figure: kept in the JSON). */
  clientCpuSeconds: number
  /** Acknowledged runs: every worker's flush() had resolved at `settledMs`; latencies of paced runs, in ms. */
  ack?: { settledMs: number, settled: number, refused: number, latencies: number[] }
}

export interface LoadRun {
  /** Starts the send on every worker; returns the wall-clock time it was given. */
  go (): number
  readonly done: Promise<LoadResult>
}

type Done = Extract<LoadMessage, { type: 'done' }>

const LOAD_CLIENT = path.join(REPO_DIR, 'bench', 'load-client.ts')

function split (total: number, parts: number, i: number): number {
  return Math.floor(total / parts) + (i < total % parts ? 1 : 0)
}

/** Resolves with the next message of `type` from `p`, or rejects on an 'error' message or exit. */
function next<T extends LoadMessage['type']> (p: ChildProcess, type: T): Promise<Extract<LoadMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      p.off('message', onMessage)
      p.off('exit', onExit)
    }
    const onMessage = (m: LoadMessage): void => {
      if (m.type === type) {
        cleanup()
        resolve(m as Extract<LoadMessage, { type: T }>)
      } else if (m.type === 'error') {
        cleanup()
        reject(new Error(`load client failed: ${m.message}`))
      }
    }
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup()
      reject(new Error(`load client exited (${code ?? signal})`))
    }
    p.on('message', onMessage)
    p.once('exit', onExit)
  })
}

async function spawnWorkers (size: number): Promise<ChildProcess[]> {
  const workers = Array.from({ length: Math.max(1, size) }, () => spawnTracked(process.execPath, ['--import', 'tsx', LOAD_CLIENT], {
    cwd: REPO_DIR,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  }))
  await Promise.all(workers.map((w) => next(w, 'up')))
  return workers
}

export class LoadPool {
  #workers: ChildProcess[]
  #busy = false

  private constructor (workers: ChildProcess[]) {
    this.#workers = workers
  }

  /** Starts `size` worker processes (one per core is plenty: they mostly wait on write()). */
  static async start (size: number): Promise<LoadPool> {
    return new LoadPool(await spawnWorkers(size))
  }

  /** Resolves once every worker of the run has connected and waits for go(). One run at a time. */
  async prepare (spec: LoadSpec): Promise<LoadRun> {
    if (this.#busy) throw new Error('LoadPool: a run is already under way')
    this.#busy = true
    try {
      const workers = this.#workers.slice(0, Math.max(1, Math.min(this.#workers.length, spec.clients)))
      const readies = workers.map((w) => next(w, 'ready'))
      const dones = workers.map((w) => next(w, 'done'))
      // If one worker fails, the others' promises must not end up rejected and unobserved.
      for (const p of [...readies, ...dones]) p.catch(() => {})
      workers.forEach((w, i) => {
        const config: LoadConfig = {
          socket: spec.socket,
          bucket: spec.bucket,
          size: spec.size,
          connections: split(spec.clients, workers.length, i),
          mode: spec.mode,
          messages: split(spec.messages ?? 0, workers.length, i),
          rate: (spec.rate ?? 0) / workers.length,
          durationMs: spec.durationMs ?? 0,
          stamp: spec.stamp ?? false,
          ack: spec.ack ?? null,
          warmupMs: spec.warmupMs ?? 0,
          payloads: spec.payloads ?? 'letters',
        }
        w.send({ type: 'job', config } satisfies LoadCommand)
      })
      await Promise.all(readies)
      const done = Promise.all(dones).then((rs: Done[]) => ({
        sent: rs.reduce((n, r) => n + r.sent, 0),
        bytes: rs.reduce((n, r) => n + r.bytes, 0),
        firstWriteMs: Math.min(...rs.map((r) => r.firstWriteMs)),
        lastWriteMs: Math.max(...rs.map((r) => r.lastWriteMs)),
        clientCpuSeconds: rs.reduce((n, r) => n + r.cpuSeconds, 0),
        ...(spec.ack == null
          ? {}
          : {
              ack: {
                settledMs: Math.max(...rs.map((r) => r.ack?.settledMs ?? Infinity)),
                settled: rs.reduce((n, r) => n + (r.ack?.settled ?? 0), 0),
                refused: rs.reduce((n, r) => n + (r.ack?.refused ?? 0), 0),
                latencies: rs.flatMap((r) => r.ack?.latencies ?? []),
              },
            }),
      }))
      const finished = done.finally(() => { this.#busy = false })
      finished.catch(() => {})
      return {
        go: () => {
          const at = wallMs()
          for (const w of workers) w.send({ type: 'go' } satisfies LoadCommand)
          return at
        },
        done: finished,
      }
    } catch (err) {
      // A worker that failed to connect may have left the others connected and waiting for a
      // 'go' that never comes: those processes are replaced.
      const old = this.#workers
      for (const w of old) w.kill('SIGKILL')
      await Promise.all(old.map((w) => exited(w).catch(() => {})))
      this.#workers = await spawnWorkers(old.length)
      this.#busy = false
      throw err
    }
  }

  async close (): Promise<void> {
    for (const w of this.#workers) if (w.connected) w.disconnect()
    await Promise.all(this.#workers.map((w) => exited(w).catch(() => {})))
  }
}
