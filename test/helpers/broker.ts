// Real Kafka brokers for integration tests, started through scripts/kafka.sh (the script
// `make run` uses too), plus independent ways to read back what reached them: a plain kafkajs
// consumer and kcat (librdkafka), neither of which shares code with the sidecar's Kafka path.
import { after } from 'node:test'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
// Before kafkajs loads: the tests' own consumers and admin get kahets's kafkajs fixes too (no
// TimeoutNegativeWarning from the test process on Node 24+).
import '../../src/streams/kafkajs-patches.ts'
import { Kafka, logLevel } from 'kafkajs'
import { registerCodecs } from '../../src/streams/kafka-codecs.ts'
import { freePorts } from './ports.ts'

const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const KAFKA_SH = path.join(REPO_DIR, 'scripts', 'kafka.sh')
const START_TIMEOUT_S = 90
// The first start on a fresh machine also runs mvn for the jars.
const SCRIPT_TIMEOUT_MS = (START_TIMEOUT_S + 240) * 1000

export interface Broker {
  /** '127.0.0.1:PORT', for kafkajs `brokers` and kcat `-b`. */
  readonly bootstrap: string
  readonly port: number
  readonly controllerPort: number
  readonly dataDir: string
  /** Broker stdout/stderr, appended across restarts; worth reading when a test fails. */
  readonly logFile: string
  /** Starts again on the same data dir and ports; a no-op if it is running. */
  start(): Promise<void>
  /** Clean stop (if running) then start, same data dir and ports. */
  restart(): Promise<void>
  /** SIGTERM and wait for a clean shutdown. */
  stop(): Promise<void>
  /** SIGKILL: a crash, for durability and reconnect tests. */
  kill(): Promise<void>
  /** True when the recorded broker process is alive and its port answers. */
  isRunning(): Promise<boolean>
}

export interface ConsumedMessage {
  key: Buffer | null
  value: Buffer | null
  partition: number
  offset: string
  timestamp: string
}

interface ScriptResult {
  code: number
  stdout: string
  stderr: string
}

