// Reads kahets's /metrics and checks the accounting identity (docs/guarantees.md#accounting) per flow:
//   received = delivered + sampled_out + backed_up + dropped + in_flight
import assert from 'node:assert/strict'
import type { FlowSnapshot } from '../../src/metrics.ts'

export type Samples = Map<string, number>

/** GET /metrics, parsed; `signal` bounds a request to a kahets that does not answer. */
export async function scrape (base: string, signal?: AbortSignal): Promise<Samples> {
  const res = await fetch(`${base}/metrics`, { signal })
  assert.equal(res.status, 200)
  const out: Samples = new Map()
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    out.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return out
}

export function sample (s: Samples, name: string, labels: Record<string, string> = {}): number {
  let total = 0
  for (const [key, v] of s) {
    const m = /^([a-z_]+)(?:\{(.*)\})?$/.exec(key)
    if (m === null || m[1] !== name) continue
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, val]) => have[k] === val)) total += v
  }
  return total
}

/** Asserts the identity for one (bucket, stream) flow and returns its terms. */
export function assertIdentity (s: Samples, bucket: string, stream: string): Record<string, number> {
  const terms = {
    received: sample(s, 'kahets_flow_received_total', { bucket, stream }),
    delivered: sample(s, 'kahets_delivered_total', { bucket, stream }),
    sampledOut: sample(s, 'kahets_sampled_out_total', { bucket, stream }),
    backedUp: sample(s, 'kahets_backed_up_total', { bucket, stream }),
    dropped: sample(s, 'kahets_dropped_total', { bucket, stream }),
    inFlight: sample(s, 'kahets_in_flight', { bucket, stream }),
  }
  assert.equal(terms.received, terms.delivered + terms.sampledOut + terms.backedUp + terms.dropped + terms.inFlight,
    `accounting identity for ${bucket}/${stream}: ${JSON.stringify(terms)}`)
  return terms
}

type FinalFlow = Pick<FlowSnapshot, 'bucket' | 'stream' | 'received' | 'delivered' | 'sampledOut' | 'backedUp' | 'dropped' | 'inFlight'>

/**
 * The identity for every flow of a kahets that has stopped, from its final 'stopped' log line
 * (the process is gone, so /metrics cannot be read): nothing is in flight any more, and
 * received = delivered + sampled_out + backed_up + dropped. Returns the flows.
 */
export function assertFinalIdentity (logs: Array<Record<string, unknown>>): FinalFlow[] {
  const stopped = logs.find((l) => l.msg === 'stopped')
  assert.ok(stopped !== undefined, 'kahets logged its final accounting')
  const flows = (stopped.flows as FinalFlow[]).filter((f) => f.stream !== '')
  for (const f of flows) {
    const dropped = Object.values(f.dropped).reduce((a, b) => a + b, 0)
    assert.equal(f.inFlight, 0, `nothing in flight at exit for ${f.bucket}/${f.stream}`)
    assert.equal(f.received, f.delivered + f.sampledOut + f.backedUp + dropped, `accounting identity at exit for ${f.bucket}/${f.stream}: ${JSON.stringify(f)}`)
  }
  return flows
}
