// The bench's own 3-node Kafka cluster (issue 12): scripts/kafka-cluster.sh on free loopback
// ports with a temp folder, as bench/lib/broker.ts does for one broker, and stopped the same way
// (by the PIDs the script recorded, also on SIGINT). Its `bootstrap` lists all three nodes.
import { execFile } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { freePorts, REPO_DIR, type BenchBroker } from './broker.ts'

const CLUSTER_SH = path.join(REPO_DIR, 'scripts', 'kafka-cluster.sh')
export const BENCH_CLUSTER_VERSION = '4.4.0'

function script (args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number, out: string }> {
  return new Promise((resolve) => {
    execFile('bash', [CLUSTER_SH, ...args], { env: { ...process.env, ...env }, timeout: 420_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
      resolve({ code, out: `${stderr}${stdout}` })
    })
  })
}

export async function startCluster (): Promise<BenchBroker> {
  // A port freePorts() found free may be taken before a JVM binds it: fresh ports, three tries.
  let last: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce()
    } catch (err) {
      last = err
      if (!/already taken|Address already in use/.test(String(err))) break
    }
  }
  throw last
}

async function startOnce (): Promise<BenchBroker> {
  const baseDir = await mkdtemp(path.join(os.tmpdir(), 'kahets-bench-cluster-'))
  const ports = await freePorts(6)
  const env: NodeJS.ProcessEnv = {
    KAFKA_VERSION: BENCH_CLUSTER_VERSION,
    KAFKA_CLUSTER_DIR: baseDir,
    KAFKA_CLUSTER_PORTS: ports.slice(0, 3).join(','),
    KAFKA_CLUSTER_CONTROLLER_PORTS: ports.slice(3).join(','),
  }
  let stopped = false
  const cluster: BenchBroker = {
    bootstrap: ports.slice(0, 3).map((p) => `127.0.0.1:${p}`).join(','),
    port: ports[0]!,
    baseDir,
    logFile: path.join(baseDir, 'node-1', 'kafka.log'),
    stop: async () => {
      if (stopped) return
      stopped = true
      const r = await script(['stop'], env)
      if (r.code !== 0) process.stderr.write(`bench: kafka-cluster.sh stop exited ${r.code}: ${r.out}\n`)
      rmSync(baseDir, { recursive: true, force: true })
    },
    killSync: () => {
      if (stopped) return
      for (const n of [1, 2, 3]) {
        try {
          const pid = Number(readFileSync(path.join(baseDir, `node-${n}`, 'kafka.pid'), 'utf8').trim())
          // Only a JVM of this cluster: a PID may have been reused.
          if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(baseDir)) process.kill(pid, 'SIGKILL')
        } catch {
          // No PID file or no such process: nothing to kill.
        }
      }
      rmSync(baseDir, { recursive: true, force: true })
    },
  }
  const r = await script(['start'], env)
  if (r.code !== 0) {
    cluster.killSync()
    throw new Error(`could not start the bench cluster:\n${r.out}`)
  }
  return cluster
}
