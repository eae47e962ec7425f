// The METRICS endpoint (docs/operations-health.md): /metrics in Prometheus text
// format, and the probes /livez, /readyz and /healthz (health.ts). Values are read from the
// live actors and counters when scraped; on the hot path only the batch histograms
// (batch-metrics.ts) touch prom-client, once per stream write.
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import path from 'node:path'
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { BucketsConfig } from './config/buckets.ts'
import type { MetricsAddress } from './config/env.ts'
import type { Daemon } from './daemon.ts'
import { health, healthBody, readiness, type ProbeState } from './health.ts'
import type { Logger } from './log.ts'
import { PACKAGE_ROOT } from './package-root.ts'
import { claimSocketPath } from './socket-file.ts'
import { DROP_REASONS, type DropReason } from './stats.ts'
import { allFileStreamStats } from './streams/file-stream-stats.ts'
import { allKafkaStreamStats } from './streams/kafka-stream-stats.ts'
import type { FileUsage } from './streams/stream.ts'

export interface FlowSnapshot {
  bucket: string
  stream: string
  received: number
  delivered: number
  sampledOut: number
  backedUp: number
  replayed: number
  replayRefused: Record<string, number>
  dropped: Record<string, number>
  inFlight: number
}

/**
 * Per (bucket, stream): the accounting identity's terms. `inFlight` is counted from what the
 * bucket and stream actors actually hold, not derived from the other counters, so the
 * identity received = delivered + sampledOut + backedUp + dropped + inFlight is a real check.
 */
export function flowSnapshot (daemon: Daemon): FlowSnapshot[] {
  const out: FlowSnapshot[] = []
  for (const [bucket, bs] of daemon.stats.buckets) {
    const bucketActor = daemon.manager.buckets.get(bucket)
    for (const [stream, fs] of bs.flows) {
      const pending = bucketActor === undefined ? 0 : bucketActor.pendingFor(stream)
      const actor = daemon.manager.streams.get(stream)
      const queued = actor === undefined ? 0 : actor.queuedFor(bucket) + (actor.backup?.queuedFor(bucket) ?? 0)
      out.push({
        bucket,
        stream,
        received: fs.received,
        delivered: fs.delivered,
        sampledOut: fs.sampledOut,
        backedUp: fs.backedUp,
        replayed: fs.replayed,
        replayRefused: Object.fromEntries(fs.replayRefused),
        dropped: Object.fromEntries(fs.dropped),
        inFlight: pending + queued,
      })
    }
  }
  return out
}

