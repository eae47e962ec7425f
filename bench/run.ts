// `make bench`: kahets against its ceilings, in one invocation, on one machine, against one
// broker. Prints one table and writes the same figures as JSON to bench/results/.
//
//   node --import tsx bench/run.ts [--quick] [--runs N] [--only REGEX] [--seconds S]
//                                  [--workers N] [--batch-timeout MS] [--cpu-prof] [--results-dir DIR]
//   make bench [BENCH_ARGS='--quick']
//
// A full run takes about 15–20 minutes on 2 cores; --quick (one short run each) under 3.
// What is measured (see also the header printed with the table):
//   socket → file     kahets (bin/kahets run) with one file stream (fsync on, the default)
//   socket → Kafka    kahets with one Kafka stream, acks and compression.codec as named
//   ceilings          raw UNIX-socket sink (counts bytes only); the best producer on the
//                     machine (issue 12): Kafka's ProducerPerformance (Java) with kahets's own
//                     limits and tuned, and librdkafka (kcat -P from a file); kafkajs alone
//                     with the best batching found for it
//   PHP               clients/php/Kahets.php from one php process, persistent or not
//
// A run sends N messages from C client connections (load-client.ts worker processes, so
// client CPU is never kahets CPU) and ends when kahets's /metrics count all N as delivered
// (file written and fsynced, Kafka acknowledged). Throughput = N / (first write → that moment).
// CPU and peak RSS of the measured process come from /proc (VmHWM reset before every run).
// Half-rate runs (kahets scenarios): a fresh kahets under a steady load at half the median
// throughput, for the RSS and CPU of a load it keeps up with, and for Kafka the latency: each
// payload carries its send time and the topics use message.timestamp.type=LogAppendTime, so
// broker append time − send time is client write → Kafka append, i.e. write → acknowledgement
// less the response trip.
// Acknowledged mode (issue 11, docs/protocol.md): rows …/ack-accepted and …/ack-durable beside
// file/100B/8c and kafka/acks1/none/100B/8c, in the same group, so the fire-and-forget row they
// are compared with is measured in the same invocation (--only adds it when it selects an ack
// row). Their clients are AckClients: a burst ends when flush() resolved on every connection,
// and their half-rate runs time each message from send() to the ACK that settled it.
import { createWriteStream, existsSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { execFileSync, type ChildProcess } from 'node:child_process'
import { formatSummary, summariseProfile, type ProfileSummary } from './cpuprofile-top.ts'
import type { KafkajsConfig, KafkajsResult } from './kafkajs-producer.ts'
import type { SinkMessage } from './sink.ts'
import { readTopic, REPO_DIR, startBroker, Topics, type BenchBroker } from './lib/broker.ts'
import { BENCH_CLUSTER_VERSION, startCluster } from './lib/cluster.ts'
import { startKahets, waitAccounted, type Flow, type KahetsHandle } from './lib/kahets.ts'
import { LoadPool } from './lib/load.ts'
import { KahetsClient } from '../clients/node/index.ts'
import { PayloadSource, readStamp } from './lib/payload.ts'
import { cpuSeconds, endTracked, exited, peakRssBytes, resetPeakRss, signalTracked, spawnTracked } from './lib/proc.ts'
import { count, fixed, percent, percentile, spread, table, type Spread } from './lib/report.ts'
import { plotSvg, plotTitle } from './lib/plot.ts'

// ------------------------------------------------------------------ configuration

const SIZES = [100, 1024, 8192] as const
const CLIENTS = [1, 8, 64] as const
/** The codec/acks variants run at one size and client count only: the full cross would take hours here. */
const VARIANT_SIZE = 100
const VARIANT_CLIENTS = 8
type Acks = '1' | 'all'
type Codec = 'none' | 'snappy' | 'lz4'
const VARIANTS: ReadonlyArray<{ acks: Acks, codec: Codec }> = [
  { acks: 'all', codec: 'none' },
  { acks: '1', codec: 'snappy' },
  { acks: '1', codec: 'lz4' },
  { acks: 'all', codec: 'snappy' },
  { acks: 'all', codec: 'lz4' },
]

// kahets's configuration in every kahets scenario, written out so the results say what they
// were measured with: the defaults of docs/configuration.md, except the bucket's batchTimeout (default 1000 ms).
// A burst ends with a partial batch that waits out batchTimeout, which would add up to a
// second to a 3 s run; and at half rate a batch of 1000 may take longer than the latency target
// to fill, so the bucket's own wait is bounded to the 50 ms the target allows beyond the Kafka
// linger. --batch-timeout changes it. queue.buffering.max.ms is the linger of the target.
const BUCKET_BATCH = 1000
const DEFAULT_BATCH_TIMEOUT_MS = 50
// kahets's default Kafka client unless KAHETS_CLIENT (kafkajs | platformatic) names one.
const KAFKA_SETTINGS = { 'batch.num.messages': 10000, 'queue.buffering.max.ms': 5, ...(process.env.KAHETS_CLIENT === undefined ? {} : { 'kahets.client': process.env.KAHETS_CLIENT }) }
const LATENCY_TARGET_MS = KAFKA_SETTINGS['queue.buffering.max.ms'] + 50
/** Issue 11's goals for acknowledged mode: msg/s against fire-and-forget, and write → ACK at half rate. */
const ACK_RATIO_TARGET = 0.7
const ACK_LEVELS = ['accepted', 'durable'] as const
type AckLevel = typeof ACK_LEVELS[number]
const FILE_SETTINGS = { sizeRotate: '100MB', maxFiles: 3 }
const FILE_BUCKET = 'bench'
// MAXMEMORY of the throughput runs' kahets. A burst is read as fast as the clients write (kahets
// never blocks a client because a stream is slow) while the stream delivers at its own pace, so
// what the stream has not yet taken is buffered; past 80% of MAXMEMORY kahets drops it (no
// backup here), and the run would measure that. With the default 250MB the 1 KiB and 8 KiB
// bursts to the file stream dropped, so the bench raises it to 1 GiB and keeps every burst's
// charge under 70% of that: nothing can be dropped, and the burst runs' peak RSS shows what
// buffering a backlog costs. The half-rate runs show the RSS of a load kahets keeps up with,
// and the memory-bound scenario the RSS of a burst far beyond a small MAXMEMORY.
const MAXMEMORY_BYTES = 1024 * 1024 * 1024
const BURST_MAX_BYTES = 0.7 * MAXMEMORY_BYTES
// The memory-bound scenario: a burst of 8 × MAXMEMORY against MAXMEMORY 32 MB, with a file
// backup that takes the overflow and is replayed (at up to 256 MB/s) once the burst is over.
const BOUNDED_MAXMEMORY_BYTES = 32 * 1024 * 1024
const BOUNDED_BURST_BYTES = 8 * BOUNDED_MAXMEMORY_BYTES
const BOUNDED_REPLAY_RATE = '256MB'
/** What MAXMEMORY charges per frame besides its wire bytes (src/protocol/frame.ts FRAME_OVERHEAD_BYTES). */
const FRAME_CHARGE_BYTES = 128

// The ceilings get kahets's own batching limits: a request carries at most 1,000,000 bytes
// per partition (kahets: min(1 MiB, message.max.bytes)) and lingers 5 ms.
const PP_PROPS = ['linger.ms=5', 'batch.size=1000000']
// Issue 12: the ceiling is the best producer on the machine. ProducerPerformance tuned as the
// issue asks (same acks and codec), and librdkafka, the producer kahego and kcat users know:
// Debian ships no rdkafka_performance (librdkafka-dev has headers only), so it is kcat -P
// reading a file of newline-separated payloads, with librdkafka's batching opened up the same
// way (a 1 MiB batch, 5 ms linger, a queue that never makes kcat wait on it).
const PP_TUNED_PROPS = ['batch.size=1048576', 'linger.ms=5']
const RDKAFKA_PROPS = ['batch.size=1048576', 'linger.ms=5', 'batch.num.messages=1000000', 'queue.buffering.max.messages=10000000', 'queue.buffering.max.kbytes=2097152']
/** Kinds whose best median is "the best ceiling" of a Kafka scenario. */
const PRODUCER_CEILINGS = ['pp', 'pp-tuned', 'rdkafka'] as const
// kafkajs (with kahets's patch of its quadratic grouping, see kafkajs-producer.ts) sends fastest
// here with kahets's own limits: a scan at 100 B / 1 KiB, 5 in flight, gave 500 messages a
// request → 85–114k / 57k msg/s, 2,000 → 122–129k / 53–61k, 10,000 → 127k / 51–62k; 2 in
// flight was no better. (Unpatched, 10,000 was the slowest: 44k vs 70k at 500.) So the ceiling
// sends up to batch.num.messages 10,000 / 1,000,000 B a request, 5 requests in flight
// (max.in.flight.requests.per.connection's default) — but not one topic at a time as kahets does.
const KAFKAJS_BATCH = { batchMessages: 10_000, batchBytes: 1_000_000, inFlight: 5 }

const FRAME_OVERHEAD = 4 + 2 // length u32 + bucketLen u8 + keyLen u8 (no key)
const MiB = 1024 * 1024

// ------------------------------------------------------------------ options

interface Options {
  quick: boolean
  runs: number
  only: RegExp | null
  /** Target length of one throughput run and of one half-rate run. */
  seconds: number
  workers: number
  cpuProf: boolean
  batchTimeout: number
  /** Where the JSON goes (bench/results unless --results-dir). */
  resultsDir: string
}

function options (): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      only: { type: 'string' },
      seconds: { type: 'string' },
      workers: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      'batch-timeout': { type: 'string' },
      'results-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help === true) {
    process.stdout.write(`usage: node --import tsx bench/run.ts [options]
  --quick         1 run per scenario, ~0.6 s runs: a smoke test (< 3 min)
  --runs N        runs per scenario (default 3; the median is shown with min and max)
  --only REGEX    only scenarios whose id matches, e.g. 'file/100B' or 'kafka/acks1/none/100B/8c|pp/acks1/none/100B'
                  (ids: file|sink/SIZE/Cc, kafka/acksA/CODEC/SIZE/Cc, pp|pp-tuned|rdkafka|kafkajs/acksA/CODEC/SIZE, php/MODE;
                  acknowledged mode: file/100B/8c/ack-LEVEL, kafka/acks1/none/100B/8c/ack-LEVEL, php/ack-LEVEL,
                  LEVEL accepted|durable, each run with the fire-and-forget row it is compared with;
                  the 3-node cluster: cluster/kafka/acksall/none/100B/8c, cluster/pp/acksall/none/100B)
  --seconds S     target length of one run (default 3)
  --workers N     load-client processes, shared by all scenarios (default 2: one per core)
  --cpu-prof      run kahets under node --cpu-prof and print its top self-time functions
  --batch-timeout MS  the kahets bucket's batchTimeout (default ${DEFAULT_BATCH_TIMEOUT_MS}; batch is ${BUCKET_BATCH})
  --results-dir DIR   write the JSON (and profiles) there instead of bench/results
`)
    process.exit(0)
  }
  const quick = values.quick === true
  const num = (v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt
    const n = Number(v)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`not a positive number: ${v}`)
    return n
  }
  return {
    quick,
    runs: Math.round(num(values.runs, quick ? 1 : 3)),
    only: values.only === undefined ? null : new RegExp(values.only),
    seconds: num(values.seconds, quick ? 0.6 : 3),
    workers: Math.round(num(values.workers, 2)),
    cpuProf: values['cpu-prof'] === true,
    batchTimeout: Math.round(num(values['batch-timeout'], DEFAULT_BATCH_TIMEOUT_MS)),
    resultsDir: path.resolve(values['results-dir'] ?? path.join(REPO_DIR, 'bench', 'results')),
  }
}

