// kahets → a real Kafka broker, checked with a consumer kahets did not write.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { startKahetsWithMetrics } from '../helpers/kahets.ts'
import { consumeAll, kcatCount, startBroker, type Broker } from '../helpers/broker.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { runPhpScript } from '../helpers/php.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

let broker: Broker
before(async () => { broker = await startBroker() })

const CLIENTS = 8
const PER_CLIENT = 12_500
const BUCKETS = ['orders', 'clicks', 'misc_default'] // the last one is served by defaultBucket

// Message i of client c; payload sizes include 0 bytes and a few of 512 KiB.
function message (c: number, i: number): { bucket: string, key: string | null, payload: Buffer } {
  const big = i % 5000 === 4999
  const size = big ? 512 * 1024 : i % 10 === 0 ? 0 : (i * 31 + c) % 300
  const payload = Buffer.alloc(size)
  const seed = createHash('md5').update(`${c}/${i}`).digest()
  for (let j = 0; j < size; j++) payload[j] = seed[j % 16]! ^ (j & 0xff)
  if (size >= 2) { payload[0] = 0x00; payload[1] = 0x0a } // a zero byte and a newline
  return { bucket: BUCKETS[i % 3]!, key: i % 7 === 0 ? null : `c${c}-k${i % 11}`, payload }
}
const ident = (c: number, i: number): string => `${c}/${i}`

test('100,000 frames from 8 clients and 10,000 from php arrive in Kafka: counts, keys, bytes, per-key order; slice and fan-out', async () => {
  const k = await startKahetsWithMetrics({
    buckets: {
      streamsConfigs: {
        kafka: { type: 'kafka', settings: { 'bootstrap.servers': broker.bootstrap, acks: 'all', 'message.max.bytes': '1048576', 'queue.buffering.max.ms': '20', 'batch.num.messages': '5000' }, backup: { type: 'file', settings: { path: '{dir}/backup' } } },
        copy: { type: 'file', settings: { path: '{dir}/copy' } },
        tenth: { type: 'file', slice: 0.1, settings: { path: '{dir}/tenth' } },
      },
      buckets: [
        { id: 'orders', streams: ['kafka', 'copy'], batch: 1000, batchTimeout: 50 },
        { id: 'clicks', streams: ['kafka', 'tenth'], batch: 2000, batchTimeout: 50 },
      ],
      defaultBucket: { id: 'default', streams: ['kafka'], batch: 500, batchTimeout: 50 },
    },
    env: { MAX_FRAME_BYTES: '1MB' },
  })

  // The payload identifies the message: keep (client, index) per payload digest.
  const expected = new Map<string, { c: number, i: number }>()
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    const client = await KahetsClient.connect(k.socket)
    for (let i = 0; i < PER_CLIENT; i++) {
      const m = message(c, i)
      if (!client.send(m.bucket, Buffer.concat([Buffer.from(`${ident(c, i)}|`), m.payload]), m.key)) await client.drain()
    }
    await client.close()
  }))
  for (let c = 0; c < CLIENTS; c++) for (let i = 0; i < PER_CLIENT; i++) expected.set(ident(c, i), { c, i })

  const sent = await runPhpScript(k.dir, 'php.php', `$k = new \\Kahets\\Client($argv[1]); $n = 0;
for ($i = 0; $i < 10000; $i++) { if ($k->send('php_default', "php/$i|" . str_repeat("\\0\\n", $i % 50), $i % 3 ? "pk" . ($i % 4) : null)) $n++; }
echo $n;`, [k.socket])
  assert.equal(sent.stdout, '10000')

  for (const [topic, count] of [['orders', 33_336], ['clicks', 33_336], ['misc_default', 33_328]] as const) {
    const got = await consumeAll(broker.bootstrap, topic, { expected: count, timeoutMs: 60_000 })
    assert.equal(got.length, count, `${topic}: message count`)
    const lastPerKey = new Map<string, number>()
    for (const msg of got) {
      const value = msg.value ?? Buffer.alloc(0)
      const bar = value.indexOf(0x7c)
      const [c, i] = value.subarray(0, bar).toString().split('/').map(Number) as [number, number]
      const m = message(c, i)
      assert.equal(m.bucket, topic)
      assert.deepEqual(value.subarray(bar + 1), m.payload, `${ident(c, i)}: payload byte-identical`)
      assert.equal(msg.key?.toString() ?? null, m.key, `${ident(c, i)}: key`)
      assert.ok(expected.delete(ident(c, i)), `${ident(c, i)} seen once`)
      const order = `${c}:${msg.key?.toString() ?? 'null'}`
      assert.ok((lastPerKey.get(order) ?? -1) < i, `per-key order for ${order}`)
      lastPerKey.set(order, i)
    }
  }
  assert.equal(expected.size, 0, 'every message arrived')
  const php = await consumeAll(broker.bootstrap, 'php_default', { expected: 10_000, timeoutMs: 60_000 })
  assert.equal(php.length, 10_000)
  php.forEach((msg, i) => {
    assert.equal(msg.value!.toString('latin1'), `php/${i}|` + '\0\n'.repeat(i % 50))
    assert.equal(msg.key?.toString() ?? null, i % 3 ? `pk${i % 4}` : null)
  })
  assert.equal(await kcatCount(broker.bootstrap, 'orders'), 33_336, 'kcat agrees')

  const m = await waitFor(async () => { const s = await scrape(k.metrics); return sample(s, 'kahets_in_flight') === 0 ? s : null }, { what: 'all settled' })
  for (const b of ['orders', 'clicks', 'misc_default', 'php_default']) assert.equal(assertIdentity(m, b, 'kafka').dropped, 0)
  const copy = assertIdentity(m, 'orders', 'copy')
  const tenth = assertIdentity(m, 'clicks', 'tenth')
  assert.equal(await k.stop(), 0, k.output())

  // Fan-out: the file copy holds every 'orders' message too.
  const copied = (await readFrameFiles(join(k.dir, 'copy'))).flatMap((f) => f.frames)
  assert.equal(copied.length, 33_336)
  assert.equal(copy.delivered, 33_336)
  // slice 0.1 of 33,336: binomial mean 3,333.6, sd 54.8; accept ±6 sd (a false alarm about once in 10^9 runs).
  const sliced = (await readFrameFiles(join(k.dir, 'tenth'))).flatMap((f) => f.frames)
  assert.ok(Math.abs(sliced.length - 3333.6) < 6 * 54.8, `slice 0.1 delivered ${sliced.length} of 33,336`)
  assert.equal(tenth.delivered, sliced.length)
  assert.equal(tenth.delivered + tenth.sampledOut, 33_336)
})