function runScript(command: string, env: NodeJS.ProcessEnv): Promise<ScriptResult> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [KAFKA_SH, command],
      { env: { ...process.env, ...env }, timeout: SCRIPT_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

async function runScriptOrThrow(command: string, env: NodeJS.ProcessEnv): Promise<void> {
  const r = await runScript(command, env)
  if (r.code !== 0) {
    // stderr carries the script's reason and, for a failed start, the broker log's last lines.
    throw new Error(`scripts/kafka.sh ${command} exited ${r.code}\n${r.stderr}${r.stdout}`)
  }
}



interface LiveBroker {
  pidFile: string
  configFile: string
  baseDir: string
  teardown: () => Promise<void>
}

// Brokers not yet torn down. Module evaluation happens outside any test, so this after() belongs
// to the file's root: it catches brokers whose own after() could not be scoped (see startBroker).
const live = new Set<LiveBroker>()
after(async () => {
  for (const b of [...live]) await b.teardown()
})

// Last resort if the process exits without running after() hooks (a throw at load time,
// process.exit()): a forgotten broker holds 0.5–1 GB and two ports until someone notices.
process.on('exit', () => {
  for (const b of live) {
    try {
      const pid = Number(readFileSync(b.pidFile, 'utf8').trim())
      // Only signal the JVM that runs this broker's config, never a reused PID.
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (cmdline.includes(b.configFile)) process.kill(pid, 'SIGKILL')
    } catch {
      // No pid file or no such process: nothing left to kill.
    }
    if (!process.env.KAHETS_KEEP_BROKER_DIR) rmSync(b.baseDir, { recursive: true, force: true })
  }
})

/** node:test attaches an after() called inside a before()/beforeEach() hook to the hook itself,
 *  so it would run as soon as the hook returns and stop the broker the tests are about to use.
 *  There is no public API to ask where we are; the (async) stack names the hook runner. */
function calledFromHook(): boolean {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 50
  try {
    return /\bTestHook\./.test(new Error().stack ?? '')
  } finally {
    Error.stackTraceLimit = limit
  }
}

/**
 * Starts a single-node Kafka on free loopback ports with a fresh data dir, and registers its own
 * teardown (stop, delete the data dir) with node:test's after(): called inside a test, the broker
 * lives until that test ends; called at module top level (top-level await) or in a before() /
 * beforeEach() hook, until the file's tests end.
 * Set KAHETS_KEEP_BROKER_DIR=1 to keep the data dir and log for a post-mortem.
 * `env`: further scripts/kafka.sh variables (not the per-broker paths and ports set here).
 */
export async function startBroker(opts: { port?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Broker> {
  // Before any await: the synchronous stack is short and certainly shows the caller's runner.
  const inHook = calledFromHook()
  const baseDir = await mkdtemp(path.join(os.tmpdir(), 'kahets-kafka-'))
  const dataDir = path.join(baseDir, 'data')

  let port = 0
  let controllerPort = 0
  let env: NodeJS.ProcessEnv = {}
  // Every per-broker path is set explicitly: a developer's exported KAFKA_PID_FILE (for the
  // `make run` broker) must not make test brokers share, and kill, one PID file.
  const envFor = (p: number, c: number): NodeJS.ProcessEnv => ({
    KAFKA_PORT: String(p),
    KAFKA_CONTROLLER_PORT: String(c),
    KAFKA_DATA_DIR: dataDir,
    KAFKA_PID_FILE: path.join(baseDir, `kafka-${p}.pid`),
    KAFKA_LOG_FILE: path.join(baseDir, `kafka-${p}.log`),
    KAFKA_START_TIMEOUT: String(START_TIMEOUT_S),
    // The single-broker suite runs on 3.9.1 unless asked otherwise (the cluster tests use 4.4.0).
    KAFKA_VERSION: process.env.KAHETS_TEST_KAFKA_VERSION ?? '3.9.1',
    // More of scripts/kafka.sh's settings (KAFKA_EXTRA_CONFIG, KAFKA_FORMAT_ARGS: test/helpers/secure-broker.ts).
    ...opts.env,
  })

  // Between freePorts() closing a port and the JVM binding it another process may take it;
  // the script then refuses to start, and fresh ports are the cure. Given ports get one try.
  const attempts = opts.port === undefined ? 3 : 1
  let lastError: unknown
  for (let i = 0; i < attempts; i++) {
    if (opts.port === undefined) {
      ;[port, controllerPort] = await freePorts(2)
    } else {
      port = opts.port
      ;[controllerPort] = (await freePorts(2)).filter((p) => p !== opts.port)
    }
    env = envFor(port, controllerPort)
    try {
      await runScriptOrThrow('start', env)
      lastError = undefined
      break
    } catch (err) {
      lastError = err
      if (!/already taken/.test(String(err))) break
    }
  }
  if (lastError !== undefined) {
    await rm(baseDir, { recursive: true, force: true })
    throw lastError
  }

  let tornDown = false
  // Starting after teardown would quietly format a fresh, empty data dir: fail loudly instead.
  const script = (command: string) => (): Promise<void> => {
    if (tornDown) return Promise.reject(new Error(`broker ${port} was already torn down`))
    return runScriptOrThrow(command, env)
  }
  const entry: LiveBroker = {
    pidFile: path.join(baseDir, `kafka-${port}.pid`),
    configFile: path.join(baseDir, `kafka-${port}.properties`),
    baseDir,
    teardown: async () => {
      if (tornDown) return
      tornDown = true
      try {
        await runScriptOrThrow('stop', env)
      } finally {
        live.delete(entry)
        if (!process.env.KAHETS_KEEP_BROKER_DIR) await rm(baseDir, { recursive: true, force: true })
      }
    },
  }
  live.add(entry)
  if (!inHook) after(entry.teardown)

  return {
    bootstrap: `127.0.0.1:${port}`,
    port,
    controllerPort,
    dataDir,
    logFile: path.join(baseDir, `kafka-${port}.log`),
    start: script('start'),
    restart: script('restart'),
    stop: script('stop'),
    kill: script('kill'),
    isRunning: async () => (await runScript('status', env)).code === 0,
  }
}

function quietKafka(bootstrap: string, clientId: string): Kafka {
  // A test that kills the broker on purpose would otherwise fill the output with reconnect errors.
  return new Kafka({ clientId, brokers: [bootstrap], logLevel: logLevel.NOTHING })
}

/** What reached Kafka of messages whose values are `CLIENT/INDEX` (tallyByClient). */
export interface ClientTally {
  /** Distinct values. */
  ids: Set<string>
  /** Messages whose value had arrived before. */
  duplicates: number
  /** Values that first appear before an earlier index of their client (a duplicate, a later re-send, does not count). */
  outOfOrder: number
  partitions: Set<number>
}

/** Tallies messages whose values are `CLIENT/INDEX`, each client sending its indexes in order. */
export function tallyByClient(messages: readonly ConsumedMessage[]): ClientTally {
  const ids = new Set<string>()
  const last = new Map<string, number>()
  const partitions = new Set<number>()
  let duplicates = 0
  let outOfOrder = 0
  for (const m of messages) {
    partitions.add(m.partition)
    const id = m.value!.toString()
    if (ids.has(id)) {
      duplicates++
      continue
    }
    ids.add(id)
    const [c, i] = id.split('/') as [string, string]
    if ((last.get(c) ?? -1) > Number(i)) outOfOrder++
    last.set(c, Number(i))
  }
  return { ids, duplicates, outOfOrder, partitions }
}

/**
 * Reads `topic` from the beginning with a fresh consumer group until `expected` messages have
 * arrived or `timeoutMs` has passed; either way it resolves with what arrived (possibly more than
 * expected, which shows duplicates) so the test's own assertion reports the shortfall.
 * `expected: 0` waits the whole timeout, so "nothing arrived" means something.
 */
export async function consumeAll(
  bootstrap: string,
  topic: string,
  opts: { expected: number; timeoutMs: number },
): Promise<ConsumedMessage[]> {
  // The consumer decompresses snappy, lz4 and zstd batches with kahets's kafkajs codecs.
  registerCodecs()
  const consumer = quietKafka(bootstrap, 'kahets-test-consumer').consumer({
    groupId: `kahets-test-${randomBytes(8).toString('hex')}`,
    // Bigger fetches: 200,000 small messages in a few round trips instead of hundreds.
    maxBytesPerPartition: 16 * 1024 * 1024,
    maxBytes: 64 * 1024 * 1024,
    maxWaitTimeInMs: 500,
  })
  const received: ConsumedMessage[] = []
  let timer: NodeJS.Timeout | undefined
  let reachedExpected = (): void => {}
  const done = new Promise<void>((resolve) => {
    reachedExpected = resolve
    timer = setTimeout(resolve, opts.timeoutMs)
  })
  let finished = false
  try {
    const started = (async () => {
      // The topic may not exist yet (kahets creates it by producing): wait for it.
      await waitForTopic(bootstrap, topic, Date.now() + opts.timeoutMs)
      await consumer.connect()
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          if (finished) return
          for (const m of batch.messages) {
            received.push({
              key: m.key,
              value: m.value,
              partition: batch.partition,
              offset: m.offset,
              timestamp: m.timestamp,
            })
          }
          if (opts.expected > 0 && received.length >= opts.expected) reachedExpected()
        },
      })
    })()
    // If the deadline wins, a later connect failure must not surface as an unhandled rejection.
    started.catch(() => {})
    // A broker that is down makes connect() fail: that is an error, not a shortfall.
    await Promise.race([started, done])
    await done
    finished = true
    return received.slice()
  } finally {
    finished = true
    clearTimeout(timer)
    await consumer.disconnect().catch(() => {})
  }
}

