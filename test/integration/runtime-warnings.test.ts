// Issue 13: no runtime warnings. kahets on the Node it runs on (the pinned one under make
// test) delivers to a real broker with each Kafka client, idles after the responses (where
// kafkajs used to arm a negative timer: TimeoutNegativeWarning on Node 24+), and stops, and
// Node printed no warning of any kind.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createConnection } from 'node:net'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { startBroker, kcatCount } from '../helpers/broker.ts'
import { startKahets } from '../helpers/kahets.ts'
import { waitFor } from '../helpers/wait.ts'

test('kafkajs and platformatic streams: delivered, idle, stopped, and no warning from Node', async () => {
  const broker = await startBroker()
  const k = await startKahets({
    buckets: {
      streamsConfigs: {
        viaKafkajs: { type: 'kafka', settings: { 'bootstrap.servers': broker.bootstrap, 'kahets.client': 'kafkajs' } },
        viaPlatformatic: { type: 'kafka', settings: { 'bootstrap.servers': broker.bootstrap, 'kahets.client': 'platformatic' } },
      },
      buckets: [
        { id: 'warn-kafkajs', streams: ['viaKafkajs'], batch: 50, batchTimeout: 20 },
        { id: 'warn-platformatic', streams: ['viaPlatformatic'], batch: 50, batchTimeout: 20 },
      ],
    },
  })
  const frames = ['warn-kafkajs', 'warn-platformatic'].flatMap((bucket) =>
    Array.from({ length: 200 }, (_, i) => ({ bucket, key: null, payload: Buffer.from(`${bucket} ${i}`) })))
  await new Promise<void>((resolve, reject) => {
    const s = createConnection(k.socket, () => { s.end(encodeFrames(frames)) })
    s.on('error', reject)
    s.on('close', () => resolve())
  })
  for (const topic of ['warn-kafkajs', 'warn-platformatic']) {
    await waitFor(async () => (await kcatCount(broker.bootstrap, topic, { timeoutMs: 10_000 })) >= 200, { timeoutMs: 60_000, what: `200 messages in ${topic}` })
  }
  // Idle connections after responses: where the negative timer was armed, every millisecond.
  const idleUntil = Date.now() + 1_000
  await waitFor(() => Date.now() >= idleUntil, { timeoutMs: 5_000, what: 'an idle second' })
  assert.equal(await k.stop(), 0, k.output())
  assert.doesNotMatch(k.output(), /Warning/, k.output())
})
