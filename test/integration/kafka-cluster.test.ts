// kahets on a real 3-node Kafka 4.4.0 cluster (issue 12, docs/kafka.md): a leader killed with
// SIGKILL or stopped in a rolling restart moves the writes to the new leader without the backup,
// per-key order holds, a dead first bootstrap server is skipped, added partitions are used, and
// both clients deliver. One cluster for the whole file (three JVMs on two cores); each test
// leaves all three nodes running and in sync for the next.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { KahetsClient } from '../../clients/node/index.ts'
import { type KahetsProcess, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { consumeAll, kcatRead, tallyByClient, type ClientTally } from '../helpers/broker.ts'
import { startCluster, type Cluster } from '../helpers/cluster.ts'
import { freePort } from '../helpers/ports.ts'
import { assertIdentity, sample, scrape, type Samples } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

let cluster: Cluster
before(async () => { cluster = await startCluster({ version: '4.4.0' }) })

const config = (bootstrap: string, topic: string, extra: Record<string, string> = {}) => ({
  streamsConfigs: {
    kafka: {
      type: 'kafka',
      settings: { 'bootstrap.servers': bootstrap, acks: 'all', 'queue.buffering.max.ms': '10', 'kahets.probe.interval.ms': '500', ...extra },
      backup: { type: 'file', settings: { path: '{dir}/backup' } },
    },
  },
  buckets: [{ id: topic, streams: ['kafka'], batch: 1000, batchTimeout: 20 }],
})

async function startWithMetrics (bootstrap: string, topic: string, extra: Record<string, string> = {}): Promise<{ k: KahetsProcess, base: string }> {
  const k = await startKahetsWithMetrics({ buckets: config(bootstrap, topic, extra) })
  return { k, base: k.metrics }
}

/** Client c sends its messages `c/i` under key `c<c>`: one key per client, so one partition. */
async function sendLoad (k: KahetsProcess, topic: string, clients: number, perClient: number, onProgress?: (sent: number) => Promise<void> | void): Promise<void> {
  let sent = 0
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    const client = await KahetsClient.connect(k.socket)
    for (let i = 0; i < perClient; i++) {
      if (!client.send(topic, `${c}/${i}`, `c${c}`)) await client.drain()
      if (++sent % 1000 === 0) {
        await onProgress?.(sent)
        await new Promise((resolve) => setImmediate(resolve))
      }
    }
    await client.close()
  }))
}

async function settled (base: string, timeoutMs = 120_000): Promise<Samples> {
  return await waitFor(async () => {
    const s = await scrape(base)
    return sample(s, 'kahets_in_flight') === 0 ? s : null
  }, { timeoutMs, intervalMs: 200, what: 'nothing in flight' })
}

/**
 * What reached Kafka: distinct messages, how many arrived more than once, and how many first
 * appear out of their client's (= their key's) order. A duplicate is a later re-send and does
 * not count for order.
 */
async function readBack (topic: string, expected: number): Promise<ClientTally> {
  return tallyByClient(await consumeAll(await cluster.live(), topic, { expected, timeoutMs: 120_000 }))
}

test('the leader of every partition SIGKILLed in the middle of 200,000 messages (acks=all): all in Kafka, per-key order kept, backup unused', async () => {
  const topic = 'cluster_kill_leader'
  // Node 1 leads all three partitions, so killing it moves every leader at once.
  await cluster.createTopic(topic, 3, { leader: 1 })
  assert.deepEqual([...(await cluster.leaders(topic)).values()], [1, 1, 1])
  const { k, base } = await startWithMetrics(cluster.bootstrap, topic)
  let killed: Promise<void> | null = null
  await sendLoad(k, topic, 8, 25_000, (sent) => {
    if (sent >= 60_000 && killed === null) killed = cluster.node(1).kill()
  })
  await killed
  const m = await settled(base)
  const terms = assertIdentity(m, topic, 'kafka')
  assert.equal(terms.received, 200_000)
  assert.equal(terms.dropped, 0)
  assert.equal(terms.backedUp, 0, 'the backup was not used while two nodes could take acks=all writes')
  assert.equal(terms.delivered, 200_000)
  assert.equal(sample(m, 'kahets_stream_mode', { stream: 'kafka', mode: 'normal' }), 1)
  assert.ok(sample(m, 'kahets_kafka_retries_total', { stream: 'kafka' }) > 0, 'requests were retried on the new leaders')
  const newLeaders = [...(await cluster.leaders(topic)).values()]
  assert.ok(newLeaders.every((l) => l === 2 || l === 3), `leaders moved off node 1: ${newLeaders.join(',')}`)

  const resentUnknown = sample(m, 'kahets_kafka_resent_unknown_total', { stream: 'kafka' })
  const { ids, duplicates, outOfOrder } = await readBack(topic, 200_000)
  assert.equal(ids.size, 200_000, 'no message missing')
  assert.equal(outOfOrder, 0, 'each key\'s messages first reach Kafka in the order sent')
  // Only a request whose outcome Kafka never reported (the leader died with it) may be there twice.
  assert.ok(duplicates <= resentUnknown, `duplicates ${duplicates} ≤ messages re-sent without knowing ${resentUnknown}`)
  assert.equal(await k.stop(), 0)

  await cluster.node(1).start()
  await cluster.waitInSync(topic)
})