export function buildRegistry (daemon: Daemon): Registry {
  const registry = new Registry()
  const counter = (name: string, help: string, labelNames: string[], fill: (c: Counter) => void): void => {
    registry.registerMetric(new Counter({ name, help, labelNames, registers: [], collect () { this.reset(); fill(this) } }))
  }
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge) => void): void => {
    registry.registerMetric(new Gauge({ name, help, labelNames, registers: [], collect () { this.reset(); fill(this) } }))
  }
  const flows = (): FlowSnapshot[] => flowSnapshot(daemon)

  counter('kahets_received_total', 'Frames received per bucket.', ['bucket'], (c) => {
    for (const [bucket, b] of daemon.stats.buckets) c.inc({ bucket }, b.received)
  })
  counter('kahets_received_bytes_total', 'Wire bytes received per bucket.', ['bucket'], (c) => {
    for (const [bucket, b] of daemon.stats.buckets) c.inc({ bucket }, b.receivedBytes)
  })
  counter('kahets_flow_received_total', 'Frames a bucket accepted for a stream (while bound to it): the left side of the accounting identity.', ['bucket', 'stream'], (c) => {
    for (const f of flows()) if (f.stream !== '') c.inc({ bucket: f.bucket, stream: f.stream }, f.received)
  })
  counter('kahets_delivered_total', 'Frames the stream delivered (file written and fsynced, Kafka acknowledged).', ['bucket', 'stream'], (c) => {
    for (const f of flows()) if (f.stream !== '') c.inc({ bucket: f.bucket, stream: f.stream }, f.delivered)
  })
  counter('kahets_sampled_out_total', 'Frames the stream did not take because of its slice.', ['bucket', 'stream'], (c) => {
    for (const f of flows()) if (f.stream !== '') c.inc({ bucket: f.bucket, stream: f.stream }, f.sampledOut)
  })
  counter('kahets_backed_up_total', "Frames written to the stream's backup instead.", ['bucket', 'stream'], (c) => {
    for (const f of flows()) if (f.stream !== '') c.inc({ bucket: f.bucket, stream: f.stream }, f.backedUp)
  })
  counter('kahets_replayed_total', 'Frames replayed from backup files into the stream.', ['bucket', 'stream'], (c) => {
    for (const f of flows()) if (f.stream !== '') c.inc({ bucket: f.bucket, stream: f.stream }, f.replayed)
  })
  // Every reason a configured bucket's flow can lose frames for is there from zero (see
  // Stats.declare). Buckets only the defaultBucket serves (any name a client sends) get
  // the reasons that happened: seven zeros each would multiply the series of a busy host.
  const configured = (bucket: string): boolean => daemon.manager.config.buckets.has(bucket)
  counter('kahets_replay_refused_total', 'Frames read back from the backup that the stream refused for good, by reason (counted as backed up before).', ['bucket', 'stream', 'reason'], (c) => {
    for (const f of flows()) {
      if (f.stream === '') continue
      if (configured(f.bucket)) for (const reason of REPLAY_REFUSAL_REASONS) c.inc({ bucket: f.bucket, stream: f.stream, reason }, 0)
      for (const [reason, n] of Object.entries(f.replayRefused)) c.inc({ bucket: f.bucket, stream: f.stream, reason }, n)
    }
  })
  counter('kahets_dropped_total', 'Frames dropped, by reason.', ['bucket', 'stream', 'reason'], (c) => {
    for (const f of flows()) {
      // stream "": frames of a bucket nobody serves (unknown_bucket) or of a new name past
      // MAX_BUCKETS (too_many_buckets, on bucket "(other)"), counted on no stream.
      if (f.stream !== '' && configured(f.bucket)) for (const reason of FLOW_DROP_REASONS) c.inc({ bucket: f.bucket, stream: f.stream, reason }, 0)
      for (const [reason, n] of Object.entries(f.dropped)) c.inc({ bucket: f.bucket, stream: f.stream, reason }, n)
    }
  })
  counter('kahets_schema_rejected_total', "Payloads the bucket's schema rejected (not_json, invalid), whether sent to its deadLetter stream or dropped.", ['bucket', 'reason'], (c) => {
    for (const b of daemon.manager.config.buckets.values()) if (b.schema !== null) for (const reason of SCHEMA_REJECTIONS) c.inc({ bucket: b.id, reason }, 0)
    for (const [bucket, b] of daemon.stats.buckets) for (const [reason, n] of b.schemaRejected) c.inc({ bucket, reason }, n)
  })
  gauge('kahets_in_flight', 'Frames accepted and not yet delivered, backed up or dropped.', ['bucket', 'stream'], (g) => {
    for (const f of flows()) if (f.stream !== '') g.set({ bucket: f.bucket, stream: f.stream }, f.inFlight)
  })
  counter('kahets_invalid_frames_total', 'Frames skipped as invalid, by reason.', ['reason'], (c) => {
    for (const reason of INVALID_REASONS) c.inc({ reason }, 0)
    for (const [reason, n] of daemon.stats.invalidFrames) c.inc({ reason }, n)
    c.inc({ reason: 'oversized' }, daemon.stats.oversizedFrames)
    c.inc({ reason: 'truncated' }, daemon.stats.truncatedFrames)
  })
  gauge('kahets_bucket_pending_frames', 'Frames waiting in a bucket for its next flush.', ['bucket'], (g) => {
    for (const [bucket, b] of daemon.manager.buckets) g.set({ bucket }, b.pending.frames)
  })
  gauge('kahets_stream_queued_frames', 'Frames a stream actor holds (queued, in flight, held for retry).', ['stream'], (g) => {
    for (const s of allStreams(daemon)) g.set({ stream: s.id }, s.queued.frames)
  })
  gauge('kahets_stream_queued_bytes', 'Bytes a stream actor holds.', ['stream'], (g) => {
    for (const s of allStreams(daemon)) g.set({ stream: s.id }, s.queued.bytes)
  })
  gauge('kahets_stream_mode', 'Stream mode: 1 for the mode the stream is in.', ['stream', 'mode'], (g) => {
    for (const s of allStreams(daemon)) for (const mode of ['normal', 'draining', 'backup', 'retrying', 'replaying']) g.set({ stream: s.id, mode }, s.mode === mode ? 1 : 0)
  })
  // The backups' files, scanned when scraped (a directory walk and one 32-byte read).
  asyncGauges(registry, daemon)
  gauge('kahets_replay_files_left', 'Backup files still to replay.', ['stream'], (g) => {
    for (const s of allStreams(daemon)) g.set({ stream: s.id }, s.replayProgress.filesLeft)
  })
  gauge('kahets_replay_bytes_left', 'Bytes of backup files still to replay (lowered as each chunk is replayed).', ['stream'], (g) => {
    for (const s of allStreams(daemon)) g.set({ stream: s.id }, s.replayProgress.bytesLeft)
  })
  counter('kahets_replay_bytes_total', 'Bytes of backup files read back and written into the stream by replays.', ['stream'], (c) => {
    for (const s of allStreams(daemon)) c.inc({ stream: s.id }, s.replayProgress.bytesReplayed)
  })
  counter('kahets_replay_torn_frames_total', 'Torn frames (a crash mid-write) found at the end of backup files and skipped.', ['stream'], (c) => {
    for (const s of allStreams(daemon)) c.inc({ stream: s.id }, s.replayProgress.tornFrames)
  })
  counter('kahets_spool_corrupt_records_total', 'Damaged runs found in backup files on replay, each at least one record lost (the file is kept in quarantine/).', ['stream'], (c) => {
    for (const s of allStreams(daemon)) c.inc({ stream: s.id }, s.replayProgress.corruptRecords)
  })
  counter('kahets_spool_corrupt_bytes_total', 'Bytes of those damaged runs, skipped on replay.', ['stream'], (c) => {
    for (const s of allStreams(daemon)) c.inc({ stream: s.id }, s.replayProgress.corruptBytes)
  })
  gauge('kahets_replay_stuck_files', 'Replayed backup files that could not be deleted or moved to quarantine/: left in place, not replayed again until a restart.', ['stream'], (g) => {
    for (const s of allStreams(daemon)) g.set({ stream: s.id }, s.replayProgress.stuckFiles)
  })
  gauge('kahets_streams_open', 'Streams (Kafka clients, file writers; backups included) built and not yet closed.', [], (g) => { g.set(daemon.openStreams) })
  counter('kahets_files_reopened_total', 'Files a file stream recreated because their path no longer led to them, by reason (unlinked, replaced).', ['stream', 'reason'], (c) => {
    for (const [stream, f] of allFileStreamStats()) {
      for (const reason of ['unlinked', 'replaced']) c.inc({ stream, reason }, 0)
      for (const [reason, n] of f.reopened) c.inc({ stream, reason }, n)
    }
  })
  counter('kahets_file_writes_undone_total', 'File writes that failed part-way and were cut back, so that the retried batch is written once.', ['stream'], (c) => {
    for (const [stream, f] of allFileStreamStats()) c.inc({ stream }, f.writesUndone)
  })
  counter('kahets_file_bytes_undone_total', 'Bytes cut back after file writes that failed part-way.', ['stream'], (c) => {
    for (const [stream, f] of allFileStreamStats()) c.inc({ stream }, f.bytesUndone)
  })
  counter('kahets_file_descriptor_pressure_total', 'Times the system refused a file descriptor (EMFILE/ENFILE) and a file stream closed idle files.', ['stream'], (c) => {
    for (const [stream, f] of allFileStreamStats()) c.inc({ stream }, f.pressureEvents)
  })
  gauge('kahets_open_files', 'Files a file stream holds open.', ['stream'], (g) => {
    for (const [stream, f] of allFileStreamStats()) g.set({ stream }, f.openFiles?.size ?? 0)
  })
  gauge('kahets_open_files_limit', 'The bound on open files in force: maxOpenFiles, lower for a while after EMFILE/ENFILE.', ['stream'], (g) => {
    for (const [stream, f] of allFileStreamStats()) g.set({ stream }, f.openFiles?.limit ?? 0)
  })
  counter('kahets_kafka_retries_total', 'Produce requests (one per topic) a Kafka stream sent again, to the new leader, after a leader change, a lost connection or too few in-sync replicas, instead of using the backup.', ['stream'], (c) => {
    for (const [stream, k] of allKafkaStreamStats()) c.inc({ stream }, k.retries)
  })
  counter('kahets_kafka_resent_unknown_total', 'Messages those retries sent again although Kafka never said whether it had written them: each may be in Kafka twice.', ['stream'], (c) => {
    for (const [stream, k] of allKafkaStreamStats()) c.inc({ stream }, k.resentUnknown)
  })
  gauge('kahets_connected_clients', 'Open client connections.', [], (g) => { g.set(daemon.stats.connections) })
  counter('kahets_connections_total', 'Client connections accepted.', [], (c) => { c.inc(daemon.stats.connectionsTotal) })
  counter('kahets_shutdown_unread_bytes_total', 'Bytes clients had sent that shutdown left unread at SHUTDOWN_TIMEOUT (logged too).', [], (c) => { c.inc(daemon.listener.shutdownUnreadBytes) })
  gauge('kahets_buffered_bytes', 'Frame bytes held in memory, charged against MAXMEMORY.', [], (g) => { g.set(daemon.budget.used) })
  gauge('kahets_buffered_bytes_limit', 'MAXMEMORY.', [], (g) => { g.set(daemon.budget.limit) })
  gauge('kahets_reads_paused', '1 while clients are not read: MAXMEMORY reached and the backup behind.', [], (g) => { g.set(daemon.budget.underPressure ? 1 : 0) })
  counter('kahets_read_pauses_total', 'Times reading was paused for memory pressure.', [], (c) => { c.inc(daemon.budget.pressureEpisodes) })
  gauge('kahets_process_resident_memory_bytes', 'Resident set size.', [], (g) => { const m = memoryUsage(); if (m !== null) g.set(m.rss) })
  gauge('kahets_process_heap_used_bytes', 'V8 heap in use.', [], (g) => { const m = memoryUsage(); if (m !== null) g.set(m.heapUsed) })
  // Beside buffered_bytes these tell a backlog from garbage not yet collected: message bytes
  // live in Buffers (external to the V8 heap), their bookkeeping in the heap.
  gauge('kahets_process_heap_total_bytes', 'V8 heap reserved (in use and not yet collected).', [], (g) => { const m = memoryUsage(); if (m !== null) g.set(m.heapTotal) })
  gauge('kahets_process_external_bytes', 'Memory outside the V8 heap held by JavaScript objects, chiefly the Buffers that hold messages.', [], (g) => { const m = memoryUsage(); if (m !== null) g.set(m.external) })
  gauge('kahets_build_info', 'Always 1: the kahets version, the Node.js version and the Kafka client libraries the configuration uses ("none" without a Kafka stream).', ['version', 'node', 'client'], (g) => {
    g.set({ version: kahetsVersion(), node: process.versions.node, client: kafkaClients(daemon.manager.config) }, 1)
  })
  const batches = daemon.stats.batches
  for (const h of [batches.settleSeconds, batches.messages, batches.bytes]) registry.registerMetric(h)
  // prom-client's process_* and nodejs_* metrics (CPU, memory, file descriptors, event loop
  // lag, garbage collection), the ones every Node.js dashboard reads.
  collectDefaultMetrics({ register: registry })
  return registry
}