async function waitForTopic(bootstrap: string, topic: string, deadline: number): Promise<void> {
  const admin = quietKafka(bootstrap, 'kahets-test-admin').admin()
  await admin.connect()
  try {
    while (true) {
      const topics = await admin.listTopics().catch(() => [] as string[])
      if (topics.includes(topic) || Date.now() > deadline) return
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

function kcat(args: string[], timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(
      'kcat',
      args,
      // Buffer output: message values may be arbitrary bytes.
      { encoding: 'buffer', maxBuffer: 1024 * 1024 * 1024, timeout: timeoutMs },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`kcat ${args.join(' ')}: ${err.message}\n${stderr.toString()}`))
        else resolve(stdout)
      },
    )
  })
}

function kcatArgs(bootstrap: string, topic: string, format: string): string[] {
  return ['-C', '-b', bootstrap, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', format]
}

/** Counts the messages in `topic` with kcat, an independent (librdkafka) client. */
export async function kcatCount(
  bootstrap: string,
  topic: string,
  opts: { timeoutMs?: number } = {},
): Promise<number> {
  // One byte per message: the count is the output length, whatever the values contain.
  const out = await kcat(kcatArgs(bootstrap, topic, '.'), opts.timeoutMs ?? 60_000)
  return out.length
}

/**
 * Everything in `topic` as kcat prints it with `format` (kcat -f); the default '%s' gives the
 * values back to back, i.e. the original byte stream for a single-partition topic.
 */
export function kcatRead(
  bootstrap: string,
  topic: string,
  opts: { format?: string; timeoutMs?: number } = {},
): Promise<Buffer> {
  return kcat(kcatArgs(bootstrap, topic, opts.format ?? '%s'), opts.timeoutMs ?? 60_000)
}

/** `configs`: topic-level settings, e.g. { 'min.insync.replicas': '2' }. */
export async function createTopic(bootstrap: string, topic: string, partitions = 1, configs: Record<string, string> = {}): Promise<void> {
  const admin = quietKafka(bootstrap, 'kahets-test-admin').admin()
  await admin.connect()
  try {
    // waitForLeaders: producing right after creation must not hit LEADER_NOT_AVAILABLE.
    await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }],
      waitForLeaders: true,
    })
  } finally {
    await admin.disconnect()
  }
}

/** True when kcat is on PATH, so a test can skip its kcat checks with a clear reason. */
export function hasKcat(): boolean {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .some((dir) => dir !== '' && existsSync(path.join(dir, 'kcat')))
}
