// kafkajs's real request queue with kahets's patch (src/streams/kafkajs-patches.ts): an idle
// queue arms no timer, so Node 24+ prints no TimeoutNegativeWarning and nothing polls every
// millisecond; requests held back by a throttle or by max in-flight still go out.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RequestQueue } from '../../src/streams/kafkajs-patches.ts'

interface Queue {
  pending: unknown[]
  inflight: Map<number, unknown>
  throttledUntil: number
  throttleCheckTimeoutId: NodeJS.Timeout | null
  push (req: { entry: Entry, expectResponse: boolean, sendRequest: () => void }): void
  fulfillRequest (res: { correlationId: number, payload: Buffer, size: number }): void
  maybeThrottle (ms: number): void
  destroy (): void
}
type QueueClass = new (opts: Record<string, unknown>) => Queue

interface Entry { correlationId: number, resolve: () => void, reject: () => void }
const entry = (correlationId: number): Entry => ({ correlationId, resolve: () => {}, reject: () => {} })

const silent = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} }

function queue (maxInFlightRequests: number | null = null): Queue {
  const Queue = RequestQueue as unknown as QueueClass
  return new Queue({ maxInFlightRequests, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 't', broker: 'b', logger: silent })
}

/** Warnings are emitted on the next tick; a macrotask later every one has been. */
async function warningsDuring (fn: () => Promise<void> | void): Promise<string[]> {
  const seen: string[] = []
  const onWarning = (w: Error): void => { seen.push(`${w.name}: ${w.message}`) }
  process.on('warning', onWarning)
  try {
    await fn()
    await new Promise((resolve) => setImmediate(resolve))
  } finally {
    process.off('warning', onWarning)
  }
  return seen
}

test('an idle queue arms no timer after a response, and nothing warns', async () => {
  const q = queue()
  const warnings = await warningsDuring(() => {
    let sent = 0
    q.push({ entry: entry(1), expectResponse: true, sendRequest: () => { sent++ } })
    assert.equal(sent, 1)
    q.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 })
  })
  assert.equal(q.throttleCheckTimeoutId, null)
  assert.deepEqual(warnings, [])
  q.destroy()
})

test('a request held back by max in-flight goes out when the first is answered', async () => {
  const q = queue(1)
  const sent: number[] = []
  for (const id of [1, 2]) q.push({ entry: entry(id), expectResponse: true, sendRequest: () => { sent.push(id) } })
  assert.deepEqual(sent, [1])
  assert.equal(q.pending.length, 1)
  q.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 })
  assert.deepEqual(sent, [1, 2])
  q.destroy()
})

test('a throttled request goes out once the throttle is over', async () => {
  const q = queue()
  q.maybeThrottle(30)
  const sent: number[] = []
  const warnings = await warningsDuring(async () => {
    q.push({ entry: entry(1), expectResponse: true, sendRequest: () => { sent.push(1) } })
    assert.deepEqual(sent, [])
    assert.notEqual(q.throttleCheckTimeoutId, null)
    const deadline = Date.now() + 5_000
    while (sent.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  })
  assert.deepEqual(sent, [1])
  assert.deepEqual(warnings, [])
  q.destroy()
})
