// A real 3-node Kafka cluster for integration tests (issue 12), started through
// scripts/kafka-cluster.sh on free loopback ports and a temp folder: default.replication.factor=3,
// min.insync.replicas=2. One per test file (it costs three JVMs on two cores): start it in a
// before() hook or at top level; it is stopped and deleted when the file's tests end, and
// SIGKILLed by its recorded PIDs if the process exits without that.
import { after } from 'node:test'
import { execFile } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import '../../src/streams/kafkajs-patches.ts'
import { Kafka, logLevel } from 'kafkajs'
import { freePorts } from './ports.ts'
import { waitFor } from './wait.ts'

const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const CLUSTER_SH = path.join(REPO_DIR, 'scripts', 'kafka-cluster.sh')
// Three JVMs starting at once on two shared cores, plus mvn on a fresh machine.
const SCRIPT_TIMEOUT_MS = 420_000

export type NodeId = 1 | 2 | 3

export interface ClusterNode {
  readonly id: NodeId
  readonly port: number
  /** '127.0.0.1:PORT' */
  readonly address: string
  readonly logFile: string
  /** SIGKILL by its recorded PID: a crash. */
  kill(): Promise<void>
  /** SIGTERM, waiting for a clean shutdown (partition leadership moves away first). */
  stop(): Promise<void>
  /** Starts again on its data dir; returns once it is registered and unfenced. */
  start(): Promise<void>
  isRunning(): Promise<boolean>
}

export interface Cluster {
  readonly version: string
  /** All three, comma-separated: kahets's bootstrap.servers, kcat's -b. */
  readonly bootstrap: string
  readonly nodes: readonly ClusterNode[]
  node(id: NodeId): ClusterNode
  /** The address of a node that is running now (kafkajs takes one bootstrap broker per string). */
  live(): Promise<string>
  /** Topic with `partitions` partitions; `leader` makes that node the preferred leader of all. */
  createTopic(topic: string, partitions: number, opts?: { leader?: NodeId }): Promise<void>
  /** Grows a topic to `count` partitions. */
  addPartitions(topic: string, count: number): Promise<void>
  /** Partition → leader node id (-1: none), from a fresh metadata request. */
  leaders(topic: string): Promise<Map<number, number>>
  /** Waits until every partition of `topic` has a leader and all three replicas in sync. */
  waitInSync(topic: string, timeoutMs?: number): Promise<void>
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', [CLUSTER_SH, ...args], { env: { ...process.env, ...env }, timeout: SCRIPT_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`scripts/kafka-cluster.sh ${args.join(' ')}: ${err.message}\n${stderr}${stdout}`))
        else resolve()
      })
  })
}



function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', timeout: 2000 })
    const done = (answered: boolean) => { socket.destroy(); resolve(answered) }
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
    socket.once('timeout', () => done(false))
  })
}

const live = new Set<{ dir: string, teardown: () => Promise<void> }>()
after(async () => {
  for (const c of [...live]) await c.teardown()
})
process.on('exit', () => {
  for (const c of live) {
    for (const pid of runningNodes(c.dir)) process.kill(pid, 'SIGKILL')
    if (!process.env.KAHETS_KEEP_BROKER_DIR) rmSync(c.dir, { recursive: true, force: true })
  }
})

/** PIDs of the cluster's nodes still running: only a JVM running this cluster's config, never a reused PID. */
function runningNodes(dir: string): number[] {
  const pids: number[] = []
  for (const n of [1, 2, 3]) {
    try {
      const pid = Number(readFileSync(path.join(dir, `node-${n}`, 'kafka.pid'), 'utf8').trim())
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) pids.push(pid)
    } catch {
      // No PID file or no such process: not running.
    }
  }
  return pids
}

function quietKafka(bootstrap: string): Kafka {
  return new Kafka({ clientId: 'kahets-test-cluster', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 3 } })
}

interface Started {
  dir: string
  env: NodeJS.ProcessEnv
  clientPorts: number[]
  isTornDown: () => boolean
}

/**
 * Three nodes on six free ports. Between freePorts() closing a port and a JVM binding it another
 * process (parallel tests) may take it: the start then fails, and fresh ports in a fresh
 * folder are the cure (three tries, as startBroker does).
 */