// ------------------------------------------------------------------ results

interface RunResult {
  messages: number
  seconds: number
  msgsPerSec: number
  /** Payload MiB per second (what ProducerPerformance calls MB/sec). */
  mbPerSec: number
  cpuSeconds: number | null
  cpuPer1M: number | null
  peakRssMB: number | null
  /** ProducerPerformance's own send → ack latency, at full speed. */
  p50?: number
  p99?: number
  /** Messages kahets dropped or backed up instead of delivering (a broken run). */
  notDelivered?: number
  /** Memory-bound rows: messages spilled to the backup (then replayed), and read back from the topic. */
  spilled?: number
  inKafka?: number
  clientCpuSeconds?: number
  /** PHP rows: sends that returned false (kahets could not take the connection or the write). */
  failedSends?: number
  /** Acknowledged rows: frames kahets reported refused (a broken run when > 0). */
  refused?: number
  /** PHP ack rows: sends that met the client's unsettled bound and were retried after a flush(). */
  boundFlushes?: number
  /** PHP rows: kahets's CPU, besides the php process's in cpuSeconds. */
  kahetsCpuPer1M?: number
  kahetsPeakRssMB?: number
  loadavg1: number
}

/** A steady run at half the median throughput: kahets's CPU and RSS under a load it keeps up with; latency for Kafka. */
interface HalfRateResult {
  targetRate: number
  messages: number
  seconds: number
  cpuPer1M: number | null
  peakRssMB: number | null
  loadavg1: number
  latency?: {
    /** Records read back from the topic (acknowledged rows: messages settled). */
    received: number
    /** Messages in the percentiles: those sent after the warm-up. */
    measured: number
    p50: number
    p90: number
    p99: number
    p999: number
    max: number
    mean: number
  }
}

type Kind = 'file' | 'sink' | 'kafka' | 'bounded' | 'pp' | 'kafkajs' | 'rdkafka' | 'php' | 'schema'

interface Cell {
  id: string
  kind: Kind
  label: string
  size: number
  clients: number | null
  acks?: Acks
  codec?: Codec
  phpMode?: 'persistent' | 'non-persistent' | 'ack-accepted' | 'ack-durable'
  /** ProducerPerformance rows: its --producer-props besides bootstrap, acks and codec. */
  ppProps?: readonly string[]
  /** Acknowledged-mode rows: the level their clients ask for. */
  ack?: AckLevel
  /** The fire-and-forget row this one is compared with (same invocation). */
  compareTo?: string
  /** Messages per throughput run, as sized by the calibration (per run in `runs` too). */
  messages: number | null
  runs: RunResult[]
  halfRateRuns: HalfRateResult[]
  errors: string[]
  profile?: { files: string[], summary: ProfileSummary | null }
}

interface Subject {
  readonly cell: Cell
  setup (): Promise<void>
  /** Messages for one run of about `seconds`. */
  size (seconds: number): Promise<number>
  /** `messages` within this subject's limits (memory, a few chunks per connection). */
  resize (messages: number): number
  run (messages: number, index: number): Promise<RunResult>
  /** Called once before the first half-rate run. */
  beforeHalfRate? (): Promise<void>
  halfRate? (rate: number, seconds: number, index: number): Promise<HalfRateResult>
  teardown (): Promise<void>
}

// ------------------------------------------------------------------ context shared by subjects

interface Context {
  opts: Options
  broker: BenchBroker | null
  topics: Topics | null
  /** The load-client processes, shared by every scenario. */
  pool: LoadPool
  profileDir: string | null
  kahets: Set<KahetsHandle>
  /** CPU seconds of a ProducerPerformance run that sends one record: the JVM's start-up. */
  jvmBaseline: number | null
  /** The one run that measures jvmBaseline: the ProducerPerformance subjects of a group set up together. */
  jvmBaselineRun: Promise<void> | null
}

const sizeLabel = (s: number): string => (s >= 1024 ? `${s / 1024} KiB` : `${s} B`)
const sizeId = (s: number): string => (s >= 1024 ? `${s / 1024}KiB` : `${s}B`)
const frameBytes = (bucket: string, size: number): number => FRAME_OVERHEAD + bucket.length + size
const loadavg1 = (): number => os.loadavg()[0]!

function throughput (messages: number, seconds: number, size: number): { msgsPerSec: number, mbPerSec: number } {
  return { msgsPerSec: messages / seconds, mbPerSec: (messages * size) / MiB / seconds }
}

/** Clamps a message count: at least a few chunks per connection, at most `maxBytes` on the wire. */
function clampMessages (n: number, clients: number, bytesPerMessage: number, maxBytes: number): number {
  const lo = Math.max(2000, clients * 50)
  const hi = Math.max(lo, Math.floor(maxBytes / bytesPerMessage))
  return Math.round(Math.min(hi, Math.max(lo, n)))
}

async function startTrackedKahets (ctx: Context, cell: Cell, buckets: object, maxMemoryBytes = MAXMEMORY_BYTES): Promise<KahetsHandle> {
  // After SIGINT the scenario loop may still be between two steps: start nothing new.
  if (interrupted) throw new Error('interrupted')
  const profile = ctx.profileDir === null ? undefined : ['--cpu-prof', `--cpu-prof-dir=${path.join(ctx.profileDir, cell.id.replaceAll('/', '_'))}`]
  const k = await startKahets({ buckets, nodeFlags: profile, env: { MAXMEMORY: `${maxMemoryBytes}` } })
  ctx.kahets.add(k)
  return k
}

/** Stops one kahets of a scenario that goes on with another (its --cpu-prof file stays for teardown). */
async function stopKahetsProcess (ctx: Context, k: KahetsHandle | null): Promise<void> {
  if (k === null) return
  await k.stop()
  ctx.kahets.delete(k)
}

async function stopTrackedKahets (ctx: Context, cell: Cell, k: KahetsHandle | null): Promise<void> {
  if (k === null) return
  await k.stop()
  ctx.kahets.delete(k)
  if (ctx.profileDir === null) return
  // node --cpu-prof writes the profile when the process exits, which a clean SIGTERM stop does.
  const dir = path.join(ctx.profileDir, cell.id.replaceAll('/', '_'))
  const files = existsSync(dir) ? (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f)) : []
  cell.profile = { files, summary: files.length > 0 ? summariseProfile(files, 25) : null }
}

const accountedOf = (f: Flow): number => f.delivered + f.dropped + f.backedUp
const lostOf = (f: Flow): number => f.dropped + f.backedUp

/**
 * One burst run against a running kahets: all connections open, VmHWM reset, CPU read, go;
 * done when /metrics account for `messages` more frames of `bucket` than before the run.
 * Acknowledged (`ack`): done when every client's flush() resolved, i.e. kahets settled every
 * frame at that level; /metrics must still account for all of them (checked, not timed).
 */
async function kahetsBurst (ctx: Context, k: KahetsHandle, bucket: string, size: number, clients: number, messages: number, ack: AckLevel | null = null, payloads: 'letters' | 'json' = 'letters'): Promise<RunResult> {
  const before = await k.flow(bucket)
  const load = await ctx.pool.prepare({ socket: k.socket, bucket, size, clients, mode: 'burst', messages, ack, payloads })
  resetPeakRss(k.pid)
  const cpu0 = cpuSeconds(k.pid)
  const loadavg = loadavg1()
  load.go()
  const timeoutMs = Math.max(60_000, ctx.opts.seconds * 20_000)
  const [sent, accounted] = await Promise.all([load.done, waitAccounted(k, bucket, accountedOf(before) + messages, timeoutMs)])
  const cpu = cpuSeconds(k.pid) - cpu0
  const seconds = ((ack === null ? accounted.atMs : sent.ack!.settledMs) - sent.firstWriteMs) / 1000
  const notDelivered = lostOf(accounted.flow) - lostOf(before)
  const refused = sent.ack?.refused ?? 0
  return {
    messages,
    seconds,
    ...throughput(messages, seconds, size),
    cpuSeconds: cpu,
    cpuPer1M: (cpu / messages) * 1e6,
    peakRssMB: peakRssBytes(k.pid) / MiB,
    ...(notDelivered > 0 ? { notDelivered } : {}),
    ...(refused > 0 ? { refused } : {}),
    clientCpuSeconds: sent.clientCpuSeconds,
    loadavg1: loadavg,
  }
}

/**
 * Messages for a run of `seconds`, from two short warm-up runs (which also warm the JIT up):
 * the first, sized from a guess, is cold and slow; the second, sized from the first, is close
 * to what the measured runs will see.
 */
async function calibrate (ctx: Context, guessRate: number, warm: (n: number) => Promise<RunResult>, clamp: (n: number) => number): Promise<number> {
  const seconds = ctx.opts.seconds
  const first = await warm(clamp(guessRate * Math.min(0.3, seconds / 2)))
  // A smoke test only needs a plausible size.
  if (ctx.opts.quick) return clamp(first.msgsPerSec * seconds)
  const second = await warm(clamp(first.msgsPerSec * Math.min(0.6, seconds / 2)))
  return clamp(second.msgsPerSec * seconds)
}

/** Percentiles of latencies in ms (`received`: messages the latencies were taken from). */
function latencyOf (values: ArrayLike<number>, received: number): NonNullable<HalfRateResult['latency']> {
  const sorted = Float64Array.from(values).sort()
  let sum = 0
  for (const x of sorted) sum += x
  return {
    received,
    measured: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted[sorted.length - 1] ?? NaN,
    mean: sum / Math.max(1, sorted.length),
  }
}

/** Issue 11: p99 write → ACK ≤ batchTimeout + queue.buffering.max.ms (Kafka rows) + 50 ms. */
function ackLatencyTargetMs (opts: Options, c: Cell): number {
  return opts.batchTimeout + (c.kind === 'kafka' ? KAFKA_SETTINGS['queue.buffering.max.ms'] : 0) + 50
}

/**
 * A half-rate run of an acknowledged row: AckClients paced at `rate`, each message timed from
 * send() to the ACK that settled it (bench/load-client.ts SettleClock), the first
 * `warmupMs` left out; done when every client's flush() resolved and /metrics account for all.
 */
async function ackHalfRate (ctx: Context, k: KahetsHandle, cell: Cell, bucket: string, rate: number, seconds: number, expectedBefore: number): Promise<HalfRateResult> {
  const warmupMs = Math.min(500, seconds * 500)
  const load = await ctx.pool.prepare({ socket: k.socket, bucket, size: cell.size, clients: cell.clients!, mode: 'paced', rate, durationMs: warmupMs + seconds * 1000, ack: cell.ack!, warmupMs })
  resetPeakRss(k.pid)
  const cpu0 = cpuSeconds(k.pid)
  const loadavg = loadavg1()
  load.go()
  const sent = await load.done
  await waitAccounted(k, bucket, expectedBefore + sent.sent, 60_000)
  const cpu = cpuSeconds(k.pid) - cpu0
  return {
    targetRate: rate,
    messages: sent.sent,
    seconds: (sent.lastWriteMs - sent.firstWriteMs) / 1000,
    cpuPer1M: (cpu / sent.sent) * 1e6,
    peakRssMB: peakRssBytes(k.pid) / MiB,
    loadavg1: loadavg,
    latency: latencyOf(sent.ack!.latencies, sent.ack!.settled),
  }
}