function asyncGauges (registry: Registry, daemon: Daemon): void {
  let scan: Promise<Array<{ stream: string, usage: FileUsage }>> | null = null
  // The three gauges share one scan per scrape.
  const usages = (): Promise<Array<{ stream: string, usage: FileUsage }>> => {
    scan ??= (async () => {
      const out = []
      for (const s of allStreams(daemon)) {
        if (s.role !== 'backup') continue
        const usage = await s.usage().catch(() => null)
        if (usage !== null) out.push({ stream: s.id, usage })
      }
      return out
    })().finally(() => { setImmediate(() => { scan = null }) })
    return scan
  }
  const define = (name: string, help: string, value: (u: FileUsage, now: number) => number): void => {
    registry.registerMetric(new Gauge({
      name,
      help,
      labelNames: ['stream'],
      registers: [],
      async collect () {
        this.reset()
        const now = Date.now()
        for (const { stream, usage } of await usages()) this.set({ stream }, value(usage, now))
      },
    }))
  }
  define('kahets_spool_files', 'Files a backup stream holds (its spool, replayed once the primary answers).', (u) => u.files)
  define('kahets_spool_bytes', 'Bytes of the files a backup stream holds.', (u) => u.bytes)
  define('kahets_spool_oldest_age_seconds', 'Age of the oldest message in a backup stream\'s files (0 when there is none).', (u, now) => u.oldestAt === null ? 0 : Math.max(0, (now - u.oldestAt) / 1000))
}

