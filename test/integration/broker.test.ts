// Proves test/helpers/broker.ts against a real Kafka: what a plain kafkajs producer writes comes
// back through both readers, and survives a SIGKILL of the broker.
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { connect } from 'node:net'
import { Kafka, logLevel, Partitioners } from 'kafkajs'
import {
  type Broker,
  consumeAll,
  createTopic,
  hasKcat,
  kcatCount,
  kcatRead,
  startBroker,
} from '../helpers/broker.ts'

const COUNT = 1000
const TOPIC = 'helper-roundtrip'
const TEST_TIMEOUT = 180_000

// Values carry NUL, newline, tab and 0xff so any text decoding on the read path would show.
function valueOf(i: number): Buffer {
  return Buffer.concat([Buffer.from(`v${i}:`), Buffer.from([0x00, 0x0a, 0x09, 0xff, i & 0xff])])
}
const keyOf = (i: number): string => `k${i}`

async function produce(bootstrap: string, topic: string, from: number, to: number): Promise<void> {
  const kafka = new Kafka({ clientId: 'broker-test-producer', brokers: [bootstrap], logLevel: logLevel.NOTHING })
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    const messages = []
    for (let i = from; i < to; i++) messages.push({ key: keyOf(i), value: valueOf(i) })
    await producer.send({ topic, messages })
  } finally {
    await producer.disconnect()
  }
}

function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.once('connect', () => {
      s.destroy()
      resolve(false)
    })
    s.once('error', () => resolve(true))
  })
}

async function assertAllThere(broker: Broker, count: number): Promise<void> {
  const got = await consumeAll(broker.bootstrap, TOPIC, { expected: count, timeoutMs: 30_000 })
  assert.equal(got.length, count, `consumeAll got ${got.length} of ${count}`)
  got.forEach((m, i) => {
    assert.equal(m.partition, 0)
    assert.equal(m.offset, String(i))
    assert.equal(m.key?.toString(), keyOf(i))
    assert.deepEqual(m.value, valueOf(i))
    assert.match(m.timestamp, /^\d+$/)
  })
  if (hasKcat()) {
    assert.equal(await kcatCount(broker.bootstrap, TOPIC), count)
    const expectedBytes = Buffer.concat(Array.from({ length: count }, (_, i) => valueOf(i)))
    assert.deepEqual(await kcatRead(broker.bootstrap, TOPIC), expectedBytes)
  }
}

let broker: Broker

// Started in a hook on purpose: the helper must scope its teardown to the file, not the hook.
before(async () => {
  broker = await startBroker()
})

test('the broker answers on its own loopback port', { timeout: TEST_TIMEOUT }, async () => {
  assert.equal(broker.bootstrap, `127.0.0.1:${broker.port}`)
  assert.notEqual(broker.port, broker.controllerPort)
  assert.equal(await broker.isRunning(), true)
})

test('1000 produced messages come back through consumeAll and kcat', { timeout: TEST_TIMEOUT }, async (t) => {
  if (!hasKcat()) t.diagnostic('kcat not installed: only the kafkajs reader is checked')
  await createTopic(broker.bootstrap, TOPIC)
  await produce(broker.bootstrap, TOPIC, 0, COUNT)
  await assertAllThere(broker, COUNT)
  if (hasKcat()) {
    const keys = await kcatRead(broker.bootstrap, TOPIC, { format: '%k\n' })
    assert.equal(keys.toString(), Array.from({ length: COUNT }, (_, i) => `${keyOf(i)}\n`).join(''))
  }
})

test('consumeAll resolves with the shortfall at its deadline', { timeout: TEST_TIMEOUT }, async () => {
  const started = Date.now()
  const got = await consumeAll(broker.bootstrap, TOPIC, { expected: COUNT + 5, timeoutMs: 4_000 })
  assert.equal(got.length, COUNT)
  assert.ok(Date.now() - started >= 4_000, 'returned before the deadline')
})

test('messages survive a SIGKILL and a restart on the same data', { timeout: TEST_TIMEOUT }, async () => {
  await broker.kill()
  assert.equal(await broker.isRunning(), false)
  assert.equal(await portRefuses(broker.port), true, 'port still open after SIGKILL')

  await broker.restart()
  assert.equal(await broker.isRunning(), true)
  await assertAllThere(broker, COUNT)

  // And the recovered log takes new writes after the old ones.
  await produce(broker.bootstrap, TOPIC, COUNT, COUNT + 1)
  const got = await consumeAll(broker.bootstrap, TOPIC, { expected: COUNT + 1, timeoutMs: 30_000 })
  assert.equal(got.length, COUNT + 1)
  assert.equal(got[COUNT]?.offset, String(COUNT))
})

test('a clean stop and start keep the data too', { timeout: TEST_TIMEOUT }, async () => {
  await broker.stop()
  assert.equal(await broker.isRunning(), false)
  await broker.start()
  const got = await consumeAll(broker.bootstrap, TOPIC, { expected: COUNT + 1, timeoutMs: 30_000 })
  assert.equal(got.length, COUNT + 1)
})

test('startBroker tears its broker down when the calling test ends', { timeout: TEST_TIMEOUT }, async (t) => {
  let inner: Broker | undefined
  await t.test('uses a second broker', async () => {
    inner = await startBroker()
    assert.notEqual(inner.port, broker.port)
    assert.equal(await inner.isRunning(), true)
  })
  assert.ok(inner)
  assert.equal(await inner.isRunning(), false)
  assert.equal(await portRefuses(inner.port), true, 'inner broker still listening')
  assert.equal(existsSync(inner.dataDir), false, 'data dir left behind')
  await assert.rejects(inner.start(), /torn down/)
  // The outer broker is untouched by the inner one's teardown.
  assert.equal(await broker.isRunning(), true)
})
