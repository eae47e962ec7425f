// Wires the actors together: listener → sessions → bucket manager → buckets → streams.
// Stopping runs the same chain in order so that every accepted frame is flushed.
import { bucketList, loadBucketsFile, type BucketsConfig } from './config/buckets.ts'
import { describePayloadSchemas } from './config/payload-schema.ts'
import type { EnvConfig } from './config/env.ts'
import { RateLimitedLog, type Logger } from './log.ts'
import { ConfigError, ErrorCodes, KahetsError } from './errors.ts'
import { BucketManager } from './actors/bucket-manager.ts'
import { Listener } from './actors/listener.ts'
import { MemoryBudget } from './memory-budget.ts'
import { flowSnapshot, startMetricsServer } from './metrics.ts'
import { Stats } from './stats.ts'
import { createStream as defaultCreateStream, loadStreamModules, type StreamFactory } from './streams/create-stream.ts'

export interface Daemon {
  readonly stats: Stats
  readonly budget: MemoryBudget
  readonly manager: BucketManager
  readonly listener: Listener
  /** Streams built and not yet closed (backups included): a rejected reload leaves this unchanged. */
  readonly openStreams: number
  /** Clean shutdown (docs/guarantees.md#clean-shutdown). Safe to call more than once. */
  stop (): Promise<void>
  /** SIGHUP: re-reads the buckets file; an invalid file is logged and the running one kept. */
  reload (): Promise<boolean>
}

export interface DaemonOptions {
  env: EnvConfig
  buckets: BucketsConfig
  log: Logger
  createStream?: StreamFactory
  /** The listening socket systemd passed (LISTEN_FDS), used instead of creating SOCKET. */
  listenFd?: number
}

export async function startDaemon (opts: DaemonOptions): Promise<Daemon> {
  const { env, buckets, log } = opts
  for (const w of buckets.warnings) log.warn(w)
  for (const line of describePayloadSchemas(bucketList(buckets))) log.info(line)
  await loadStreamModules(buckets)
  const stats = new Stats()
  const budget = new MemoryBudget(env.maxMemory)
  // Every stream built is counted until it is closed, so a stream a failed reload built and
  // never handed over shows up in /metrics (kahets_streams_open) instead of leaking silently.
  const factory = opts.createStream ?? defaultCreateStream
  let openStreams = 0
  const createStream: StreamFactory = (config, streamLog, role) => {
    const stream = factory(config, streamLog, role)
    openStreams++
    let closed = false
    const close = stream.close.bind(stream)
    stream.close = async () => {
      if (!closed) {
        closed = true
        openStreams--
      }
      await close()
    }
    return stream
  }
  const manager = new BucketManager({
    config: buckets,
    stats,
    budget,
    log,
    createStream,
    shutdownTimeoutMs: env.shutdownTimeoutMs,
    maxBuckets: env.maxBuckets,
  })
  const listener = new Listener({
    socketPath: env.socket,
    socketMode: env.socketMode,
    maxFrameBytes: env.maxFrameBytes,
    shutdownTimeoutMs: env.shutdownTimeoutMs,
    shutdownDrainMs: env.shutdownDrainMs,
    ...(opts.listenFd === undefined ? {} : { listenFd: opts.listenFd }),
    router: manager,
    stats,
    log,
    budget,
  })
  declareSeries(stats, manager)
  const pressureLog = new RateLimitedLog()
  budget.onPressure((underPressure) => {
    listener.pauseReading(underPressure)
    if (underPressure) pressureLog.warn(log, 'pressure', { maxMemory: budget.limit, buffered: budget.used, episodes: budget.pressureEpisodes }, 'MAXMEMORY reached and the backup is behind: reading paused until it catches up')
  })
  try {
    await listener.start()
  } catch (err) {
    await manager.stop()
    throw err
  }

  let stopping: Promise<void> | null = null
  let metrics: { close (): Promise<void> } | null = null
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log.info('stopping: no new connections; reading what clients already sent')
      await listener.stop()
      log.info('flushing buckets and streams')
      await manager.stop()
      await metrics?.close()
      // The final accounting, so an operator (or a test) can check it after the process is gone.
      log.info({ peakBufferedBytes: budget.peak, flows: flowSnapshot(daemon), invalidFrames: Object.fromEntries(stats.invalidFrames), truncatedFrames: stats.truncatedFrames, oversizedFrames: stats.oversizedFrames }, 'stopped')
    })()
    return stopping
  }
  let reloading: Promise<boolean> = Promise.resolve(true)
  const reload = (): Promise<boolean> => {
    // One reload at a time; a second SIGHUP waits for the first.
    reloading = reloading.then(async () => {
      if (stopping !== null) return false
      let next: BucketsConfig
      try {
        next = loadBucketsFile(env.bucketsFile)
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err
        log.error({ file: env.bucketsFile, problems: err.problems }, 'reload rejected: invalid buckets file; keeping the running configuration')
        return false
      }
      try {
        await loadStreamModules(next)
      } catch (err) {
        log.error({ err }, 'reload rejected: cannot load the code of a stream it names; keeping the running configuration')
        return false
      }
      try {
        await manager.reload(next)
        declareSeries(stats, manager)
        for (const line of describePayloadSchemas(bucketList(next))) log.info(line)
      } catch (err) {
        // The manager stopped whatever it had built for this file before it gave up.
        log.error({ err, file: env.bucketsFile }, 'reload rejected: cannot build the streams it names; keeping the running configuration')
        return false
      }
      return true
    }).catch((err: unknown) => {
      // Each reload stands alone: one that failed in a way not foreseen above must not hand
      // its error to every later SIGHUP through this chain (issue 10, finding 9).
      log.error({ err }, 'reload failed; keeping the running configuration')
      return false
    })
    return reloading
  }
  const daemon: Daemon = { stats, budget, manager, listener, stop, reload, get openStreams () { return openStreams } }
  if (env.metrics !== null) {
    try {
      metrics = await startMetricsServer(daemon, env.metrics, log)
    } catch (err) {
      await stop()
      throw new KahetsError(ErrorCodes.CONFIG_INVALID, `METRICS: cannot listen: ${(err as Error).message}`, { cause: err })
    }
  }
  return daemon
}

/**
 * The counters and histograms of every bucket and stream the configuration names, from zero
 * (at start and after each reload): docs/operations-health.md, "Metrics".
 */
function declareSeries (stats: Stats, manager: BucketManager): void {
  stats.declare(manager.config.buckets.values())
  for (const s of manager.streams.values()) {
    stats.batches.declare(s.id)
    if (s.backup !== null) stats.batches.declare(s.backup.id)
  }
}
