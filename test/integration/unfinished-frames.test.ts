// Unfinished frames are charged to MAXMEMORY from their first byte (docs/guarantees.md#bounded-memory;
// issue 10 #7): 300 connections each holding an unfinished 1 MiB frame under MAXMEMORY 64MB
// show in kahets_buffered_bytes, pause reading, keep RSS bounded, and are all delivered
// once their clients finish them.
import assert from 'node:assert/strict'
import { createConnection, type Socket } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { readFrameFiles } from '../helpers/frames.ts'
import { startKahetsWithMetrics } from '../helpers/kahets.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

const CONNECTIONS = 300
const PAYLOAD = 1024 * 1024 - 64
const MiB = 1024 * 1024

function frame (i: number): Buffer {
  const bucket = Buffer.from('big')
  const payload = Buffer.alloc(PAYLOAD, 97 + (i % 26))
  payload.write(`frame-${i}-`)
  const head = Buffer.alloc(4)
  head.writeUInt32LE(2 + bucket.length + payload.length)
  return Buffer.concat([head, Buffer.from([bucket.length]), bucket, Buffer.from([0]), payload])
}

test(`${CONNECTIONS} connections each holding an unfinished 1 MiB frame stay within MAXMEMORY 64MB`, { timeout: 180_000 }, async (t) => {
  const k = await startKahetsWithMetrics({
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out', sizeRotate: '1GB', fsync: false } } },
      buckets: [{ id: 'big', streams: ['files'], batch: 10, batchTimeout: 50 }],
    },
    env: { MAXMEMORY: '64MB', MAX_FRAME_BYTES: '2MB' },
  })
  const base = k.metrics
  const sockets: Socket[] = []
  const frames = Array.from({ length: CONNECTIONS }, (_, i) => frame(i))
  try {
    for (let i = 0; i < CONNECTIONS; i++) {
      const s = createConnection(k.socket)
      s.on('error', () => {})
      await new Promise((resolve) => s.once('connect', resolve))
      // Everything but the last byte: the frame cannot complete until the client says so.
      s.write(frames[i]!.subarray(0, frames[i]!.length - 1))
      sockets.push(s)
    }
    const held = await waitFor(async () => {
      const m = await scrape(base)
      return sample(m, 'kahets_reads_paused') === 1 && sample(m, 'kahets_buffered_bytes') > 32 * MiB ? m : null
    }, { timeoutMs: 30_000, what: 'the unfinished frames to be charged and reading paused' })
    // What kahets holds stays near the bound: the charge passes MAXMEMORY by at most what
    // each connection had read (one socket chunk) before the pause.
    let peakRss = 0
    for (let i = 0; i < 10; i++) {
      const m = await scrape(base)
      assert.ok(sample(m, 'kahets_buffered_bytes') <= 64 * MiB + CONNECTIONS * 64 * 1024 + 2 * MiB, `buffered ${sample(m, 'kahets_buffered_bytes')}`)
      peakRss = Math.max(peakRss, sample(m, 'kahets_process_resident_memory_bytes'))
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.ok(sample(held, 'kahets_read_pauses_total') >= 1)
    assert.ok(peakRss < 300 * MiB, `RSS ${Math.round(peakRss / MiB)} MiB`)
    t.diagnostic(`held: buffered ${Math.round(sample(held, 'kahets_buffered_bytes') / MiB)} MiB, peak RSS ${Math.round(peakRss / MiB)} MiB`)

    for (let i = 0; i < CONNECTIONS; i++) sockets[i]!.write(frames[i]!.subarray(frames[i]!.length - 1))
    await waitFor(async () => sample(await scrape(base), 'kahets_delivered_total', { bucket: 'big', stream: 'files' }) === CONNECTIONS,
      { timeoutMs: 60_000, what: 'every frame delivered' }).catch(async (err: unknown) => {
      const m = await scrape(base)
      console.log(['kahets_buffered_bytes', 'kahets_reads_paused', 'kahets_delivered_total', 'kahets_connected_clients', 'kahets_flow_received_total', 'kahets_dropped_total'].map((n) => `${n}=${sample(m, n)}`).join(' '))
      throw err
    })
    const m = await scrape(base)
    assertIdentity(m, 'big', 'files')
    assert.equal(sample(m, 'kahets_reads_paused'), 0)
  } finally {
    for (const s of sockets) s.destroy()
  }
  assert.equal(await k.stop(), 0)
  const written = (await readFrameFiles(join(k.dir, 'out'))).flatMap((f) => f.frames)
  assert.equal(written.length, CONNECTIONS)
  const got = new Map(written.map((f) => [/^frame-(\d+)-/.exec(f.payload.toString('latin1', 0, 20))![1], f.raw]))
  for (let i = 0; i < CONNECTIONS; i++) assert.ok(got.get(String(i))?.equals(frames[i]!), `frame ${i} written whole`)
})