// ------------------------------------------------------------------ subjects

const bucket = (ctx: Context): { batch: number, batchTimeout: number } => ({ batch: BUCKET_BATCH, batchTimeout: ctx.opts.batchTimeout })

function fileBuckets (ctx: Context): object {
  return {
    streamsConfigs: { file: { type: 'file', settings: { path: '{dir}/out', ...FILE_SETTINGS } } },
    buckets: [{ id: FILE_BUCKET, streams: ['file'], ...bucket(ctx) }],
  }
}

function fileSubject (ctx: Context, cell: Cell): Subject {
  let k: KahetsHandle | null = null
  const clients = cell.clients!
  const fb = frameBytes(FILE_BUCKET, cell.size)
  // Disk use stays bounded by sizeRotate × maxFiles whatever a run sends.
  const clamp = (n: number): number => clampMessages(n, clients, fb + FRAME_CHARGE_BYTES, BURST_MAX_BYTES)
  const run = async (messages: number): Promise<RunResult> => {
    return await kahetsBurst(ctx, k!, FILE_BUCKET, cell.size, clients, messages, cell.ack ?? null)
  }
  return {
    cell,
    setup: async () => { k = await startTrackedKahets(ctx, cell, fileBuckets(ctx)) },
    size: () => calibrate(ctx, Math.min(300_000, (150 * MiB) / fb), run, clamp),
    resize: clamp,
    run,
    // A fresh kahets, as for Kafka: the half-rate peak RSS must not be the bursts' heap.
    beforeHalfRate: async () => {
      await stopKahetsProcess(ctx, k)
      k = await startTrackedKahets(ctx, cell, fileBuckets(ctx))
    },
    halfRate: async (rate, seconds) => {
      const before = await k!.flow(FILE_BUCKET)
      if (cell.ack !== undefined) return await ackHalfRate(ctx, k!, cell, FILE_BUCKET, rate, seconds, accountedOf(before))
      const load = await ctx.pool.prepare({ socket: k!.socket, bucket: FILE_BUCKET, size: cell.size, clients, mode: 'paced', rate, durationMs: seconds * 1000 })
      resetPeakRss(k!.pid)
      const cpu0 = cpuSeconds(k!.pid)
      const loadavg = loadavg1()
      load.go()
      const sent = await load.done
      await waitAccounted(k!, FILE_BUCKET, accountedOf(before) + sent.sent, 60_000)
      const cpu = cpuSeconds(k!.pid) - cpu0
      return { targetRate: rate, messages: sent.sent, seconds: (sent.lastWriteMs - sent.firstWriteMs) / 1000, cpuPer1M: (cpu / sent.sent) * 1e6, peakRssMB: peakRssBytes(k!.pid) / MiB, loadavg1: loadavg }
    },
    teardown: () => stopTrackedKahets(ctx, cell, k),
  }
}

function sinkSubject (ctx: Context, cell: Cell): Subject {
  let proc: ChildProcess | null = null
  let dir = ''
  let socket = ''
  const clients = cell.clients!
  const fb = frameBytes(FILE_BUCKET, cell.size)
  const clamp = (n: number): number => clampMessages(n, clients, fb, 4096 * MiB) // the sink keeps nothing: only run length limits it
  const next = <T extends SinkMessage['type']>(type: T): Promise<Extract<SinkMessage, { type: T }>> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: SinkMessage): void => {
        if (m.type !== type) return
        proc!.off('message', onMessage)
        resolve(m as Extract<SinkMessage, { type: T }>)
      }
      proc!.on('message', onMessage)
      proc!.once('exit', (code) => { reject(new Error(`sink exited (${code})`)) })
    })
  const run = async (messages: number): Promise<RunResult> => {
    const p = proc!
    const load = await ctx.pool.prepare({ socket, bucket: FILE_BUCKET, size: cell.size, clients, mode: 'burst', messages })
    const expecting = next('expecting')
    p.send({ type: 'expect', bytes: messages * fb })
    await expecting
    const reached = next('reached')
    resetPeakRss(p.pid!)
    const cpu0 = cpuSeconds(p.pid!)
    const loadavg = loadavg1()
    load.go()
    const [sent, end] = await Promise.all([load.done, reached])
    const cpu = cpuSeconds(p.pid!) - cpu0
    const seconds = (end.atMs - sent.firstWriteMs) / 1000
    return { messages, seconds, ...throughput(messages, seconds, cell.size), cpuSeconds: cpu, cpuPer1M: (cpu / messages) * 1e6, peakRssMB: peakRssBytes(p.pid!) / MiB, clientCpuSeconds: sent.clientCpuSeconds, loadavg1: loadavg }
  }
  return {
    cell,
    setup: async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'kahets-bench-sink-'))
      socket = path.join(dir, 'sink.sock')
      proc = spawnTracked(process.execPath, ['--import', 'tsx', path.join(REPO_DIR, 'bench', 'sink.ts')], {
        cwd: REPO_DIR,
        env: { ...process.env, BENCH_SINK_SOCKET: socket },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
      await next('listening')
    },
    size: () => calibrate(ctx, Math.min(2_000_000, (1000 * MiB) / fb), run, clamp),
    resize: clamp,
    run,
    teardown: async () => {
      if (proc === null) return
      proc.disconnect()
      await exited(proc).catch(() => {})
      await rm(dir, { recursive: true, force: true })
    },
  }
}

const topicName = (cell: Cell, suffix: string): string => `${cell.id.replaceAll('/', '-')}-${suffix}`

/**
 * One message to a new topic before the timed run, sent from this process and waited for:
 * kahets creates the bucket actor and kafkajs fetches the topic's metadata now, a one-off cost
 * (100–300 ms here) that would otherwise land in the first second of every run.
 */
async function prime (k: KahetsHandle, topic: string): Promise<void> {
  const client = await KahetsClient.connect(k.socket)
  client.send(topic, 'prime')
  await client.close()
  await waitAccounted(k, topic, 1, 30_000)
}

/**
 * A run on a topic of its own (so a run reads back only its own records): created with
 * LogAppendTime, primed through kahets, deleted afterwards.
 */
async function onOwnTopic<T> (ctx: Context, k: KahetsHandle, topic: string, run: () => Promise<T>): Promise<T> {
  await ctx.topics!.create([topic], { logAppendTime: true })
  try {
    await prime(k, topic)
    return await run()
  } finally {
    await ctx.topics!.delete([topic])
  }
}

/** The topic of a throughput run: w1, w2… for the sizing runs (index < 0), r1, r2… for the measured ones. */
function runTopics (cell: Cell): (index: number) => string {
  let warmups = 0
  return (index) => topicName(cell, index < 0 ? `w${++warmups}` : `r${index + 1}`)
}

function kafkaSubject (ctx: Context, cell: Cell): Subject {
  let k: KahetsHandle | null = null
  const clients = cell.clients!
  // Topic names are as long as the bucket on the wire; close enough to size the runs.
  const fb = frameBytes(topicName(cell, 'r1'), cell.size)
  // A burst that outruns Kafka is buffered in kahets: keep it inside MAXMEMORY, or kahets
  // would (correctly) drop what exceeds it and the run would measure that instead.
  const clamp = (n: number): number => clampMessages(n, clients, fb + FRAME_CHARGE_BYTES, BURST_MAX_BYTES)
  const runTopic = runTopics(cell)
  const kahetsConfig = (): object => ({
    streamsConfigs: {
      kafka: { type: 'kafka', settings: { 'bootstrap.servers': ctx.broker!.bootstrap, acks: cell.acks, 'compression.codec': cell.codec, ...KAFKA_SETTINGS } },
    },
    buckets: [],
    // Every run sends to a topic of its own (so a latency run reads back only its own
    // records); defaultBucket serves them all with one configuration.
    defaultBucket: { id: 'default', streams: ['kafka'], ...bucket(ctx) },
  })
  const run = async (messages: number, index: number): Promise<RunResult> => {
    const topic = runTopic(index)
    return await onOwnTopic(ctx, k!, topic, () => kahetsBurst(ctx, k!, topic, cell.size, clients, messages, cell.ack ?? null))
  }
  return {
    cell,
    setup: async () => { k = await startTrackedKahets(ctx, cell, kahetsConfig()) },
    // The half-rate runs get a kahets of their own: V8 keeps the heap that the bursts grew for a
    // while, and the peak RSS at half rate should be that of a process that only saw half rate.
    beforeHalfRate: async () => {
      await stopKahetsProcess(ctx, k)
      k = await startTrackedKahets(ctx, cell, kahetsConfig())
    },
    size: () => calibrate(ctx, Math.min(30_000, (30 * MiB) / fb), (n) => run(n, -1), clamp),
    resize: clamp,
    run,
    halfRate: async (rate, seconds, index) => {
      const topic = topicName(cell, `lat${index + 1}`)
      // The first messages of a run meet a new bucket actor and a topic kafkajs has no
      // metadata for yet (onOwnTopic primes it): a one-off cost of the first write to a topic,
      // not the steady latency asked for. The run starts with a warm-up at the same rate whose
      // messages are delivered but left out of the percentiles.
      if (cell.ack !== undefined) return await onOwnTopic(ctx, k!, topic, () => ackHalfRate(ctx, k!, cell, topic, rate, seconds, 1))
      return await onOwnTopic(ctx, k!, topic, async () => {
        const warmupMs = Math.min(500, seconds * 500)
        const load = await ctx.pool.prepare({ socket: k!.socket, bucket: topic, size: cell.size, clients, mode: 'paced', rate, durationMs: warmupMs + seconds * 1000, stamp: true })
        resetPeakRss(k!.pid)
        const cpu0 = cpuSeconds(k!.pid)
        const loadavg = loadavg1()
        load.go()
        const sent = await load.done
        await waitAccounted(k!, topic, sent.sent + 1, 60_000)
        const cpu = cpuSeconds(k!.pid) - cpu0
        const peak = peakRssBytes(k!.pid) / MiB
        // Read back after the run, so the consumer never competes with what it measures.
        const measureFrom = sent.firstWriteMs + warmupMs
        const lat = new Float64Array(sent.sent)
        let n = 0
        const received = await readTopic(ctx.broker!.bootstrap, topic, sent.sent + 1, 60_000, (appendMs, value) => {
          const stamp = readStamp(value)
          if (stamp >= measureFrom && n < lat.length) lat[n++] = appendMs - stamp
        })
        return {
          targetRate: rate,
          messages: sent.sent,
          seconds: (sent.lastWriteMs - sent.firstWriteMs) / 1000,
          cpuPer1M: (cpu / sent.sent) * 1e6,
          peakRssMB: peak,
          loadavg1: loadavg,
          latency: latencyOf(lat.subarray(0, n), received - 1), // less the priming message
        }
      })
    },
    teardown: () => stopTrackedKahets(ctx, cell, k),
  }
}

