// The bench's own Kafka broker: scripts/kafka.sh (the one `make run` and the tests use) on free
// loopback ports with a temp data dir, so a bench never measures, fills or stops somebody
// else's broker. test/helpers/broker.ts does the same but ties teardown to node:test's after();
// a plain script has to stop it itself, by the PID the script recorded, also on SIGINT.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
// Before kafkajs: its idle request queue otherwise polls every millisecond and Node 24+ warns
// about the negative timer (kafkajs-patches.ts).
import '../../src/streams/kafkajs-patches.ts'
import { Kafka, logLevel, type Admin } from 'kafkajs'
import { registerCodecs } from '../../src/streams/kafka-codecs.ts'
import { freePorts } from '../../test/helpers/ports.ts'

export { freePorts }

export const REPO_DIR = path.resolve(import.meta.dirname, '../..')
const KAFKA_SH = path.join(REPO_DIR, 'scripts', 'kafka.sh')

export interface BenchBroker {
  readonly bootstrap: string
  readonly port: number
  readonly baseDir: string
  readonly logFile: string
  /** Clean stop (kafka.sh stop: SIGTERM by recorded PID, SIGKILL after its timeout), then the temp dir goes. */
  stop (): Promise<void>
  /** Last resort for process 'exit': SIGKILL by the recorded PID if it still runs our config. Synchronous. */
  killSync (): void
}

function script (command: string, env: NodeJS.ProcessEnv): Promise<{ code: number, out: string }> {
  return new Promise((resolve) => {
    execFile('bash', [KAFKA_SH, command], { env: { ...process.env, ...env }, timeout: 330_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
      resolve({ code, out: `${stderr}${stdout}` })
    })
  })
}



export async function startBroker (): Promise<BenchBroker> {
  const baseDir = await mkdtemp(path.join(os.tmpdir(), 'kahets-bench-kafka-'))
  let lastOut = ''
  // Another process may take a port between freePorts() and the JVM binding it: retry with new ones.
  for (let attempt = 0; attempt < 3; attempt++) {
    const [port, controllerPort] = await freePorts(2) as [number, number]
    const pidFile = path.join(baseDir, `kafka-${port}.pid`)
    const configFile = path.join(baseDir, `kafka-${port}.properties`)
    const env: NodeJS.ProcessEnv = {
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(controllerPort),
      KAFKA_DATA_DIR: path.join(baseDir, 'data'),
      // Explicit, so a developer's exported KAFKA_PID_FILE (for `make run`) is never shared.
      KAFKA_PID_FILE: pidFile,
      KAFKA_LOG_FILE: path.join(baseDir, `kafka-${port}.log`),
    }
    let stopped = false
    const broker: BenchBroker = {
      bootstrap: `127.0.0.1:${port}`,
      port,
      baseDir,
      logFile: env.KAFKA_LOG_FILE!,
      stop: async () => {
        if (stopped) return
        stopped = true
        const r = await script('stop', env)
        if (r.code !== 0) process.stderr.write(`bench: kafka.sh stop exited ${r.code}: ${r.out}\n`)
        rmSync(baseDir, { recursive: true, force: true })
      },
      killSync: () => {
        if (stopped) return
        try {
          const pid = Number(readFileSync(pidFile, 'utf8').trim())
          // Only the JVM running this broker's config: a PID may have been reused.
          if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(configFile)) process.kill(pid, 'SIGKILL')
        } catch {
          // No PID file or no such process: nothing to kill.
        }
        rmSync(baseDir, { recursive: true, force: true })
      },
    }
    const r = await script('start', env)
    if (r.code === 0) return broker
    lastOut = r.out
    if (!/already taken/.test(r.out)) break
  }
  rmSync(baseDir, { recursive: true, force: true })
  throw new Error(`could not start the bench broker:\n${lastOut}`)
}

export function kafka (bootstrap: string, clientId: string): Kafka {
  // The consumer must decompress snappy/lz4 batches written by kahets and the ceilings.
  registerCodecs()
  // A cluster's bootstrap lists its nodes, comma-separated.
  return new Kafka({ clientId, brokers: bootstrap.split(','), logLevel: logLevel.NOTHING })
}

/** One admin connection for the whole bench: topics are created and deleted per run. */
export class Topics {
  readonly #admin: Admin
  readonly #replicationFactor: number
  #connected: Promise<void> | null = null

  /** replicationFactor: 3 on the 3-node cluster, so acks=all waits for the followers. */
  constructor (bootstrap: string, replicationFactor = 1) {
    this.#admin = kafka(bootstrap, 'kahets-bench-admin').admin()
    this.#replicationFactor = replicationFactor
  }

  /**
   * Creates topics with one partition. `logAppendTime`: the broker stamps every record batch
   * with its own clock when it appends it, which is what the latency runs measure against.
   */
  async create (topics: readonly string[], opts: { logAppendTime?: boolean } = {}): Promise<void> {
    await (this.#connected ??= this.#admin.connect())
    const configEntries = opts.logAppendTime === true ? [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] : []
    await this.#admin.createTopics({
      topics: topics.map((topic) => ({ topic, numPartitions: 1, replicationFactor: this.#replicationFactor, configEntries })),
      // Producing right after creation must not meet LEADER_NOT_AVAILABLE.
      waitForLeaders: true,
    })
  }

  /** Deleted after each run: a full bench writes several GB, which need not stay on disk. */
  async delete (topics: readonly string[]): Promise<void> {
    if (topics.length === 0) return
    await (this.#connected ??= this.#admin.connect())
    await this.#admin.deleteTopics({ topics: [...topics], timeout: 30_000 }).catch((err: unknown) => {
      process.stderr.write(`bench: deleting topics ${topics.join(',')} failed: ${String(err)}\n`)
    })
  }

  /** Messages in a one-partition topic (its high watermark). */
  async count (topic: string): Promise<number> {
    await (this.#connected ??= this.#admin.connect())
    const offsets = await this.#admin.fetchTopicOffsets(topic)
    return offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0)
  }

  async close (): Promise<void> {
    if (this.#connected !== null) await this.#admin.disconnect().catch(() => {})
  }
}

/**
 * Reads `expected` records of `topic` from the beginning and hands each (record timestamp,
 * value) to `each`. Used after a latency run, so the consumer's CPU never competes with the
 * run it measures.
 */
export async function readTopic (bootstrap: string, topic: string, expected: number, timeoutMs: number,
  each: (timestampMs: number, value: Buffer) => void): Promise<number> {
  const consumer = kafka(bootstrap, 'kahets-bench-consumer').consumer({
    groupId: `kahets-bench-${randomBytes(6).toString('hex')}`,
    maxBytesPerPartition: 16 << 20,
    maxBytes: 64 << 20,
    maxWaitTimeInMs: 200,
  })
  let seen = 0
  let finish = (): void => {}
  const done = new Promise<void>((resolve) => { finish = resolve })
  const timer = setTimeout(finish, timeoutMs)
  try {
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          if (m.value !== null) each(Number(m.timestamp), m.value)
          seen++
        }
        if (seen >= expected) finish()
      },
    })
    await done
    return seen
  } finally {
    clearTimeout(timer)
    await consumer.disconnect().catch(() => {})
  }
}