// The label values kahets can count by, so that each series is there from zero.
// unknown_bucket and too_many_buckets are counted before any stream (stream "").
const NO_STREAM_REASONS: readonly DropReason[] = ['unknown_bucket', 'too_many_buckets']
const FLOW_DROP_REASONS: readonly DropReason[] = DROP_REASONS.filter((r) => !NO_STREAM_REASONS.includes(r))
const REPLAY_REFUSAL_REASONS: readonly DropReason[] = FLOW_DROP_REASONS.filter((r) => r !== 'schema_rejected')
const INVALID_REASONS = ['bad_bucket', 'fields_overflow', 'control_frame', 'hello', 'oversized', 'truncated'] as const
const SCHEMA_REJECTIONS = ['not_json', 'invalid'] as const

let version: string | null = null
function kahetsVersion (): string {
  version ??= (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version
  return version
}

const CLIENT_PACKAGES = { platformatic: '@platformatic/kafka', kafkajs: 'kafkajs' } as const

/** "@platformatic/kafka@1.35.0" for each Kafka client library the configuration names, or "none". */
function kafkaClients (config: BucketsConfig): string {
  const used = new Set<keyof typeof CLIENT_PACKAGES>()
  for (const top of config.streams.values()) {
    for (let s: typeof top | null = top; s !== null; s = s.backup) if (s.type === 'kafka') used.add(s.settings.client)
  }
  if (used.size === 0) return 'none'
  return [...used].sort().map((c) => `${CLIENT_PACKAGES[c]}@${packageVersion(CLIENT_PACKAGES[c])}`).join(',')
}

function packageVersion (name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/**
 * process.memoryUsage() opens /proc/self/stat, which fails with EMFILE when descriptors run
 * out (issue 10): /metrics must still answer then, without these values.
 */
function memoryUsage (): NodeJS.MemoryUsage | null {
  try {
    return process.memoryUsage()
  } catch {
    return null
  }
}

function allStreams (daemon: Daemon): Array<import('./actors/stream-actor.ts').StreamActor> {
  const out = []
  for (const s of daemon.manager.streams.values()) {
    out.push(s)
    if (s.backup !== null) out.push(s.backup)
  }
  return out
}

/** What the probes read (health.ts). */
export function probeState (daemon: Daemon): ProbeState {
  const flows = function * () {
    for (const [bucket, bs] of daemon.stats.buckets) for (const [stream, flow] of bs.flows) yield { bucket, stream, flow }
  }
  return { accepting: daemon.listener.accepting, readsPaused: daemon.budget.underPressure, streams: allStreams(daemon), flows: flows() }
}

const ROUTES = 'kahets: /metrics, /livez, /readyz or /healthz\n'

export async function startMetricsServer (daemon: Daemon, address: MetricsAddress, log: Logger): Promise<{ close (): Promise<void> }> {
  const registry = buildRegistry(daemon)
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/'
    if (url === '/metrics' || url.startsWith('/metrics?')) {
      registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': registry.contentType })
        res.end(text)
      }, (err: unknown) => {
        log.error({ err }, 'metrics collection failed')
        res.writeHead(500).end()
      })
      return
    }
    const route = url.replace(/\?.*$/, '')
    if (route === '/livez') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n')
      return
    }
    if (route === '/readyz') {
      const r = readiness(probeState(daemon))
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(`${r.reason ?? 'ok'}\n`)
      return
    }
    if (route === '/healthz') {
      const h = health(probeState(daemon))
      res.writeHead(h.status === 'failing' ? 503 : 200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(healthBody(h)) + '\n')
      return
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end(ROUTES)
  })
  if ('path' in address && await claimSocketPath(address.path) === 'stale') {
    log.warn({ metrics: `unix:${address.path}` }, 'METRICS: removing stale socket file left by a previous run')
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    if ('path' in address) server.listen(address.path, resolve)
    else server.listen(address.port, address.host, resolve)
  })
  log.info({ metrics: 'path' in address ? `unix:${address.path}` : `${address.host}:${address.port}` }, 'metrics endpoint listening')
  return {
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}