/**
 * Memory bound: kahets with a small MAXMEMORY and a file backup behind its Kafka stream takes a
 * burst many times MAXMEMORY. What Kafka cannot take at once spills to the backup (docs/guarantees.md#bounded-memory: a
 * client is never blocked because Kafka is slow) and is replayed into Kafka afterwards. The
 * run measures the peak RSS over the burst and the replay, how much spilled, and reads the
 * topic back: every message must be in Kafka.
 */
function boundedSubject (ctx: Context, cell: Cell): Subject {
  let k: KahetsHandle | null = null
  const clients = cell.clients!
  const fb = frameBytes(topicName(cell, 'r1'), cell.size)
  const messages = Math.round(BOUNDED_BURST_BYTES / fb)
  const runTopic = runTopics(cell)
  const kahetsConfig = (): object => ({
    streamsConfigs: {
      kafka: {
        type: 'kafka',
        settings: { 'bootstrap.servers': ctx.broker!.bootstrap, acks: cell.acks, 'compression.codec': cell.codec, ...KAFKA_SETTINGS, 'kahets.replay.max.bytes.per.sec': BOUNDED_REPLAY_RATE },
        backup: { type: 'file', settings: { path: '{dir}/backup', fileNameTemplate: '{bucket}{PS}{ts}-{rand}.frames', sizeRotate: '16MB' } },
      },
    },
    buckets: [],
    defaultBucket: { id: 'default', streams: ['kafka'], ...bucket(ctx) },
  })
  const run = async (n: number, index: number): Promise<RunResult> => {
    const topic = runTopic(index)
    return await onOwnTopic(ctx, k!, topic, async () => {
      const before = await k!.flow(topic)
      const r = await kahetsBurst(ctx, k!, topic, cell.size, clients, n)
      // Taken: delivered or spilled. Now the spilled part is replayed; the peak RSS covers both.
      const taken = await k!.flow(topic)
      const spilled = taken.backedUp - before.backedUp
      const deadline = Date.now() + 120_000
      let now = taken
      while (now.replayed - before.replayed < spilled) {
        if (Date.now() > deadline) throw new Error(`only ${now.replayed - before.replayed} of ${spilled} spilled messages replayed after 120 s`)
        await new Promise((resolve) => setTimeout(resolve, 100))
        now = await k!.flow(topic)
      }
      const peakRssMB = peakRssBytes(k!.pid) / MiB
      const inKafka = (await readTopic(ctx.broker!.bootstrap, topic, n + 1, 120_000, () => {})) - 1
      const dropped = now.dropped - before.dropped
      const missing = Math.max(0, n - inKafka)
      return { ...r, peakRssMB, spilled, inKafka, notDelivered: dropped + missing > 0 ? dropped + missing : undefined }
    })
  }
  return {
    cell,
    setup: async () => { k = await startTrackedKahets(ctx, cell, kahetsConfig(), BOUNDED_MAXMEMORY_BYTES) },
    size: async () => {
      await run(Math.round(messages / 10), -1)
      return messages
    },
    resize: () => messages,
    run,
    teardown: () => stopTrackedKahets(ctx, cell, k),
  }
}

function runCommand (command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | string, stdout: string, stderr: string }> {
  const p = spawnTracked(command, args, { cwd: REPO_DIR, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  p.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
  p.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  return exited(p).then((code) => ({ code, stdout, stderr }))
}

const HAVE_TIME = existsSync('/usr/bin/time')

/** ProducerPerformance under /usr/bin/time (CPU and max RSS of the JVM, which /proc cannot give after it exits). */
async function producerPerformance (ctx: Context, topic: string, messages: number, size: number, acks: Acks, codec: Codec, props: readonly string[]): Promise<{ line: string, time: number[] | null }> {
  const java = ['java', '-cp', path.join(REPO_DIR, 'var', 'kafka-dist', process.env.KAFKA_VERSION ?? '3.9.1', 'lib', '*'), 'org.apache.kafka.tools.ProducerPerformance',
    '--topic', topic, '--num-records', String(messages), '--record-size', String(size), '--throughput', '-1',
    '--producer-props', `bootstrap.servers=${ctx.broker!.bootstrap}`, `acks=${acks}`, `compression.type=${codec}`, ...props]
  const r = HAVE_TIME ? await runCommand('/usr/bin/time', ['-f', 'BENCHTIME %e %U %S %M', ...java]) : await runCommand(java[0]!, java.slice(1))
  const line = r.stdout.trim().split('\n').filter((l) => l.includes('records sent')).pop()
  if (r.code !== 0 || line === undefined) throw new Error(`ProducerPerformance failed (${r.code}):\n${r.stderr.slice(-2000)}${r.stdout.slice(-2000)}`)
  const t = /BENCHTIME (\S+) (\S+) (\S+) (\S+)/.exec(r.stderr)
  return { line, time: t === null ? null : t.slice(1).map(Number) }
}

function ppSubject (ctx: Context, cell: Cell): Subject {
  const acks = cell.acks!
  const codec = cell.codec!
  const props = cell.ppProps ?? PP_PROPS
  const clamp = (n: number): number => clampMessages(n, 1, cell.size, 2048 * MiB)
  return {
    cell,
    setup: async () => {
      if (!HAVE_TIME) return
      // What a run costs that is not sending: JVM start, class loading, producer set-up.
      // Measured once, by whichever subject comes first, and never beside another JVM.
      ctx.jvmBaselineRun ??= (async () => {
        const topic = topicName(cell, 'jvm')
        await ctx.topics!.create([topic])
        try {
          const r = await producerPerformance(ctx, topic, 1, cell.size, acks, codec, props)
          ctx.jvmBaseline = r.time === null ? null : r.time[1]! + r.time[2]!
        } finally {
          await ctx.topics!.delete([topic])
        }
      })()
      // A failed measurement is not shared: the next subject tries again.
      await ctx.jvmBaselineRun.catch((err: unknown) => {
        ctx.jvmBaselineRun = null
        throw err
      })
    },
    // A warm-up would cost a whole JVM start; the guess is corrected after the first run instead.
    size: async (seconds) => clamp(Math.min(300_000, (60 * MiB) / cell.size) * seconds),
    resize: clamp,
    run: async (messages, index) => {
      const topic = topicName(cell, `r${index + 1}`)
      await ctx.topics!.create([topic])
      try {
        const loadavg = loadavg1()
        const { line, time } = await producerPerformance(ctx, topic, messages, cell.size, acks, codec, props)
        // "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th."
        const rate = /([\d.]+) records\/sec/.exec(line)
        const p50 = /(\d+) ms 50th/.exec(line)
        const p99 = /(\d+) ms 99th/.exec(line)
        if (rate === null) throw new Error(`cannot parse ProducerPerformance output: ${line}`)
        const msgsPerSec = Number(rate[1])
        const cpu = time === null ? null : Math.max(0, time[1]! + time[2]! - (ctx.jvmBaseline ?? 0))
        return {
          messages,
          seconds: messages / msgsPerSec,
          msgsPerSec,
          mbPerSec: (msgsPerSec * cell.size) / MiB,
          cpuSeconds: cpu,
          cpuPer1M: cpu === null ? null : (cpu / messages) * 1e6,
          peakRssMB: time === null ? null : (time[3]! * 1024) / MiB,
          ...(p50 !== null && p99 !== null ? { p50: Number(p50[1]), p99: Number(p99[1]) } : {}),
          loadavg1: loadavg,
        }
      } finally {
        await ctx.topics!.delete([topic])
      }
    },
    teardown: async () => {},
  }
}

function kafkajsSubject (ctx: Context, cell: Cell): Subject {
  const clamp = (n: number): number => clampMessages(n, 1, cell.size, 1024 * MiB)
  return {
    cell,
    setup: async () => {},
    size: async (seconds) => clamp(Math.min(60_000, (30 * MiB) / cell.size) * seconds),
    resize: clamp,
    run: async (messages, index) => {
      const topic = topicName(cell, `r${index + 1}`)
      await ctx.topics!.create([topic])
      try {
        const cfg: KafkajsConfig = { bootstrap: ctx.broker!.bootstrap, topic, count: messages, size: cell.size, acks: cell.acks === 'all' ? -1 : 1, compression: cell.codec!, ...KAFKAJS_BATCH }
        const loadavg = loadavg1()
        const r = await runCommand(process.execPath, ['--import', 'tsx', path.join(REPO_DIR, 'bench', 'kafkajs-producer.ts')], { BENCH_KAFKAJS: JSON.stringify(cfg), KAFKAJS_NO_PARTITIONER_WARNING: '1' })
        if (r.code !== 0) throw new Error(`kafkajs producer failed (${r.code}):\n${r.stderr.slice(-2000)}`)
        const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as KafkajsResult
        const seconds = (res.endMs - res.startMs) / 1000
        return {
          messages: res.sent,
          seconds,
          ...throughput(res.sent, seconds, cell.size),
          cpuSeconds: res.cpuSeconds,
          cpuPer1M: (res.cpuSeconds / res.sent) * 1e6,
          peakRssMB: res.maxRssBytes / MiB,
          loadavg1: loadavg,
        }
      } finally {
        await ctx.topics!.delete([topic])
      }
    },
    teardown: async () => {},
  }
}

/**
 * librdkafka's producer as kcat runs it: `kcat -P -l FILE` sends the file's newline-separated
 * payloads (random letters, as every contender's) and exits once every message was delivered.
 * Timed from spawn to exit, so its start-up and metadata round trip count against it (a few
 * ms in a 3 s run); CPU and max RSS from /usr/bin/time. Every message must be in the topic
 * afterwards (its high watermark), or the run is an error.
 */
function rdkafkaSubject (ctx: Context, cell: Cell): Subject {
  const clamp = (n: number): number => clampMessages(n, 1, cell.size + 1, 512 * MiB)
  let dir = ''
  let file: { path: string, messages: number } | null = null
  /** The payload file for `messages`, written once and reused while the count stays. */
  const payloads = async (messages: number): Promise<string> => {
    if (file?.messages === messages) return file.path
    const at = path.join(dir, `payloads-${messages}.txt`)
    const source = new PayloadSource(cell.size)
    const perChunk = Math.max(1, Math.floor((4 * MiB) / (cell.size + 1)))
    const out = createWriteStream(at)
    for (let sent = 0; sent < messages; sent += perChunk) {
      const n = Math.min(perChunk, messages - sent)
      const chunk = Buffer.allocUnsafe(n * (cell.size + 1))
      for (let i = 0; i < n; i++) {
        source.next().copy(chunk, i * (cell.size + 1))
        chunk[i * (cell.size + 1) + cell.size] = 0x0a
      }
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => { resolve() }))
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())))
    if (file !== null) await rm(file.path, { force: true })
    file = { path: at, messages }
    return at
  }
  return {
    cell,
    setup: async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'kahets-bench-rdkafka-'))
      // kcat is on make test's package list; say clearly when it is missing.
      await runCommand('kcat', ['-V']).then((r) => { if (r.code !== 0) throw new Error(`kcat -V failed (${r.code}): ${r.stderr}`) })
    },
    size: async (seconds) => clamp(Math.min(600_000, (60 * MiB) / cell.size) * seconds),
    resize: clamp,
    run: async (messages, index) => {
      const topic = topicName(cell, `r${index + 1}`)
      const input = await payloads(messages)
      await ctx.topics!.create([topic])
      try {
        const kcat = ['kcat', '-P', '-q', '-b', ctx.broker!.bootstrap, '-t', topic, '-p', '0',
          '-X', `acks=${cell.acks === 'all' ? 'all' : '1'}`, '-X', `compression.codec=${cell.codec!}`, ...RDKAFKA_PROPS.flatMap((p) => ['-X', p]), '-l', input]
        const loadavg = loadavg1()
        const t0 = performance.now()
        const r = HAVE_TIME ? await runCommand('/usr/bin/time', ['-f', 'BENCHTIME %e %U %S %M', ...kcat]) : await runCommand(kcat[0]!, kcat.slice(1))
        const seconds = (performance.now() - t0) / 1000
        if (r.code !== 0) throw new Error(`kcat -P failed (${r.code}):\n${r.stderr.slice(-2000)}`)
        const inTopic = await ctx.topics!.count(topic)
        if (inTopic !== messages) throw new Error(`kcat -P: ${inTopic} of ${messages} messages in ${topic}`)
        const t = /BENCHTIME (\S+) (\S+) (\S+) (\S+)/.exec(r.stderr)
        const cpu = t === null ? null : Number(t[2]) + Number(t[3])
        return {
          messages,
          seconds,
          ...throughput(messages, seconds, cell.size),
          cpuSeconds: cpu,
          cpuPer1M: cpu === null ? null : (cpu / messages) * 1e6,
          peakRssMB: t === null ? null : (Number(t[4]) * 1024) / MiB,
          loadavg1: loadavg,
        }
      } finally {
        await ctx.topics!.delete([topic])
      }
    },
    teardown: async () => {
      if (dir !== '') await rm(dir, { recursive: true, force: true })
    },
  }
}

