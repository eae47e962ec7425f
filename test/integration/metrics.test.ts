// /metrics on a real kahets (docs/operations-health.md): prom-client's process and Node.js
// metrics, kahets_build_info, the batch histograms, and every counter of a configured bucket
// and stream present from zero, at start and after a SIGHUP that adds some.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { ROOT, startKahets, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { assertIdentity, sample, scrape, type Samples } from '../helpers/metrics.ts'
import { freePort } from '../helpers/ports.ts'
import { waitFor } from '../helpers/wait.ts'

const config = (extra: boolean) => ({
  streamsConfigs: {
    files: { type: 'file', settings: { path: '{dir}/files' }, backup: { type: 'file', settings: { path: '{dir}/backup' } } },
    ...(extra ? { more: { type: 'file', settings: { path: '{dir}/more' } } } : {}),
  },
  buckets: [
    { id: 'a', streams: ['files'], batch: 100, batchTimeout: 50 },
    ...(extra ? [{ id: 'b', streams: ['more'] }] : []),
  ],
  defaultBucket: { id: 'default', streams: ['files'] },
})

const has = (s: Samples, series: string): boolean => s.has(series)

/** Series a configured (bucket, stream) flow and its stream have from zero. */
function assertZeroSeries (s: Samples, bucket: string, stream: string): void {
  for (const name of ['kahets_flow_received_total', 'kahets_delivered_total', 'kahets_backed_up_total', 'kahets_sampled_out_total', 'kahets_replayed_total']) {
    assert.ok(has(s, `${name}{bucket="${bucket}",stream="${stream}"}`), `${name} for ${bucket}/${stream}`)
  }
  for (const reason of ['max_memory', 'stream_failed', 'shutdown', 'destination_rejected', 'message_too_large', 'topic_rejected', 'schema_rejected']) {
    assert.equal(s.get(`kahets_dropped_total{bucket="${bucket}",stream="${stream}",reason="${reason}"}`), 0, `dropped ${reason} for ${bucket}/${stream}`)
  }
  assert.equal(s.get(`kahets_replay_refused_total{bucket="${bucket}",stream="${stream}",reason="stream_failed"}`), 0)
  assert.equal(s.get(`kahets_received_total{bucket="${bucket}"}`), 0)
  assert.equal(s.get(`kahets_replay_bytes_total{stream="${stream}"}`), 0)
  assert.equal(s.get(`kahets_write_settled_seconds_count{stream="${stream}"}`), 0)
  assert.equal(s.get(`kahets_batch_messages_bucket{le="+Inf",stream="${stream}"}`), 0)
  assert.equal(s.get(`kahets_files_reopened_total{stream="${stream}",reason="unlinked"}`), 0)
}

test('/metrics: default process and Node.js metrics, build info, counters from zero (also after SIGHUP), batch histograms', async () => {
  const k = await startKahetsWithMetrics({ buckets: config(false) })
  const base = k.metrics
  const start = await scrape(base)
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_open_fds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_version_info']) {
    assert.ok([...start.keys()].some((key) => key === name || key.startsWith(`${name}{`)), `${name} exported`)
  }
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
  assert.equal(start.get(`kahets_build_info{version="${version}",node="${process.versions.node}",client="none"}`), 1)
  assertZeroSeries(start, 'a', 'files')
  for (const reason of ['bad_bucket', 'fields_overflow', 'control_frame', 'hello', 'oversized', 'truncated']) {
    assert.equal(start.get(`kahets_invalid_frames_total{reason="${reason}"}`), 0, reason)
  }
  assert.equal(start.get('kahets_write_settled_seconds_count{stream="files.backup"}'), 0, 'a backup has its histograms too')

  // 1,000 messages; a bucket flushes at 100 (or what one read brought in), a stream
  // lane coalesces what queued behind its write: between 1 and 1,000 writes.
  const c = await KahetsClient.connect(k.socket)
  for (let i = 0; i < 1000; i++) c.send('a', `m${String(i).padStart(3, '0')}`)
  c.send('dynamic', 'one for the defaultBucket')
  await c.close()
  const m = await waitFor(async () => { const s = await scrape(base); return sample(s, 'kahets_delivered_total', { bucket: 'a' }) === 1000 && sample(s, 'kahets_delivered_total', { bucket: 'dynamic' }) === 1 ? s : null }, { what: 'delivered' })
  // A bucket only the defaultBucket serves: its flow counts, but no zero per drop reason
  // (any name a client sends would add seven series).
  assert.equal(m.get('kahets_delivered_total{bucket="dynamic",stream="files"}'), 1)
  assert.equal([...m.keys()].filter((key) => key.startsWith('kahets_dropped_total{bucket="dynamic"')).length, 0)
  assertIdentity(m, 'a', 'files')
  const writes = m.get('kahets_batch_messages_count{stream="files"}')!
  assert.ok(writes >= 1 && writes <= 1001, `${writes} writes`)
  assert.equal(m.get('kahets_batch_messages_sum{stream="files"}'), 1001, 'every delivered message in exactly one observed batch')
  assert.equal(m.get('kahets_batch_bytes_sum{stream="files"}'), sample(m, 'kahets_received_bytes_total'))
  assert.equal(m.get('kahets_write_settled_seconds_count{stream="files"}'), writes)
  const seconds = m.get('kahets_write_settled_seconds_sum{stream="files"}')!
  // Each write's oldest frame waited at least for the flush (batch 100 or 50 ms) and fsync.
  assert.ok(seconds > 0 && seconds / writes < 5, `mean ${seconds / writes} s`)
  assert.equal(m.get('kahets_write_settled_seconds_bucket{le="+Inf",stream="files"}'), writes)

  // A reload that adds a bucket and a stream: their series are there before any message.
  await writeFile(join(k.dir, 'buckets.json'), JSON.stringify(config(true)).replaceAll('{dir}', k.dir))
  k.proc.kill('SIGHUP')
  await waitFor(() => k.logs().some((l) => l.msg === 'buckets file reloaded'), { what: 'reload' })
  const after = await scrape(base)
  assertZeroSeries(after, 'b', 'more')
  assert.equal(after.get('kahets_batch_messages_sum{stream="files"}'), 1001, 'the old stream keeps counting')
  assert.equal(await k.stop(), 0)
})

test('kahets_build_info names the Kafka client libraries the configuration uses, with their versions (by kahets.client name)', async () => {
  const port = await freePort()
  const version = (pkg: string): string => (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version
  // Nothing listens on port 1: the streams go to their backups; no broker is needed.
  const k = await startKahets({
    buckets: {
      streamsConfigs: {
        p: { type: 'kafka', settings: { 'bootstrap.servers': '127.0.0.1:1' }, backup: { type: 'file', settings: { path: '{dir}/p' } } },
        j: { type: 'kafka', settings: { 'bootstrap.servers': '127.0.0.1:1', 'kahets.client': 'kafkajs' }, backup: { type: 'file', settings: { path: '{dir}/j' } } },
      },
      buckets: [{ id: 'a', streams: ['p', 'j'] }],
    },
    env: { METRICS: `127.0.0.1:${port}` },
  })
  const s = await scrape(`http://127.0.0.1:${port}`)
  const info = [...s.keys()].filter((key) => key.startsWith('kahets_build_info{'))
  assert.deepEqual(info, [`kahets_build_info{version="${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}",node="${process.versions.node}",client="kafkajs@${version('kafkajs')},@platformatic/kafka@${version('@platformatic/kafka')}"}`])
  await k.stop()
})
