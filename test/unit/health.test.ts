// The probes' decisions (src/health.ts) on hand-made states and a fixed clock: what makes
// /readyz 503, what /healthz calls degraded (200) and failing (503), and how long a loss counts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LOSS_WINDOW_MS, health, healthBody, readiness, type ProbeFlow, type ProbeStream } from '../../src/health.ts'
import { FlowStats } from '../../src/stats.ts'

const normal: ProbeStream = { id: 'f', mode: 'normal', divertedBuckets: [], lastFailure: null }

function flowLost (reason: Parameters<FlowStats['drop']>[0], at: number): FlowStats {
  const f = new FlowStats()
  f.drop(reason, 3)
  f.lastLostAt.set(reason, at)
  return f
}

test('readyz: ready while accepting and reading; a short reason otherwise, shutdown first', () => {
  assert.deepEqual(readiness({ accepting: true, readsPaused: false }), { ready: true, reason: null })
  assert.match(readiness({ accepting: true, readsPaused: true }).reason!, /^reads paused: MAXMEMORY reached/)
  assert.match(readiness({ accepting: false, readsPaused: true }).reason!, /not accepting connections/)
})

test('healthz: ok; degraded (still 200) for a stream on its backup, retrying, replaying or a diverted bucket; draining is normal', () => {
  assert.equal(health({ streams: [normal], flows: [] }).status, 'ok')
  assert.equal(health({ streams: [{ ...normal, mode: 'draining' }], flows: [] }).status, 'ok')
  for (const mode of ['backup', 'retrying', 'replaying']) {
    const h = health({ streams: [normal, { id: 'k', mode, divertedBuckets: [], lastFailure: null }], flows: [] })
    assert.equal(h.status, 'degraded', mode)
    assert.deepEqual(h.degraded, [{ stream: 'k', mode }])
  }
  const failed = { id: 'k', mode: 'backup', divertedBuckets: [], lastFailure: { code: 'KAHETS_KAFKA_AUTHENTICATION_FAILED', message: 'kafka stream k: SASL refused' } }
  assert.deepEqual(health({ streams: [failed], flows: [] }).degraded, [{ stream: 'k', mode: 'backup', code: 'KAHETS_KAFKA_AUTHENTICATION_FAILED', reason: 'kafka stream k: SASL refused' }], 'degraded says why')
  const diverted = health({ streams: [{ ...normal, divertedBuckets: ['b'] }], flows: [] })
  assert.equal(diverted.status, 'degraded')
  assert.deepEqual(healthBody(diverted), { status: 'degraded', degraded: [], diverted: [{ stream: 'f', bucket: 'b' }] })
})

test('healthz: failing while messages it could deliver are lost, for LOSS_WINDOW_MS after the last; refusals of the message itself are reported only', () => {
  const now = 1_000_000
  const flows: ProbeFlow[] = [
    { bucket: 'a', stream: 'f', flow: flowLost('max_memory', now - 5_000) },
    { bucket: 'b', stream: 'f', flow: flowLost('destination_rejected', now - 1_000) },
    { bucket: 'nobody', stream: '', flow: flowLost('unknown_bucket', now) },
  ]
  const h = health({ streams: [{ ...normal, mode: 'backup' }], flows }, now)
  assert.equal(h.status, 'failing', 'a loss outranks a degraded stream')
  assert.deepEqual(h.dropping, [{ bucket: 'a', stream: 'f', reason: 'max_memory', secondsAgo: 5 }])
  assert.deepEqual(h.refused.map((r) => r.reason).sort(), ['destination_rejected', 'unknown_bucket'])
  assert.deepEqual(Object.keys(healthBody(h)), ['status', 'degraded', 'dropping', 'refused'])

  for (const reason of ['stream_failed', 'shutdown'] as const) {
    assert.equal(health({ streams: [normal], flows: [{ bucket: 'a', stream: 'f', flow: flowLost(reason, now) }] }, now).status, 'failing', reason)
  }
  for (const reason of ['schema_rejected', 'message_too_large', 'topic_rejected'] as const) {
    assert.equal(health({ streams: [normal], flows: [{ bucket: 'a', stream: 'f', flow: flowLost(reason, now) }] }, now).status, 'ok', reason)
  }
  // A refusal on replay (frames read back from the backup) is a loss of its reason too.
  const replay = new FlowStats()
  replay.refuseOnReplay('stream_failed', 1)
  assert.equal(health({ streams: [normal], flows: [{ bucket: 'a', stream: 'f', flow: replay }] }).status, 'failing')

  // The window: still failing just inside it, ok once it has passed with no new loss.
  assert.equal(health({ streams: [normal], flows: flows.slice(0, 1) }, now - 5_000 + LOSS_WINDOW_MS - 1).status, 'failing')
  const later = health({ streams: [normal], flows }, now + LOSS_WINDOW_MS)
  assert.equal(later.status, 'ok')
  assert.deepEqual(healthBody(later), { status: 'ok', degraded: [] })
})