function phpSubject (ctx: Context, cell: Cell): Subject {
  let k: KahetsHandle | null = null
  const mode = cell.phpMode!
  const clamp = (n: number): number => clampMessages(n, 1, cell.size, 256 * MiB)
  const run = async (messages: number): Promise<RunResult> => {
    const before = await k!.flow(FILE_BUCKET)
    resetPeakRss(k!.pid)
    const cpu0 = cpuSeconds(k!.pid)
    const loadavg = loadavg1()
    // error_log() goes to stderr in the CLI: one line per refused send would only fill memory here;
    // the sender counts them (accepted < sent).
    const r = await runCommand('php', ['-d', 'error_log=/dev/null', path.join(REPO_DIR, 'bench', 'php-sender.php'), k!.socket, FILE_BUCKET, String(messages), String(cell.size), mode])
    const res = JSON.parse(r.stdout.trim().split('\n').pop() ?? 'null') as { sent: number, accepted: number, seconds: number, cpu_seconds: number, max_rss_kb: number, settled?: boolean, refused?: number, unsettled?: number, bound_flushes?: number } | null
    if (res === null) throw new Error(`php sender failed (${r.code}):\n${r.stderr.slice(-2000)}${r.stdout.slice(-2000)}`)
    const accounted = await waitAccounted(k!, FILE_BUCKET, accountedOf(before) + res.accepted, 60_000)
    const kcpu = cpuSeconds(k!.pid) - cpu0
    return {
      messages,
      // The figure asked for is the php process's send rate; delivery is checked, not timed.
      seconds: res.seconds,
      ...throughput(res.accepted, res.seconds, cell.size),
      cpuSeconds: res.cpu_seconds,
      cpuPer1M: (res.cpu_seconds / messages) * 1e6,
      peakRssMB: (res.max_rss_kb * 1024) / MiB,
      ...(lostOf(accounted.flow) > lostOf(before) ? { notDelivered: lostOf(accounted.flow) - lostOf(before) } : {}),
      // Acknowledged: a send refused at the client's bound even after a flush, or frames still
      // unsettled when the closing flush() gave up, are failed sends too.
      ...(res.accepted < res.sent || (res.unsettled ?? 0) > 0 ? { failedSends: res.sent - res.accepted + (res.unsettled ?? 0) } : {}),
      ...((res.refused ?? 0) > 0 ? { refused: res.refused } : {}),
      ...(res.bound_flushes !== undefined ? { boundFlushes: res.bound_flushes } : {}),
      kahetsCpuPer1M: (kcpu / messages) * 1e6,
      kahetsPeakRssMB: peakRssBytes(k!.pid) / MiB,
      loadavg1: loadavg,
    }
  }
  return {
    cell,
    setup: async () => { k = await startTrackedKahets(ctx, cell, fileBuckets(ctx)) },
    size: () => calibrate(ctx, mode === 'persistent' ? 50_000 : 10_000, run, clamp),
    resize: clamp,
    run,
    teardown: () => stopTrackedKahets(ctx, cell, k),
  }
}

// ------------------------------------------------------------------ payload schema (issue 14)
// socket → file with JSON events (bench/lib/payload.ts JsonEventSource), the bucket with and
// without bench/event.schema.json (5 fields, one enum, one pattern), in one group so their
// runs interleave: the ratio is what screening every payload costs. Target ≥ 60%.

const SCHEMA_SIZES = [100, 1024] as const
const SCHEMA_CLIENTS = 8
const SCHEMA_FILE = path.join(REPO_DIR, 'bench', 'event.schema.json')
const SCHEMA_TARGET = 0.6

function schemaGroups (): Group[] {
  return SCHEMA_SIZES.map((size) => ({
    name: `payload schema: socket → file, JSON events, ${sizeLabel(size)}`,
    cells: [
      cell('schema', `schema/none/${sizeId(size)}/${SCHEMA_CLIENTS}c`, 'kahets socket → file, JSON, no schema', size, SCHEMA_CLIENTS),
      cell('schema', `schema/on/${sizeId(size)}/${SCHEMA_CLIENTS}c`, 'kahets socket → file, JSON, schema', size, SCHEMA_CLIENTS),
    ],
  }))
}

function schemaSubject (ctx: Context, cell: Cell): Subject {
  let k: KahetsHandle | null = null
  const clients = cell.clients!
  const fb = frameBytes(FILE_BUCKET, cell.size)
  const clamp = (n: number): number => clampMessages(n, clients, fb + FRAME_CHARGE_BYTES, BURST_MAX_BYTES)
  const schema = cell.id.startsWith('schema/on/') ? { schema: SCHEMA_FILE } : {}
  const buckets = {
    streamsConfigs: { file: { type: 'file', settings: { path: '{dir}/out', ...FILE_SETTINGS } } },
    buckets: [{ id: FILE_BUCKET, streams: ['file'], ...bucket(ctx), ...schema }],
  }
  // A payload the schema rejected would count as dropped: the run is flagged, not measured.
  const run = (messages: number): Promise<RunResult> => kahetsBurst(ctx, k!, FILE_BUCKET, cell.size, clients, messages, null, 'json')
  return {
    cell,
    setup: async () => { k = await startTrackedKahets(ctx, cell, buckets) },
    size: () => calibrate(ctx, Math.min(300_000, (150 * MiB) / fb), run, clamp),
    resize: clamp,
    run,
    teardown: () => stopTrackedKahets(ctx, cell, k),
  }
}

function schemaTargets (sums: Map<string, Summary>, byId: Map<string, Cell>): Target[] {
  return SCHEMA_SIZES.map((size) => {
    const c = byId.get(`schema/on/${sizeId(size)}/${SCHEMA_CLIENTS}c`)
    const r = c === undefined ? undefined : ratios(c, byId, sums).find((x) => x.against === 'no schema')
    return {
      target: `socket → file with a payload schema, ${sizeLabel(size)} JSON, ${SCHEMA_CLIENTS} clients: ≥ ${percent(SCHEMA_TARGET)} of the same load without`,
      measured: r === undefined ? 'not run' : `${percent(r.ratio)} (${count(sums.get(c!.id)!.msgsPerSec!.median)} vs ${count(sums.get(r.ceilingId)!.msgsPerSec!.median)} msg/s)`,
      met: r === undefined ? null : r.ratio >= SCHEMA_TARGET,
    }
  })
}

// ------------------------------------------------------------------ the matrix

function cell (kind: Kind, id: string, label: string, size: number, clients: number | null, extra: Partial<Cell> = {}): Cell {
  return { kind, id, label, size, clients, messages: null, runs: [], halfRateRuns: [], errors: [], ...extra }
}

interface Group {
  name: string
  cells: Cell[]
  /** Run against the 3-node cluster (bench/lib/cluster.ts) instead of the single broker. */
  cluster?: boolean
}

/** Issue 11's acknowledged rows for a fire-and-forget row: the same scenario at each level. */
function ackCells (base: Cell): Cell[] {
  const { kind, id, label, size, clients, acks, codec } = base
  return ACK_LEVELS.map((level) => cell(kind, `${id}/ack-${level}`, `${label}, ack=${level}`, size, clients, { acks, codec, ack: level, compareTo: id }))
}

function matrix (): Group[] {
  const groups: Group[] = []
  for (const size of SIZES) {
    const files = CLIENTS.map((c) => cell('file', `file/${sizeId(size)}/${c}c`, 'kahets socket → file', size, c))
    groups.push({
      name: `socket → file, ${sizeLabel(size)}`,
      cells: [
        ...files,
        ...files.filter((c) => c.size === VARIANT_SIZE && c.clients === VARIANT_CLIENTS).flatMap(ackCells),
        ...CLIENTS.map((c) => cell('sink', `sink/${sizeId(size)}/${c}c`, 'ceiling: raw socket sink', size, c)),
      ],
    })
  }
  const kafkaGroup = (size: number, acks: Acks, codec: Codec, clients: readonly number[]): Group => {
    const tag = `acks${acks}/${codec}`
    const what = `acks=${acks} ${codec}`
    const kafkas = clients.map((c) => cell('kafka', `kafka/${tag}/${sizeId(size)}/${c}c`, `kahets socket → Kafka ${what}`, size, c, { acks, codec }))
    return {
      name: `socket → Kafka ${what}, ${sizeLabel(size)}`,
      cells: [
        ...kafkas,
        // Acknowledged rows only beside the fire-and-forget scenario issue 11 names.
        ...kafkas.filter((c) => size === VARIANT_SIZE && acks === '1' && codec === 'none' && c.clients === VARIANT_CLIENTS).flatMap(ackCells),
        cell('pp', `pp/${tag}/${sizeId(size)}`, `ceiling: ProducerPerformance ${what}`, size, null, { acks, codec }),
        cell('pp', `pp-tuned/${tag}/${sizeId(size)}`, `ceiling: ProducerPerformance tuned ${what}`, size, null, { acks, codec, ppProps: PP_TUNED_PROPS }),
        cell('rdkafka', `rdkafka/${tag}/${sizeId(size)}`, `ceiling: librdkafka (kcat) ${what}`, size, null, { acks, codec }),
        cell('kafkajs', `kafkajs/${tag}/${sizeId(size)}`, `ceiling: kafkajs alone ${what}`, size, null, { acks, codec }),
      ],
    }
  }
  for (const size of SIZES) groups.push(kafkaGroup(size, '1', 'none', CLIENTS))
  for (const v of VARIANTS) groups.push(kafkaGroup(VARIANT_SIZE, v.acks, v.codec, [VARIANT_CLIENTS]))
  // Issue 12: a 3-node cluster (replication factor 3, min.insync.replicas 2) with acks=all, where
  // every write waits for a follower; its ceiling is ProducerPerformance on the same cluster.
  groups.push({
    name: `socket → 3-node Kafka ${BENCH_CLUSTER_VERSION} cluster acks=all none, ${sizeLabel(VARIANT_SIZE)}`,
    cluster: true,
    cells: [
      cell('kafka', `cluster/kafka/acksall/none/${sizeId(VARIANT_SIZE)}/${VARIANT_CLIENTS}c`, 'kahets socket → 3-node cluster acks=all none', VARIANT_SIZE, VARIANT_CLIENTS, { acks: 'all', codec: 'none' }),
      cell('pp', `cluster/pp/acksall/none/${sizeId(VARIANT_SIZE)}`, 'ceiling: ProducerPerformance 3-node cluster acks=all none', VARIANT_SIZE, null, { acks: 'all', codec: 'none' }),
    ],
  })
  groups.push({
    name: 'memory bound: a burst of 8 × MAXMEMORY to Kafka, MAXMEMORY 32 MB, file backup',
    cells: [cell('bounded', 'bounded/acks1/none/100B/8c', 'kahets socket → Kafka, MAXMEMORY 32 MB', 100, 8, { acks: '1', codec: 'none' })],
  })
  groups.push({
    name: 'PHP client → kahets (file stream)',
    cells: [
      ...(['persistent', 'non-persistent'] as const).map((m) => cell('php', `php/${m}`, `PHP client, ${m}`, 100, 1, { phpMode: m })),
      // Acknowledged: one connection per process whatever `persistent` says (clients/php AckConnection).
      ...ACK_LEVELS.map((level) => cell('php', `php/ack-${level}`, `PHP client, ack=${level}`, 100, 1, { phpMode: `ack-${level}`, ack: level, compareTo: 'php/persistent' })),
    ],
  })
  groups.push(...schemaGroups())
  return groups
}

