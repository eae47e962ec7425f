// Migrating from kahego (docs/migrating-from-kahego.md#backup-files): kahego never replays its
// backups, so a host moving to kahets may hold `.bckstm` files kahego wrote while Kafka was
// down. With kahego's buckets file unchanged, kahets replays the ones its backup template
// names at start and deletes them once Kafka has them; a file kahego named by its default
// template (the bare bucket name) is not a backup kahets knows, and `kahets replay` sends it.
// The files are written here byte for byte as kahego's Message.Serialize writes them.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { makeTempDir, startKahets } from '../helpers/kahets.ts'
import { consumeAll, startBroker, type Broker } from '../helpers/broker.ts'
import { listFiles } from '../helpers/frames.ts'
import { waitFor } from '../helpers/wait.ts'

let broker: Broker
before(async () => { broker = await startBroker() })

/** kahego's src/streams/stream.go Serialize: u32le length, u8 bucket length, bucket, u8 key length, key, data. */
function kahegoMessage (bucket: string, key: string, data: string): Buffer {
  const b = Buffer.from(bucket)
  const k = Buffer.from(key)
  const d = Buffer.from(data)
  const head = Buffer.alloc(4)
  head.writeUInt32LE(d.length + k.length + b.length + 2)
  return Buffer.concat([head, Buffer.from([b.length]), b, Buffer.from([k.length]), k, d])
}

const kahegoFile = (bucket: string, tag: string, n: number): Buffer =>
  Buffer.concat(Array.from({ length: n }, (_, i) => kahegoMessage(bucket, i % 3 === 0 ? '' : `key${i}`, `${tag}/${i}`)))

// kahego's own example (test/fixtures/kahego-buckets.json) with this test's broker and folders:
// settings as strings, no kahets.* key, kahego's backup template.
const kahegoBuckets = (bootstrap: string): object => ({
  streamsConfigs: {
    kafka_01: {
      type: 'kafka',
      slice: 1.0,
      settings: { 'bootstrap.servers': bootstrap, acks: 'all', 'compression.codec': 'snappy', 'batch.num.messages': '50000', 'queue.buffering.max.messages': '500000', 'queue.buffering.max.ms': '1000' },
      backup: { type: 'file', settings: { path: '{dir}/backup/', maxFiles: '10', sizeRotate: '10MB', fileNameTemplate: '{bucket}/{ts}.bckstm' } },
    },
  },
  buckets: [{ id: 'kahego_requests', streams: ['kafka_01'], batch: 10000, batchTimeout: 1000 }],
  defaultBucket: { id: 'default', streams: ['kafka_01'], batch: 1000, batchTimeout: 1000 },
})

test('kahego\'s .bckstm backups named by its template are replayed at start, oldest first, then deleted; a file named by kahego\'s default template goes with kahets replay', async () => {
  const dir = await makeTempDir()
  // Two files of a listed bucket, one of a bucket only defaultBucket serves.
  await mkdir(join(dir, 'backup', 'kahego_requests'), { recursive: true })
  await mkdir(join(dir, 'backup', 'kahego_other'), { recursive: true })
  await writeFile(join(dir, 'backup', 'kahego_requests', '1700000000.bckstm'), kahegoFile('kahego_requests', 'a', 3000))
  await writeFile(join(dir, 'backup', 'kahego_requests', '1700000060.bckstm'), kahegoFile('kahego_requests', 'b', 2000))
  await writeFile(join(dir, 'backup', 'kahego_other', '1700000030.bckstm'), kahegoFile('kahego_other', 'c', 500))
  // kahego without fileNameTemplate names its file after the bucket, appended to across rotations.
  await mkdir(join(dir, 'old'), { recursive: true })
  const bare = join(dir, 'old', 'kahego_bare')
  await writeFile(bare, kahegoFile('kahego_bare', 'd', 700))

  const k = await startKahets({ buckets: kahegoBuckets(broker.bootstrap), dir })
  await waitFor(async () => (await listFiles(join(dir, 'backup'))).length === 0, { timeoutMs: 90_000, what: 'kahego\'s backup files replayed and deleted' })
  const requests = await consumeAll(broker.bootstrap, 'kahego_requests', { expected: 5000, timeoutMs: 60_000 })
  assert.deepEqual(requests.map((m) => m.value!.toString()), [...Array.from({ length: 3000 }, (_, i) => `a/${i}`), ...Array.from({ length: 2000 }, (_, i) => `b/${i}`)], 'every message, the older file first, in order')
  assert.equal(requests[1]!.key?.toString(), 'key1', 'keys kept')
  assert.equal(requests[0]!.key, null, 'an empty key is a null key, as kahego sent it')
  const other = await consumeAll(broker.bootstrap, 'kahego_other', { expected: 500, timeoutMs: 60_000 })
  assert.equal(other.length, 500, 'a bucket defaultBucket serves is replayed too')
  assert.ok(existsSync(bare), 'a file outside the backup template is not touched')

  const out = await new Promise<string>((resolve, reject) => {
    execFile(join(import.meta.dirname, '../../bin/kahets'), ['replay', bare], { env: { ...process.env, SOCKET: k.socket } }, (err, stdout, stderr) => { if (err) reject(new Error(`${err.message}\n${stderr}`)); else resolve(stdout) })
  })
  assert.match(out, /700 frames sent/)
  const sent = await consumeAll(broker.bootstrap, 'kahego_bare', { expected: 700, timeoutMs: 60_000 })
  assert.deepEqual(sent.map((m) => m.value!.toString()), Array.from({ length: 700 }, (_, i) => `d/${i}`))
  assert.equal(await k.stop(), 0)
})