test('kafkajs (kahets.client=kafkajs): the leader SIGKILLed in the middle of 50,000 messages: all in Kafka, order kept, backup unused', async () => {
  const topic = 'cluster_kill_kafkajs'
  await cluster.createTopic(topic, 3, { leader: 2 })
  const { k, base } = await startWithMetrics(cluster.bootstrap, topic, { 'kahets.client': 'kafkajs' })
  let killed: Promise<void> | null = null
  await sendLoad(k, topic, 4, 12_500, (sent) => {
    if (sent >= 15_000 && killed === null) killed = cluster.node(2).kill()
  })
  await killed
  const m = await settled(base)
  const terms = assertIdentity(m, topic, 'kafka')
  assert.equal(terms.delivered, 50_000, JSON.stringify(terms))
  assert.equal(terms.backedUp, 0)
  const resentUnknown = sample(m, 'kahets_kafka_resent_unknown_total', { stream: 'kafka' })
  const { ids, duplicates, outOfOrder } = await readBack(topic, 50_000)
  assert.equal(ids.size, 50_000)
  assert.equal(outOfOrder, 0)
  assert.ok(duplicates <= resentUnknown, `duplicates ${duplicates} ≤ ${resentUnknown}`)
  assert.equal(await k.stop(), 0)
  await cluster.node(2).start()
  await cluster.waitInSync(topic)
})

test('rolling restart of all three nodes under load: nothing lost, backup unused', async () => {
  const topic = 'cluster_rolling'
  await cluster.createTopic(topic, 3)
  const { k, base } = await startWithMetrics(cluster.bootstrap, topic)
  // Paced load that lasts through the three restarts.
  let stop = false
  let sent = 0
  const load = (async () => {
    const clients = await Promise.all(Array.from({ length: 4 }, () => KahetsClient.connect(k.socket)))
    while (!stop) {
      for (const [c, client] of clients.entries()) {
        for (let j = 0; j < 100; j++) {
          const i = sent++
          if (!client.send(topic, `${c}/${i}`, `c${c}`)) await client.drain()
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    await Promise.all(clients.map((c) => c.close()))
  })()
  for (const node of cluster.nodes) {
    await node.stop()
    await node.start()
    await cluster.waitInSync(topic)
  }
  stop = true
  await load
  const m = await settled(base)
  const terms = assertIdentity(m, topic, 'kafka')
  assert.equal(terms.received, sent)
  assert.equal(terms.dropped, 0)
  assert.equal(terms.backedUp, 0, 'the backup was not used')
  const resentUnknown = sample(m, 'kahets_kafka_resent_unknown_total', { stream: 'kafka' })
  const { ids, duplicates, outOfOrder } = await readBack(topic, sent)
  assert.equal(ids.size, sent, `all ${sent} messages in Kafka`)
  assert.equal(outOfOrder, 0)
  // Leaders move one node at a time over all three: a request that reached several leaders
  // is retried only for the partitions whose leader did not acknowledge it.
  assert.ok(duplicates <= resentUnknown, `duplicates ${duplicates} ≤ messages re-sent without knowing ${resentUnknown}`)
  assert.equal(await k.stop(), 0)
})

test('bootstrap.servers whose first broker is dead: kahets starts and delivers through the others', async () => {
  const topic = 'cluster_bootstrap'
  const dead = `127.0.0.1:${await freePort()}`
  const { k, base } = await startWithMetrics(`${dead},${cluster.bootstrap}`, topic)
  await sendLoad(k, topic, 2, 5000)
  const m = await settled(base)
  const terms = assertIdentity(m, topic, 'kafka')
  assert.equal(terms.delivered, 10_000)
  assert.equal(terms.backedUp, 0)
  // kcat (librdkafka) reads it back, over the same dead-first list.
  const values = (await kcatRead(`${dead},${cluster.bootstrap}`, topic, { format: '%s\n' })).toString().trim().split('\n')
  assert.equal(new Set(values).size, 10_000)
  assert.equal(await k.stop(), 0)
})

test('partitions added while kahets runs are used after topic.metadata.refresh.interval.ms', async () => {
  const topic = 'cluster_grow'
  await cluster.createTopic(topic, 1)
  const { k, base } = await startWithMetrics(cluster.bootstrap, topic, { 'topic.metadata.refresh.interval.ms': '1000' })
  // 64 keys: with 3 partitions, crc32 puts some on each.
  const sendKeys = async (round: number): Promise<void> => {
    const client = await KahetsClient.connect(k.socket)
    for (let i = 0; i < 640; i++) client.send(topic, `${round}/${i}`, `key-${i % 64}`)
    await client.close()
  }
  await sendKeys(0)
  await settled(base)
  await cluster.addPartitions(topic, 3)
  // Past the refresh interval, a new round goes to all three partitions.
  await waitFor(async () => {
    await sendKeys(1)
    await settled(base)
    const got = await consumeAll(await cluster.live(), topic, { expected: Infinity, timeoutMs: 3000 })
    return new Set(got.map((g) => g.partition)).size === 3
  }, { timeoutMs: 60_000, intervalMs: 1000, what: 'messages in the added partitions' })
  const m = await settled(base)
  assert.equal(assertIdentity(m, topic, 'kafka').backedUp, 0)
  assert.equal(await k.stop(), 0)
})

test('kafkajs (kahets.client=kafkajs) delivers to Kafka 4.4.0 too', async () => {
  const topic = 'cluster_kafkajs'
  const { k, base } = await startWithMetrics(cluster.bootstrap, topic, { 'kahets.client': 'kafkajs' })
  await sendLoad(k, topic, 2, 5000)
  const m = await settled(base)
  const terms = assertIdentity(m, topic, 'kafka')
  assert.equal(terms.delivered, 10_000, k.output().slice(-2000))
  const { ids, outOfOrder } = await readBack(topic, 10_000)
  assert.equal(ids.size, 10_000)
  assert.equal(outOfOrder, 0)
  assert.equal(await k.stop(), 0)
})