async function startOnFreePorts(version: string): Promise<Started> {
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kahets-cluster-'))
    const ports = await freePorts(6)
    const clientPorts = ports.slice(0, 3)
    const env: NodeJS.ProcessEnv = {
      KAFKA_VERSION: version,
      KAFKA_CLUSTER_DIR: dir,
      KAFKA_CLUSTER_PORTS: clientPorts.join(','),
      KAFKA_CLUSTER_CONTROLLER_PORTS: ports.slice(3).join(','),
    }
    let tornDown = false
    const entry = {
      dir,
      teardown: async () => {
        if (tornDown) return
        tornDown = true
        try {
          await run(['stop'], env).catch((err: unknown) => {
            // All three stopping at once, the last controller has no quorum left to accept its
            // controlled shutdown and may outwait kafka.sh's SIGTERM grace, which then ends it
            // with SIGKILL and exits 1. Teardown needs every node gone; only that is a failure.
            if (runningNodes(dir).length > 0) throw err
          })
        } finally {
          live.delete(entry)
          if (!process.env.KAHETS_KEEP_BROKER_DIR) await rm(dir, { recursive: true, force: true })
        }
      },
    }
    live.add(entry)
    try {
      await run(['start'], env)
      return { dir, env, clientPorts, isTornDown: () => tornDown }
    } catch (err) {
      lastError = err
      await entry.teardown().catch(() => {})
      if (!/already taken|Address already in use/.test(String(err))) break
    }
  }
  throw lastError
}

export async function startCluster(opts: { version?: string } = {}): Promise<Cluster> {
  const version = opts.version ?? '4.4.0'
  const { dir, env, clientPorts, isTornDown } = await startOnFreePorts(version)

  const nodeCmd = (cmd: string, id: NodeId) => (): Promise<void> => {
    if (isTornDown()) return Promise.reject(new Error('cluster already torn down'))
    return run([cmd, String(id)], env)
  }
  const nodes: ClusterNode[] = ([1, 2, 3] as const).map((id) => ({
    id,
    port: clientPorts[id - 1]!,
    address: `127.0.0.1:${clientPorts[id - 1]!}`,
    logFile: path.join(dir, `node-${id}`, 'kafka.log'),
    kill: nodeCmd('kill-node', id),
    stop: nodeCmd('stop-node', id),
    start: nodeCmd('start-node', id),
    isRunning: () => portOpen(clientPorts[id - 1]!),
  }))

  const liveAddress = async (): Promise<string> => {
    for (const n of nodes) if (await n.isRunning()) return n.address
    throw new Error('no node of the cluster is running')
  }
  const withAdmin = async <T>(f: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> => {
    const admin = quietKafka(await liveAddress()).admin()
    await admin.connect()
    try {
      return await f(admin)
    } finally {
      await admin.disconnect().catch(() => {})
    }
  }
  const leaders = (topic: string): Promise<Map<number, number>> => withAdmin(async (admin) => {
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    return new Map(md.topics[0]!.partitions.map((p) => [p.partitionId, p.leader]))
  })

  return {
    version,
    bootstrap: nodes.map((n) => n.address).join(','),
    nodes,
    node: (id) => nodes[id - 1]!,
    live: liveAddress,
    leaders,
    createTopic: (topic, partitions, o = {}) => withAdmin(async (admin) => {
      const order = o.leader === undefined ? undefined : [o.leader, ...([1, 2, 3] as const).filter((n) => n !== o.leader)]
      await admin.createTopics({
        waitForLeaders: true,
        topics: [order === undefined
          ? { topic, numPartitions: partitions, replicationFactor: 3 }
          : { topic, replicaAssignment: Array.from({ length: partitions }, (_, partition) => ({ partition, replicas: order })) }],
      })
    }),
    addPartitions: (topic, count) => withAdmin((admin) => admin.createPartitions({ topicPartitions: [{ topic, count }] }).then(() => {})),
    waitInSync: async (topic, timeoutMs = 120_000) => {
      await waitFor(() => withAdmin(async (admin) => {
        const md = await admin.fetchTopicMetadata({ topics: [topic] })
        return md.topics[0]!.partitions.every((p) => p.leader >= 0 && p.isr.length === 3)
      }), { timeoutMs, intervalMs: 500, what: `all partitions of ${topic} with 3 in-sync replicas` })
    },
  }
}