test('a message above message.max.bytes is refused and counted; the others keep flowing', async () => {
  const k = await startKahetsWithMetrics({
    buckets: {
      streamsConfigs: { kafka: { type: 'kafka', settings: { 'bootstrap.servers': broker.bootstrap, 'message.max.bytes': '1000', 'queue.buffering.max.ms': '5' } } },
      buckets: [{ id: 'sizes', streams: ['kafka'], batch: 100, batchTimeout: 20 }],
    },
  })
  const client = await KahetsClient.connect(k.socket)
  for (let i = 0; i < 300; i++) client.send('sizes', i === 150 ? Buffer.alloc(5000, 1) : `small-${i}`)
  await client.close()
  const got = await consumeAll(broker.bootstrap, 'sizes', { expected: 299, timeoutMs: 30_000 })
  assert.deepEqual(got.map((m) => m.value!.toString()), Array.from({ length: 300 }, (_, i) => `small-${i}`).filter((_, i) => i !== 150))
  const m = await waitFor(async () => { const s = await scrape(k.metrics); return sample(s, 'kahets_in_flight') === 0 ? s : null }, { what: 'settled' })
  assert.equal(sample(m, 'kahets_dropped_total', { bucket: 'sizes', stream: 'kafka', reason: 'message_too_large' }), 1)
  assert.equal(assertIdentity(m, 'sizes', 'kafka').delivered, 299)
  assert.equal((await fetch(`${k.metrics}/healthz`)).status, 200, 'a refused message does not fail the stream over')
  assert.ok(k.logs().some((l) => l.bucket === 'sizes' && Number(l.level) >= 40), 'logged with the bucket name')
  assert.equal(await k.stop(), 0)
})
