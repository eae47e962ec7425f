// Ceiling: kafkajs on its own, with the best batching it can be given, sending the same
// messages (size, contents, acks, codec) straight to the broker. kahets's Kafka stream is built
// on kafkajs, so kahets ÷ this is what the socket, the actors and kahets's own batching cost
// on top of the client library; ProducerPerformance ÷ this is what kafkajs costs against Java.
//
// One producer, one partition, sendBatch requests of up to BATCH_MESSAGES messages and
// BATCH_BYTES bytes (kahets's own per-topic limits: batch.num.messages default and 1 MiB,
// under the broker's message.max.bytes), IN_FLIGHT requests outstanding (kahets's
// max.in.flight default). Runs as its own process and prints one JSON line.
//
// kafkajs as kahets runs it: with kahets's patch of kafkajs (linear grouping of a batch by
// partition), which has to be loaded before kafkajs itself.
import '../src/streams/kafkajs-patches.ts'
import { CompressionTypes, Kafka, logLevel } from 'kafkajs'
import { registerCodecs } from '../src/streams/kafka-codecs.ts'
import { PayloadSource } from './lib/payload.ts'
import { wallMs } from './lib/proc.ts'

export interface KafkajsConfig {
  bootstrap: string
  topic: string
  count: number
  size: number
  acks: -1 | 1
  compression: 'none' | 'snappy' | 'lz4'
  batchMessages: number
  batchBytes: number
  inFlight: number
}

export interface KafkajsResult {
  sent: number
  startMs: number
  endMs: number
  cpuSeconds: number
  maxRssBytes: number
}

// Per-record framing in a v2 record batch, as kahets's Kafka stream counts it.
const RECORD_OVERHEAD = 32
const CODECS = { none: CompressionTypes.None, snappy: CompressionTypes.Snappy, lz4: CompressionTypes.LZ4 }

async function main (): Promise<void> {
  const cfg = JSON.parse(process.env.BENCH_KAFKAJS ?? '') as KafkajsConfig
  registerCodecs()
  const producer = new Kafka({ clientId: 'kahets-bench-kafkajs', brokers: cfg.bootstrap.split(','), logLevel: logLevel.ERROR })
    .producer({ allowAutoTopicCreation: false, idempotent: false })
  await producer.connect()
  const source = new PayloadSource(cfg.size)
  const perBatch = Math.max(1, Math.min(cfg.batchMessages, Math.floor(cfg.batchBytes / (cfg.size + RECORD_OVERHEAD))))
  let queued = 0
  let acked = 0
  const cpu0 = process.cpuUsage()
  const startMs = wallMs()
  // IN_FLIGHT senders, each sending its next batch as soon as the previous one is acknowledged.
  await Promise.all(Array.from({ length: cfg.inFlight }, async () => {
    while (queued < cfg.count) {
      const n = Math.min(perBatch, cfg.count - queued)
      queued += n
      const messages = Array.from({ length: n }, () => ({ value: source.next() }))
      await producer.sendBatch({ topicMessages: [{ topic: cfg.topic, messages }], acks: cfg.acks, compression: CODECS[cfg.compression] })
      acked += n
    }
  }))
  const endMs = wallMs()
  const cpu = process.cpuUsage(cpu0)
  await producer.disconnect()
  const result: KafkajsResult = { sent: acked, startMs, endMs, cpuSeconds: (cpu.user + cpu.system) / 1e6, maxRssBytes: process.resourceUsage().maxRSS * 1024 }
  process.stdout.write(JSON.stringify(result) + '\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`kafkajs-producer: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