function subjectFor (ctx: Context, c: Cell): Subject {
  switch (c.kind) {
    case 'file': return fileSubject(ctx, c)
    case 'sink': return sinkSubject(ctx, c)
    case 'kafka': return kafkaSubject(ctx, c)
    case 'bounded': return boundedSubject(ctx, c)
    case 'pp': return ppSubject(ctx, c)
    case 'kafkajs': return kafkajsSubject(ctx, c)
    case 'rdkafka': return rdkafkaSubject(ctx, c)
    case 'php': return phpSubject(ctx, c)
    case 'schema': return schemaSubject(ctx, c)
    default: {
      const never: never = c.kind
      throw new Error(`unknown kind ${String(never)}`)
    }
  }
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n').slice(0, 6).join('\n')

function log (msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

/**
 * Runs one group: every subject set up, sized, then run i of every subject before run i+1 of
 * any (interleaved, so a change in the machine's load during the group hits all of them alike),
 * then the half-rate runs the same way. A subject that fails twice is left out of the rest.
 */
async function runGroup (ctx: Context, group: Group): Promise<void> {
  log(`${group.name}: ${group.cells.map((c) => c.id).join(', ')}`)
  const subjects = group.cells.map((c) => subjectFor(ctx, c))
  const failed = (s: Subject): boolean => s.cell.errors.length >= 2
  const attempt = async (s: Subject, what: string, fn: () => Promise<void>): Promise<void> => {
    if (failed(s) || interrupted) return
    try {
      await fn()
    } catch (err) {
      s.cell.errors.push(`${what}: ${errorText(err)}`)
      log(`${s.cell.id} ${what} failed: ${errorText(err)}`)
      if (what === 'setup' || what === 'sizing') s.cell.errors.push('(skipped)')
    }
  }
  try {
    // kahets processes start in parallel: each is idle until its own runs.
    await Promise.all(subjects.map((s) => attempt(s, 'setup', () => s.setup())))
    for (const s of subjects) {
      await attempt(s, 'sizing', async () => { s.cell.messages = await s.size(ctx.opts.seconds) })
    }
    for (let i = 0; i < ctx.opts.runs; i++) {
      for (const s of subjects) {
        await attempt(s, `run ${i + 1}`, async () => {
          const r = await s.run(s.cell.messages!, i)
          s.cell.runs.push(r)
          log(`${s.cell.id} run ${i + 1}: ${count(r.msgsPerSec)} msg/s, ${r.messages} msgs in ${r.seconds.toFixed(2)} s, cpu ${fixed(r.cpuPer1M, 2)} s/1M, rss ${fixed(r.peakRssMB, 0)} MB${r.notDelivered ? `, NOT DELIVERED ${r.notDelivered}` : ''}${r.failedSends ? `, ${r.failedSends} SENDS REFUSED` : ''} (load ${r.loadavg1.toFixed(2)})`)
          // ProducerPerformance and kafkajs are sized from a guess, the others from short
          // warm-ups: correct the size once if the first run was far off the target length.
          if (i === 0 && ctx.opts.runs > 1 && (r.seconds < ctx.opts.seconds * 0.7 || r.seconds > ctx.opts.seconds * 1.5)) {
            s.cell.messages = s.resize(r.msgsPerSec * ctx.opts.seconds)
            log(`${s.cell.id}: ${r.seconds.toFixed(2)} s instead of ~${ctx.opts.seconds} s; next runs send ${s.cell.messages}`)
          }
        })
      }
    }
    for (const s of subjects) {
      if (s.beforeHalfRate !== undefined && s.cell.runs.length > 0) await attempt(s, 'half-rate set-up', () => s.beforeHalfRate!())
    }
    for (let i = 0; i < ctx.opts.runs; i++) {
      for (const s of subjects) {
        if (s.halfRate === undefined) continue
        const rate = spread(validRuns(s.cell).map((r) => r.msgsPerSec))
        if (rate === null) continue
        await attempt(s, `half-rate run ${i + 1}`, async () => {
          const r = await s.halfRate!(Math.max(100, Math.round(rate.median / 2)), ctx.opts.seconds, i)
          s.cell.halfRateRuns.push(r)
          const l = r.latency
          log(`${s.cell.id} half-rate run ${i + 1}: ${count(r.targetRate)} msg/s, rss ${fixed(r.peakRssMB, 0)} MB, cpu ${fixed(r.cpuPer1M, 2)} s/1M${l ? `, p50 ${l.p50.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms, max ${l.max.toFixed(1)} ms (${l.received}/${r.messages} read back)` : ''}`)
        })
      }
    }
  } finally {
    for (const s of subjects) await attempt(s, 'teardown', () => s.teardown())
  }
}

// ------------------------------------------------------------------ report

interface Summary {
  msgsPerSec: Spread | null
  mbPerSec: Spread | null
  cpuPer1M: Spread | null
  peakRssMB: Spread | null
  p50: Spread | null
  p99: Spread | null
  halfRate: Spread | null
  halfRatePeakRssMB: Spread | null
  halfRateCpuPer1M: Spread | null
  kahetsCpuPer1M: Spread | null
  kahetsPeakRssMB: Spread | null
}

/**
 * Runs in which kahets delivered everything (none dropped or backed up). A run that lost
 * messages ended early and its rate means nothing; it stays in the JSON, flagged.
 */
function validRuns (c: Cell): RunResult[] {
  return c.runs.filter((r) => (r.notDelivered ?? 0) === 0)
}

function summarise (c: Cell): Summary {
  const s = (f: (r: RunResult) => number | null | undefined): Spread | null => spread(validRuns(c).map(f).filter((x): x is number => typeof x === 'number'))
  const l = (f: (r: HalfRateResult) => number | null | undefined): Spread | null => spread(c.halfRateRuns.map(f).filter((x): x is number => typeof x === 'number'))
  const latency = c.halfRateRuns.some((r) => r.latency !== undefined)
  return {
    msgsPerSec: s((r) => r.msgsPerSec),
    mbPerSec: s((r) => r.mbPerSec),
    cpuPer1M: s((r) => r.cpuPer1M),
    peakRssMB: s((r) => r.peakRssMB),
    p50: latency ? l((r) => r.latency?.p50) : s((r) => r.p50),
    p99: latency ? l((r) => r.latency?.p99) : s((r) => r.p99),
    halfRate: l((r) => r.targetRate),
    halfRatePeakRssMB: l((r) => r.peakRssMB),
    halfRateCpuPer1M: l((r) => r.cpuPer1M),
    kahetsCpuPer1M: s((r) => r.kahetsCpuPer1M),
    kahetsPeakRssMB: s((r) => r.kahetsPeakRssMB),
  }
}

interface Ratio {
  against: string
  ceilingId: string
  ratio: number
}

/** Issue 12: the fastest producer measured for a Kafka scenario's size, acks and codec. */
function bestCeiling (c: Cell, byId: Map<string, Cell>, sums: Map<string, Summary>): { id: string, label: string, msgsPerSec: number } | null {
  let best: { id: string, label: string, msgsPerSec: number } | null = null
  for (const kind of PRODUCER_CEILINGS) {
    const id = `${kind}/acks${c.acks}/${c.codec}/${sizeId(c.size)}`
    const m = byId.has(id) ? sums.get(id)?.msgsPerSec?.median : undefined
    if (m !== undefined && m > 0 && (best === null || m > best.msgsPerSec)) best = { id, label: CEILING_NAMES[kind], msgsPerSec: m }
  }
  return best
}
const CEILING_NAMES: Record<typeof PRODUCER_CEILINGS[number], string> = { pp: 'PP', 'pp-tuned': 'PP tuned', rdkafka: 'librdkafka' }

function ratios (c: Cell, byId: Map<string, Cell>, sums: Map<string, Summary>): Ratio[] {
  const mine = sums.get(c.id)?.msgsPerSec?.median
  if (mine === undefined) return []
  const out: Ratio[] = []
  const add = (against: string, id: string): void => {
    const theirs = byId.has(id) ? sums.get(id)?.msgsPerSec?.median : undefined
    if (theirs !== undefined && theirs > 0) out.push({ against, ceilingId: id, ratio: mine / theirs })
  }
  if (c.compareTo !== undefined) {
    add('fire-and-forget', c.compareTo)
    return out
  }
  if (c.kind === 'file') add('sink', `sink/${sizeId(c.size)}/${c.clients}c`)
  // A cluster row is compared with the ceiling measured on the same cluster.
  const on = c.id.startsWith('cluster/') ? 'cluster/' : ''
  if (c.kind === 'kafka' && on === '') {
    const best = bestCeiling(c, byId, sums)
    if (best !== null) out.push({ against: `best (${best.label})`, ceilingId: best.id, ratio: mine / best.msgsPerSec })
  }
  if (c.kind === 'kafka' || c.kind === 'kafkajs' || c.id.startsWith('pp-tuned/') || c.kind === 'rdkafka') add('PP', `${on}pp/acks${c.acks}/${c.codec}/${sizeId(c.size)}`)
  if (c.kind === 'kafka') add('kafkajs', `${on}kafkajs/acks${c.acks}/${c.codec}/${sizeId(c.size)}`)
  if (c.kind === 'schema' && c.id.startsWith('schema/on/')) add('no schema', c.id.replace('schema/on/', 'schema/none/'))
  return out
}

/** Memory-bound rows: how much of the burst spilled to the backup, and how much is in Kafka. */
function boundedNote (c: Cell): string {
  const spilled = spread(c.runs.map((r) => (r.spilled ?? 0) / r.messages))
  const complete = c.runs.filter((r) => r.inKafka === r.messages).length
  return spilled === null ? '—' : `${percent(spilled.median)} spilled; ${complete}/${c.runs.length} runs all in Kafka`
}

function render (groups: Group[], sums: Map<string, Summary>, byId: Map<string, Cell>): string {
  const header = ['scenario', 'msg size', 'clients', 'msgs/s median [min–max]', 'MB/s', 'CPU s/1M msgs', 'peak RSS MB', 'p50/p99 ms', 'ratio to ceiling']
  const rows: string[][] = []
  for (const g of groups) {
    if (g.cells.every((c) => c.runs.length === 0 && c.errors.length === 0)) continue
    if (rows.length > 0) rows.push([])
    for (const c of g.cells) {
      const s = sums.get(c.id)!
      const m = s.msgsPerSec
      // Runs that lost messages are left out of the figures; say how many are left.
      const valid = validRuns(c).length
      const partial = valid < c.runs.length ? ` (${valid}/${c.runs.length} runs)` : ''
      const rate = m === null ? (c.errors.length > 0 || c.runs.length > 0 ? 'FAILED' : '—') : `${count(m.median)} [${count(m.min)}–${count(m.max)}]${partial}`
      const lat = s.p50 === null || s.p99 === null ? '—' : `${fixed(s.p50.median)}/${fixed(s.p99.median)}${c.kind === 'pp' ? '*' : ''}`
      const broken = c.runs.some((r) => (r.notDelivered ?? 0) > 0 || (r.failedSends ?? 0) > 0 || (r.refused ?? 0) > 0) ? ' !' : ''
      rows.push([
        c.label + broken,
        sizeLabel(c.size),
        c.clients === null ? '—' : String(c.clients),
        rate,
        fixed(s.mbPerSec?.median),
        fixed(s.cpuPer1M?.median, 2),
        // kahets rows: the burst runs' peak, then the half-rate runs' peak.
        s.halfRatePeakRssMB !== null ? `${fixed(s.peakRssMB?.median, 0)} / ${fixed(s.halfRatePeakRssMB.median, 0)}` : fixed(s.peakRssMB?.median, 0),
        lat,
        c.kind === 'bounded' ? boundedNote(c) : ratios(c, byId, sums).filter((r) => c.kind !== 'kafka' || r.against !== 'PP').map((r) => `${percent(r.ratio)} of ${r.against}`).join(', ') || '—',
      ])
    }
  }
  return table(header, rows, new Set([3, 4, 5, 6, 7]))
}

interface Target {
  target: string
  measured: string
  met: boolean | null
}

function targets (opts: Options, cells: Cell[], sums: Map<string, Summary>, byId: Map<string, Cell>): Target[] {
  const out: Target[] = []
  const file = sums.get('file/100B/8c')?.msgsPerSec
  out.push({ target: 'socket → file, 100 B, 8 clients: ≥ 1,000,000 msg/s', measured: file ? `${count(file.median)} msg/s (median; ${count(file.min)}–${count(file.max)})` : 'not run', met: file ? file.median >= 1e6 : null })
  const k = byId.get('kafka/acks1/none/100B/8c')
  // Issue 12: judged against the best producer measured (ProducerPerformance, tuned or not, or librdkafka).
  const r = k ? ratios(k, byId, sums).find((x) => x.against.startsWith('best')) : undefined
  out.push({ target: 'socket → Kafka, 100 B, acks=1, none, 8 clients: ≥ 50% of the best producer\'s msg/s (ProducerPerformance, tuned, librdkafka)', measured: r ? `${percent(r.ratio)} of ${r.against.replace(/^best \((.*)\)$/, '$1')} (${count(sums.get(k!.id)!.msgsPerSec!.median)} vs ${count(sums.get(r.ceilingId)!.msgsPerSec!.median)} msg/s)` : 'not run', met: r ? r.ratio >= 0.5 : null })
  // RSS is judged twice: under a steady load kahets keeps up with (the half-rate runs), and
  // after absorbing a burst, where it mostly measures what buffering a backlog costs.
  const kahetsCells = cells.filter((c) => c.kind === 'file' || c.kind === 'kafka' || c.kind === 'php')
  let worstBounded: { mb: number, id: string } | null = null
  for (const c of cells.filter((x) => x.kind === 'bounded')) {
    for (const run of c.runs) {
      if (run.peakRssMB !== null && (worstBounded === null || run.peakRssMB > worstBounded.mb)) worstBounded = { mb: run.peakRssMB, id: c.id }
    }
  }
  let worstBurst: { mb: number, id: string } | null = null
  let worstSteady: { mb: number, id: string } | null = null
  for (const c of kahetsCells) {
    for (const run of c.runs) {
      const mb = c.kind === 'php' ? run.kahetsPeakRssMB : run.peakRssMB
      if (typeof mb === 'number' && (worstBurst === null || mb > worstBurst.mb)) worstBurst = { mb, id: c.id }
    }
    for (const run of c.halfRateRuns) {
      if (run.peakRssMB !== null && (worstSteady === null || run.peakRssMB > worstSteady.mb)) worstSteady = { mb: run.peakRssMB, id: c.id }
    }
  }
  out.push({
    target: 'kahets peak RSS ≤ 150 MB at half rate (every half-rate run)',
    measured: worstSteady ? `worst ${worstSteady.mb.toFixed(0)} MB (${worstSteady.id})` : 'not run',
    met: worstSteady ? worstSteady.mb <= 150 : null,
  })
  out.push({
    target: `kahets peak RSS ≤ 150 MB under a burst of 8 × MAXMEMORY (${Math.round(BOUNDED_MAXMEMORY_BYTES / MiB)} MiB, overflow to the backup, replayed)`,
    measured: worstBounded ? `worst ${worstBounded.mb.toFixed(0)} MB (${worstBounded.id})` : 'not run',
    met: worstBounded ? worstBounded.mb <= 150 : null,
  })
  out.push({
    target: `kahets peak RSS ≤ 150 MB in the throughput bursts (MAXMEMORY ${Math.round(MAXMEMORY_BYTES / MiB)} MiB, up to ${Math.round(BURST_MAX_BYTES / MiB)} MiB sent at once)`,
    measured: worstBurst ? `worst ${worstBurst.mb.toFixed(0)} MB (${worstBurst.id})` : 'not run',
    met: worstBurst ? worstBurst.mb <= 150 : null,
  })
  const lat = sums.get('kafka/acks1/none/100B/8c')?.p99
  let worstLat: { p99: number, id: string } | null = null
  for (const c of cells.filter((x) => x.kind === 'kafka' && x.ack === undefined)) {
    const p = sums.get(c.id)?.p99?.median
    if (p !== undefined && (worstLat === null || p > worstLat.p99)) worstLat = { p99: p, id: c.id }
  }
  out.push({
    target: `p99 write → Kafka ≤ queue.buffering.max.ms + 50 = ${LATENCY_TARGET_MS} ms at half the max rate`,
    measured: lat ? `${lat.median.toFixed(1)} ms for 100 B/8 clients/acks=1 (median of runs; ${lat.min.toFixed(1)}–${lat.max.toFixed(1)}); worst scenario ${worstLat!.p99.toFixed(1)} ms (${worstLat!.id})` : 'not run',
    met: lat ? lat.median <= LATENCY_TARGET_MS && worstLat!.p99 <= LATENCY_TARGET_MS : null,
  })
  // Issue 11, per acknowledged row (the PHP rows have no target: their sends/s are shown).
  for (const c of cells.filter((x) => x.ack !== undefined && x.kind !== 'php')) {
    const what = `${c.kind === 'kafka' ? `socket → Kafka acks=${c.acks} ${c.codec}` : 'socket → file'}, ${sizeLabel(c.size)}, ${c.clients} clients, ack=${c.ack}`
    const r = ratios(c, byId, sums)[0]
    out.push({
      target: `${what}: ≥ ${percent(ACK_RATIO_TARGET)} of fire-and-forget msg/s (same run)`,
      measured: r ? `${percent(r.ratio)} (${count(sums.get(c.id)!.msgsPerSec!.median)} vs ${count(sums.get(r.ceilingId)!.msgsPerSec!.median)} msg/s)` : 'not run',
      met: r ? r.ratio >= ACK_RATIO_TARGET : null,
    })
    const limit = ackLatencyTargetMs(opts, c)
    const p99 = sums.get(c.id)?.p99
    out.push({
      target: `${what}: p99 write → ACK ≤ batchTimeout ${opts.batchTimeout}${c.kind === 'kafka' ? ` + queue.buffering.max.ms ${KAFKA_SETTINGS['queue.buffering.max.ms']}` : ''} + 50 = ${limit} ms at half rate`,
      measured: p99 ? `${p99.median.toFixed(1)} ms (median of runs; ${p99.min.toFixed(1)}–${p99.max.toFixed(1)}), p50 ${fixed(sums.get(c.id)!.p50?.median)} ms` : 'not run',
      met: p99 ? p99.median <= limit : null,
    })
  }
  out.push(...schemaTargets(sums, byId))
  return out
}

// ------------------------------------------------------------------ main

/**
 * The code being measured: commit, and the uncommitted changes to what kahets runs. Taken at
 * the start and at the end, because in a shared work tree kahets's sources (and node_modules)
 * may change during a run, and each scenario's kahets runs whatever is there when it starts.
 */
function codeVersion (): { commit: string, dirty: string[] } {
  const git = (args: string[]): string => {
    try {
      return execFileSync('git', args, { cwd: REPO_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {
      return ''
    }
  }
  const dirty = git(['status', '--porcelain', '--', 'src', 'clients', 'package.json', 'package-lock.json'])
  return { commit: git(['rev-parse', '--short', 'HEAD']) || 'unknown', dirty: dirty === '' ? [] : dirty.split('\n') }
}

const live: { broker: BenchBroker | null, cluster: BenchBroker | null, clusterTopics: Topics | null, ctx: Context | null } = { broker: null, cluster: null, clusterTopics: null, ctx: null }
let cleaning: Promise<void> | null = null
let interrupted = false

function cleanup (): Promise<void> {
  cleaning ??= (async () => {
    const ctx = live.ctx
    if (ctx !== null) {
      await ctx.topics?.close()
      for (const k of ctx.kahets) await k.stop().catch(() => {})
      await ctx.pool.close()
    }
    await live.clusterTopics?.close()
    await endTracked()
    await live.broker?.stop()
    live.broker = null
    await live.cluster?.stop()
    live.cluster = null
  })()
  return cleaning
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupted = true
    log(`${sig}: stopping kahets, clients and the broker`)
    cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
  })
}
// Last resort (an exit that skipped cleanup): nothing this bench started may outlive it.
process.on('exit', () => {
  signalTracked('SIGKILL')
  live.broker?.killSync()
  live.cluster?.killSync()
  for (const k of live.ctx?.kahets ?? []) rmSync(k.dir, { recursive: true, force: true })
})

async function main (): Promise<number> {
  const opts = options()
  const started = new Date()
  const code0 = codeVersion()
  // kahets is measured as bin/kahets runs it in production: from dist/, which must be fresh
  // (else bin/kahets would run the sources through tsx, with its own memory and start-up costs).
  execFileSync(path.join(REPO_DIR, 'scripts', 'build.sh'), { stdio: 'inherit' })
  const load0 = os.loadavg()
  const groups = matrix()
  // An acknowledged row is judged against its fire-and-forget row of the same run: selecting
  // the one selects the other.
  const chosen = new Set(groups.flatMap((g) => g.cells).filter((c) => opts.only === null || opts.only.test(c.id)).flatMap((c) => [c.id, ...(c.compareTo === undefined ? [] : [c.compareTo])]))
  for (const g of groups) g.cells = g.cells.filter((c) => chosen.has(c.id))
  const selected = groups.filter((g) => g.cells.length > 0)
  if (selected.length === 0) throw new Error(`--only ${opts.only}: no scenario matches`)
  const cells = selected.flatMap((g) => g.cells)
  const stamp = started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')
  const resultsDir = opts.resultsDir
  await mkdir(resultsDir, { recursive: true })
  const ctx: Context = {
    opts,
    broker: null,
    topics: null,
    pool: await LoadPool.start(opts.workers),
    profileDir: opts.cpuProf ? path.join(resultsDir, 'profiles', stamp) : null,
    kahets: new Set(),
    jvmBaseline: null,
    jvmBaselineRun: null,
  }
  live.ctx = ctx
  log(`${cells.length} scenarios, ${opts.runs} run(s) each of ~${opts.seconds} s; commit ${code0.commit}${code0.dirty.length > 0 ? ' + changes' : ''}; load average ${load0.map((x) => x.toFixed(2)).join(' ')}; ${os.cpus().length} CPUs`)
  if (selected.some((g) => g.cluster !== true && g.cells.some((c) => c.kind === 'kafka' || c.kind === 'bounded' || c.kind === 'pp' || c.kind === 'kafkajs' || c.kind === 'rdkafka'))) {
    log('starting the bench broker (scripts/kafka.sh)…')
    ctx.broker = live.broker = await startBroker()
    ctx.topics = new Topics(ctx.broker.bootstrap)
    log(`broker on ${ctx.broker.bootstrap}`)
  }
  if (selected.some((g) => g.cluster === true)) {
    log('starting the bench cluster (scripts/kafka-cluster.sh)…')
    live.cluster = await startCluster()
    live.clusterTopics = new Topics(live.cluster.bootstrap, 3)
    log(`cluster on ${live.cluster.bootstrap}`)
  }
  for (const g of selected) {
    // The cluster's groups see it as their broker; everything else in ctx is shared.
    const on = g.cluster === true ? Object.assign(Object.create(ctx) as Context, { broker: live.cluster, topics: live.clusterTopics }) : ctx
    await runGroup(on, g)
  }
  await cleanup()

  const byId = new Map(cells.map((c) => [c.id, c]))
  const sums = new Map(cells.map((c) => [c.id, summarise(c)]))
  const load1 = os.loadavg()
  const finished = new Date()
  const code1 = codeVersion()
  const codeChanged = JSON.stringify(code0) !== JSON.stringify(code1)
  const tableText = render(selected, sums, byId)
  const goals = targets(opts, cells, sums, byId)
  const minutes = (finished.getTime() - started.getTime()) / 60_000
  const out: string[] = [
    '',
    `kahets bench — ${started.toISOString()} — ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, ${minutes.toFixed(1)} min`,
    `code: commit ${code0.commit}${code0.dirty.length > 0 ? ` + uncommitted changes (${code0.dirty.length} files)` : ''}${codeChanged ? ` — WARNING: the code changed during the run (now ${code1.commit}${code1.dirty.length > 0 ? ' + changes' : ''}): later scenarios ran other code` : ''}`,
    `load average (1/5/15 min) at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${load1.map((x) => x.toFixed(2)).join(' ')}${opts.quick ? ' — QUICK RUN (1 short run each): a smoke test, not figures' : ''}`,
    `${opts.runs} run(s) per scenario of ~${opts.seconds} s; msgs/s is the median, [min–max] over the runs; the other columns are medians too.`,
    '',
    tableText,
    '',
    'MB/s: payload MiB/s (as ProducerPerformance counts). CPU and peak RSS: of the measured process only (kahets; the sink;',
    `  the JVM${ctx.jvmBaseline !== null ? `, less its ${ctx.jvmBaseline.toFixed(2)} s start-up` : ''}; the kafkajs process; php), from /proc or getrusage; clients are separate processes.`,
    `kahets: bucket batch ${BUCKET_BATCH} / batchTimeout ${opts.batchTimeout} ms; Kafka batch.num.messages ${KAFKA_SETTINGS['batch.num.messages']}, queue.buffering.max.ms ${KAFKA_SETTINGS['queue.buffering.max.ms']}; file fsync on.`,
    'p50/p99 (kahets → Kafka): a separate run paced at half the median msgs/s; latency = broker LogAppendTime − send time stamped',
    '  in the payload by the client: client write → Kafka append (≈ acknowledgement, less the response trip). Includes the time a',
    `  message waits for its bucket batch to fill (${BUCKET_BATCH} messages, or batchTimeout) at that rate.`,
    '* ProducerPerformance\'s own send → ack latency at full speed (queueing included), not at half rate.',
    `Ceilings: PP ${PP_PROPS.join(' ')}; PP tuned ${PP_TUNED_PROPS.join(' ')}; librdkafka: kcat -P -l FILE (newline-separated`,
    `  payloads) ${RDKAFKA_PROPS.join(' ')}; best = the fastest of those three (issue 12);`,
    `  kafkajs ${KAFKAJS_BATCH.batchMessages} msgs / ${KAFKAJS_BATCH.batchBytes} B per sendBatch, ${KAFKAJS_BATCH.inFlight} in flight. ! = some messages dropped or backed up, or PHP sends refused (see JSON).`,
  ]
  if (cells.some((c) => c.ack !== undefined && c.kind !== 'php' && c.runs.length > 0)) {
    out.push('ack=LEVEL rows (issue 11): AckClient connections; a burst ends when flush() resolved on every one (all settled), ratio against',
      '  the fire-and-forget row of this run. p50/p99: send() → the ACK that settled the message, at half that row\'s msgs/s (polled',
      `  settlement counts, ~1 ms resolution). Targets: ≥ ${percent(ACK_RATIO_TARGET)}, p99 ≤ batchTimeout (+ queue.buffering.max.ms for Kafka) + 50 ms.`)
  }
  const php = cells.filter((c) => c.kind === 'php' && c.runs.length > 0)
  if (php.length > 0) {
    out.push(`PHP rows: sends/s of one php process (a new \\Kahets\\Client per message; ack rows: until the closing flush() returned); CPU/RSS are php's. kahets meanwhile: ${php.map((c) => `${c.phpMode} ${fixed(sums.get(c.id)!.kahetsCpuPer1M?.median, 2)} CPU s/1M, ${fixed(sums.get(c.id)!.kahetsPeakRssMB?.median, 0)} MB`).join('; ')}.`)
  }
  if (cells.some((c) => c.halfRateRuns.length > 0)) {
    out.push(`peak RSS of kahets rows: burst runs / half-rate runs (a steady load at half the median msgs/s, on a fresh kahets; the JSON has its CPU per 1M too). MAXMEMORY ${Math.round(MAXMEMORY_BYTES / MiB)} MiB, bursts ≤ ${Math.round(BURST_MAX_BYTES / MiB)} MiB.`)
  }
  out.push('', 'targets:')
  for (const t of goals) out.push(`  ${t.met === null ? 'n/a   ' : t.met ? 'MET   ' : 'MISSED'}  ${t.target}: ${t.measured}`)
  const errors = cells.filter((c) => c.errors.length > 0)
  if (errors.length > 0) {
    out.push('', 'errors:')
    for (const c of errors) out.push(`  ${c.id}: ${c.errors.join(' | ').replaceAll('\n', ' ')}`)
  }
  for (const c of cells) {
    if (c.profile?.summary) out.push('', `cpu profile of kahets, ${c.id} (${c.profile.files.map((f) => path.relative(REPO_DIR, f)).join(', ')}):`, formatSummary(c.profile.summary))
  }
  process.stdout.write(out.join('\n') + '\n')

  const partial = opts.only !== null || opts.quick
  const json = {
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    quick: opts.quick,
    partial,
    code: { atStart: code0, atEnd: code1, changedDuringRun: codeChanged },
    host: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryBytes: os.totalmem(), node: process.version, kernel: os.release(), loadavgStart: load0, loadavgEnd: load1 },
    options: { runs: opts.runs, seconds: opts.seconds, workers: opts.workers, only: opts.only?.source ?? null, cpuProf: opts.cpuProf },
    config: { bucket: bucket(ctx), kafka: KAFKA_SETTINGS, file: FILE_SETTINGS, maxMemoryBytes: MAXMEMORY_BYTES, latencyTargetMs: LATENCY_TARGET_MS, producerPerformance: PP_PROPS, producerPerformanceTuned: PP_TUNED_PROPS, rdkafka: RDKAFKA_PROPS, kafkajs: KAFKAJS_BATCH, jvmStartupCpuSeconds: ctx.jvmBaseline },
    units: { msgsPerSec: 'messages/s', mbPerSec: 'payload MiB/s', cpuPer1M: 'CPU seconds per 1,000,000 messages', peakRssMB: 'MiB (VmHWM)', latency: 'ms, broker LogAppendTime − client send time; acknowledged rows: client send() → the ACK that settled it' },
    scenarios: cells.map((c) => ({
      id: c.id,
      kind: c.kind,
      label: c.label,
      size: c.size,
      clients: c.clients,
      acks: c.acks ?? null,
      codec: c.codec ?? null,
      phpMode: c.phpMode ?? null,
      ack: c.ack ?? null,
      compareTo: c.compareTo ?? null,
      ...(c.ack !== undefined && c.kind !== 'php' ? { ackLatencyTargetMs: ackLatencyTargetMs(opts, c), ackRatioTarget: ACK_RATIO_TARGET } : {}),
      summary: sums.get(c.id),
      ratios: ratios(c, byId, sums),
      runs: c.runs,
      halfRateRuns: c.halfRateRuns,
      errors: c.errors,
      profile: c.profile ?? null,
    })),
    targets: goals,
    table: tableText,
  }
  const body = JSON.stringify(json, null, 2) + '\n'
  // A smoke test or a partial run never replaces latest.json, the last full run's figures.
  const file = path.join(resultsDir, `${stamp}${opts.quick ? '-quick' : partial ? '-partial' : ''}.json`)
  await writeFile(file, body)
  if (!partial) await writeFile(path.join(resultsDir, 'latest.json'), body)
  // The plot docs/benchmarks.md shows: msgs/s and p99 per scenario, from the same figures.
  const svg = plotSvg(json.scenarios, plotTitle(json))
  const svgFile = file.replace(/\.json$/, '.svg')
  await writeFile(svgFile, svg)
  if (!partial) await writeFile(path.join(resultsDir, 'latest.svg'), svg)
  log(`wrote ${path.relative(REPO_DIR, file)}, ${path.relative(REPO_DIR, svgFile)}${partial ? '' : ` and latest.json, latest.svg in ${path.relative(REPO_DIR, resultsDir)}`}`)
  return errors.length > 0 ? 1 : 0
}

main().then(async (code) => {
  await cleanup()
  process.exit(code)
}, async (err: unknown) => {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  await cleanup()
  process.exit(1)
})
