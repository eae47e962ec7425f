// The probes the METRICS endpoint serves (docs/operations-health.md):
//
//   /livez   200 while the process serves HTTP at all: restart it only when this fails.
//   /readyz  200 while the socket accepts connections and clients are read; 503 with a one-line
//            reason otherwise (shutting down, reads paused for MAXMEMORY). Short and expected:
//            route new work elsewhere, do not restart.
//   /healthz JSON detail; 200 while no message is being lost (status "ok", or "degraded" when a
//            stream is on its backup, retrying or replaying, or a destination is diverted: the
//            messages are safe); 503 ("failing") while messages are being dropped.
//
// "Being dropped" means a loss within the last LOSS_WINDOW_MS, for a reason that says kahets
// could not keep a message it could have delivered (memory, a failed stream, shutdown).
// Refusals of the message itself (a bucket nobody serves, a payload its schema rejects, a
// message or topic the destination refuses for good) are listed as `refused` but do not fail
// the probe: a restart or another instance would refuse them just the same; alerts and
// kahets_dropped_total{reason} cover them.
import type { DropReason, FlowStats } from './stats.ts'

export const LOSS_WINDOW_MS = 60_000

/** Drop reasons that fail /healthz: kahets lost messages it could have delivered. */
const LOSSES: ReadonlySet<DropReason> = new Set<DropReason>(['max_memory', 'stream_failed', 'shutdown'])

export interface ProbeStream {
  readonly id: string
  readonly mode: string
  readonly divertedBuckets: readonly string[]
  /** Why it last failed over or held, until it answers again (e.g. a refused SASL password). */
  readonly lastFailure: { code: string, message: string } | null
}

export interface ProbeFlow {
  readonly bucket: string
  readonly stream: string
  readonly flow: Pick<FlowStats, 'lastLostAt'>
}

/** What the probes read from the running daemon. */
export interface ProbeState {
  /** The socket accepts connections (false before start and once shutdown began). */
  readonly accepting: boolean
  /** Sessions are not read: MAXMEMORY reached and the backup behind (memory-budget.ts). */
  readonly readsPaused: boolean
  readonly streams: readonly ProbeStream[]
  readonly flows: Iterable<ProbeFlow>
}

export interface Readiness {
  readonly ready: boolean
  readonly reason: string | null
}

export function readiness (s: Pick<ProbeState, 'accepting' | 'readsPaused'>): Readiness {
  if (!s.accepting) return { ready: false, reason: 'not accepting connections (starting or shutting down)' }
  if (s.readsPaused) return { ready: false, reason: 'reads paused: MAXMEMORY reached and the backup is behind' }
  return { ready: true, reason: null }
}

export interface Loss {
  readonly bucket: string
  readonly stream: string
  readonly reason: DropReason
  /** Seconds since the last one. */
  readonly secondsAgo: number
}

export interface Health {
  readonly status: 'ok' | 'degraded' | 'failing'
  /** Streams not taking writes (failed over, retrying, replaying after an outage), with why
   * when a failure put them there: `code` and `reason` (docs/kafka-security.md). */
  readonly degraded: Array<{ stream: string, mode: string, code?: string, reason?: string }>
  /** Buckets whose destination refuses writes for now while their stream is fine (issue 10). */
  readonly diverted: Array<{ stream: string, bucket: string }>
  /** Losses within LOSS_WINDOW_MS that fail the probe. */
  readonly dropping: Loss[]
  /** Messages refused for good within LOSS_WINDOW_MS (see above): reported, not failing. */
  readonly refused: Loss[]
}

export function health (s: Pick<ProbeState, 'streams' | 'flows'>, now = Date.now()): Health {
  const degraded = s.streams.filter((x) => x.mode !== 'normal' && x.mode !== 'draining').map((x) =>
    x.lastFailure === null ? { stream: x.id, mode: x.mode } : { stream: x.id, mode: x.mode, code: x.lastFailure.code, reason: x.lastFailure.message })
  const diverted = s.streams.flatMap((x) => x.divertedBuckets.map((bucket) => ({ stream: x.id, bucket })))
  const dropping: Loss[] = []
  const refused: Loss[] = []
  for (const { bucket, stream, flow } of s.flows) {
    for (const [reason, at] of flow.lastLostAt) {
      if (now - at >= LOSS_WINDOW_MS) continue
      const loss = { bucket, stream, reason, secondsAgo: Math.max(0, Math.round((now - at) / 1000)) }
      if (LOSSES.has(reason)) dropping.push(loss)
      else refused.push(loss)
    }
  }
  const status = dropping.length > 0 ? 'failing' : degraded.length > 0 || diverted.length > 0 ? 'degraded' : 'ok'
  return { status, degraded, diverted, dropping, refused }
}

/** The /healthz body: empty lists other than `degraded` are left out. */
export function healthBody (h: Health): Record<string, unknown> {
  return {
    status: h.status,
    degraded: h.degraded,
    ...(h.diverted.length > 0 ? { diverted: h.diverted } : {}),
    ...(h.dropping.length > 0 ? { dropping: h.dropping } : {}),
    ...(h.refused.length > 0 ? { refused: h.refused } : {}),
  }
}
