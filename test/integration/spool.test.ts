// The backup spool (issue 10, finding 3): kahets writes its backup as checksummed records;
// a backup file damaged in the middle replays its good records and only those, the damage is
// counted, and the file is kept in quarantine/ instead of deleted. `kahets inspect` and
// `kahets replay` read both formats. Real processes, a real broker, a consumer kahets did
// not write.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import { KahetsClient } from '../../clients/node/index.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { BIN, makeTempDir, startKahets, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { consumeAll, startBroker } from '../helpers/broker.ts'
import { listFiles } from '../helpers/frames.ts'
import { freePort } from '../helpers/ports.ts'
import { assertIdentity, sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

const run = promisify(execFile)

async function cli (args: string[], env: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await run(BIN, args, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

const kafkaConfig = (bootstrap: string, topic: string) => ({
  streamsConfigs: {
    kafka: {
      type: 'kafka',
      settings: { 'bootstrap.servers': bootstrap, acks: 'all', 'queue.buffering.max.ms': '10', 'kahets.probe.interval.ms': '500' },
      // The default fileNameTemplate: {bucket}{PS}{ts}-{rand}.frames
      backup: { type: 'file', settings: { path: '{dir}/backup' } },
    },
  },
  buckets: [{ id: topic, streams: ['kafka'], batch: 100, batchTimeout: 20 }],
})

/** Offsets of the records of a spool file (walking the length fields of an undamaged one). */
function recordOffsets (bytes: Buffer): number[] {
  const out: number[] = []
  for (let at = 16; at < bytes.length; at += 4 + bytes.readUInt32LE(at)) out.push(at)
  return out
}

test('a damaged backup spool: the good frames reach Kafka, the damaged ones do not, counted, the file quarantined', async () => {
  const topic = 'spool_damage'
  const N = 1000
  const broker = await startBroker()
  await broker.stop()
  const dir = await makeTempDir()
  const config = kafkaConfig(broker.bootstrap, topic)
  const first = await startKahetsWithMetrics({ buckets: config, dir })
  const client = await KahetsClient.connect(first.socket)
  for (let i = 0; i < N; i++) client.send(topic, `message ${i}`, `k${i}`)
  await client.close()
  await waitFor(async () => sample(await scrape(first.metrics), 'kahets_backed_up_total', { bucket: topic }) === N ? true : null, { timeoutMs: 30_000, what: 'all frames in the backup' })
  assert.equal(await first.stop(), 0)

  const files = await listFiles(join(dir, 'backup'))
  assert.ok(files.length >= 1)
  // Damage the middle of the largest file: a length field off by -10 and a flipped payload byte.
  const contents = await Promise.all(files.map(async (f) => ({ file: f, bytes: await readFile(f) })))
  for (const { bytes } of contents) assert.equal(bytes.subarray(0, 8).toString('latin1'), 'KHTSPOOL', 'the backup is a spool')
  const target = contents.sort((a, b) => b.bytes.length - a.bytes.length)[0]!
  const offsets = recordOffsets(target.bytes)
  assert.ok(offsets.length >= 100, `${offsets.length} records in the largest file`)
  const payloadAt = (at: number): string => {
    const frame = at + 16
    const b = target.bytes[frame + 4]!
    const k = target.bytes[frame + 5 + b]!
    return target.bytes.subarray(frame + 6 + b + k, at + 4 + target.bytes.readUInt32LE(at)).toString()
  }
  const cutAt = offsets[Math.floor(offsets.length * 0.3)]!
  const flipAt = offsets[Math.floor(offsets.length * 0.7)]!
  const lost = [payloadAt(cutAt), payloadAt(flipAt)]
  target.bytes.writeUInt32LE(target.bytes.readUInt32LE(cutAt) - 10, cutAt)
  target.bytes[flipAt + 30] ^= 0x04
  await writeFile(target.file, target.bytes)

  await broker.start()
  const port2 = await freePort()
  const second = await startKahets({ buckets: config, dir, env: { METRICS: `127.0.0.1:${port2}` } })
  const quarantined = join(dir, 'backup', 'quarantine', relative(join(dir, 'backup'), target.file))
  await waitFor(async () => existsSync(quarantined) && (await listFiles(join(dir, 'backup'))).length === 1 ? true : null, { timeoutMs: 60_000, what: 'the replay, the damaged file in quarantine' })
  assert.ok(!existsSync(target.file))
  assert.deepEqual(await readFile(quarantined), target.bytes, 'the quarantined file is the damaged file, untouched')

  const expected = Array.from({ length: N }, (_, i) => `message ${i}`).filter((p) => !lost.includes(p))
  const got = await consumeAll(broker.bootstrap, topic, { expected: N - 2, timeoutMs: 60_000 })
  assert.deepEqual(got.map((m) => m.value!.toString()).sort(), [...expected].sort(), 'every good frame once, the two damaged ones not, nothing wrong')
  for (const m of got) assert.equal(m.key!.toString(), `k${m.value!.toString().split(' ')[1]!}`)

  const s = await scrape(`http://127.0.0.1:${port2}`)
  assert.equal(sample(s, 'kahets_spool_corrupt_records_total', { stream: 'kafka' }), 2)
  assert.ok(sample(s, 'kahets_spool_corrupt_bytes_total', { stream: 'kafka' }) > 0)
  assert.equal(sample(s, 'kahets_replayed_total', { bucket: topic, stream: 'kafka' }), N - 2)
  assert.equal(sample(s, 'kahets_replay_torn_frames_total', { stream: 'kafka' }), 0)
  assertIdentity(s, topic, 'kafka')
  const log = second.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('backup file damaged'))
  assert.ok(log !== undefined, second.output())
  assert.equal(log.level, 50, 'error level')
  assert.equal(log.corruptRecords, 2)
  assert.equal((log.damaged as string[]).length, 2)
  assert.equal(log.quarantined, quarantined)

  // Back to normal delivery: the replay listed the backup again after the quarantine (and
  // once more with new messages held) and did not pick the quarantined file up.
  await waitFor(async () => sample(await scrape(`http://127.0.0.1:${port2}`), 'kahets_stream_mode', { stream: 'kafka', mode: 'normal' }) === 1 ? true : null, { what: 'normal delivery' })
  assert.deepEqual(await listFiles(join(dir, 'backup')), [quarantined])
  assert.equal(sample(await scrape(`http://127.0.0.1:${port2}`), 'kahets_replayed_total', { bucket: topic }), N - 2)
  assert.equal(await second.stop(), 0)

  // The operator's view of the quarantined file.
  const inspected = await cli(['inspect', quarantined])
  assert.equal(inspected.code, 1, inspected.stderr)
  assert.match(inspected.stdout, /format: spool/)
  assert.match(inspected.stdout, new RegExp(`records: ${N - 2}\\b`))
  assert.match(inspected.stdout, new RegExp(`buckets: ${topic} ${N - 2}\\b`))
  assert.match(inspected.stdout, /oldest: \d{4}-\d\d-\d\dT/)
  assert.match(inspected.stdout, /DAMAGED: 2 ranges/)
  const dry = await cli(['replay', '--dry-run', quarantined])
  assert.equal(dry.code, 1)
  assert.match(dry.stdout, new RegExp(`spool, ${N - 2} frames verified \\(dry run, not sent\\), DAMAGED: 2 ranges`))
  assert.match(dry.stderr, new RegExp(`replay: file 1/1, ${target.bytes.length} of ${target.bytes.length} bytes, ${N - 2} frames`))
  await broker.stop()
})

test('kahets inspect: plain frames (kahego\'s .bckstm) and --dump as JSON lines, UTF-8 or base64', async () => {
  const dir = await makeTempDir()
  const file = join(dir, 'old.bckstm')
  await writeFile(file, encodeFrames([
    { bucket: 'a', key: 'k1', payload: 'héllo' },
    { bucket: 'b', key: null, payload: Buffer.from([0xff, 0xfe, 0x00]) },
    { bucket: 'a', key: Buffer.from([0xc3]), payload: '' },
  ]))
  const plain = await cli(['inspect', file])
  assert.equal(plain.code, 0, plain.stderr)
  assert.match(plain.stdout, /format: plain frames/)
  assert.match(plain.stdout, /records: 3\n/)
  assert.match(plain.stdout, /buckets: a 2, b 1\n/)
  assert.match(plain.stdout, /damaged: none/)
  assert.doesNotMatch(plain.stdout, /oldest/)

  const dumped = await cli(['inspect', '--dump', file])
  assert.equal(dumped.code, 0)
  assert.deepEqual(dumped.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown), [
    { bucket: 'a', key: 'k1', payload: 'héllo', payloadEncoding: 'utf8' },
    { bucket: 'b', key: null, payload: Buffer.from([0xff, 0xfe, 0x00]).toString('base64'), payloadEncoding: 'base64' },
    { bucket: 'a', key: 'ww==', keyEncoding: 'base64', payload: '', payloadEncoding: 'utf8' },
  ])
  assert.match(dumped.stderr, /format: plain frames/, 'with --dump the summary goes to stderr')

  await writeFile(file, Buffer.concat([await readFile(file), Buffer.from([0xff, 0xff, 0xff, 0x7f, 0x01])]))
  const damaged = await cli(['inspect', file])
  assert.equal(damaged.code, 1)
  assert.match(damaged.stdout, /DAMAGED: 1 range/)
  assert.equal((await cli(['inspect', join(dir, 'missing')])).code, 1)
  assert.equal((await cli(['inspect'])).code, 2)
  assert.equal((await cli(['run', '--dump'])).code, 2)
})

test('kahets replay sends both formats through the running kahets; --dry-run sends nothing', async () => {
  const dir = await makeTempDir()
  const k = await startKahets({
    dir,
    buckets: { streamsConfigs: { f: { type: 'file', settings: { path: '{dir}/out', fileNameTemplate: '{bucket}.out' } } }, buckets: [{ id: 'r', streams: ['f'], batch: 10, batchTimeout: 20 }] },
  })
  // A spool as a backup stream writes it, and a plain frame file.
  const { FileStream } = await import('../../src/streams/file-stream.ts')
  const { FrameOrigin, WireFrame } = await import('../../src/protocol/frame.ts')
  const wire = encodeFrames(Array.from({ length: 50 }, (_, i) => ({ bucket: 'r', payload: `s${i}` })))
  const origin = new FrameOrigin(wire, Date.now())
  const frames = []
  for (let at = 0; at < wire.length;) { const end = at + 4 + wire.readUInt32LE(at); frames.push(new WireFrame('r', origin, at, end)); at = end }
  const backup = new FileStream({ path: join(dir, 'spool'), fileNameTemplate: '{bucket}.frames', sizeRotate: 1 << 20, maxFiles: 0, fsync: true, maxOpenFiles: 256 }, { format: 'spool' })
  await backup.write('r', frames)
  await backup.close()
  await mkdir(join(dir, 'plain'))
  await writeFile(join(dir, 'plain', 'r.bckstm'), encodeFrames(Array.from({ length: 30 }, (_, i) => ({ bucket: 'r', payload: `p${i}` }))))
  const files = [join(dir, 'spool', 'r.frames'), join(dir, 'plain', 'r.bckstm')]

  const dry = await cli(['replay', '--dry-run', ...files], { SOCKET: join(dir, 'nowhere.sock') })
  assert.equal(dry.code, 0, dry.stderr)
  assert.match(dry.stdout, /r\.frames: spool, 50 frames verified/)
  assert.match(dry.stdout, /r\.bckstm: frames, 30 frames verified/)
  assert.match(dry.stdout, /verified 2 files, 80 frames/)
  assert.match(dry.stderr, /replay: file 2\/2, \d+ of \d+ bytes, 80 frames/)

  const sent = await cli(['replay', ...files], { SOCKET: k.socket })
  assert.equal(sent.code, 0, sent.stderr)
  assert.match(sent.stdout, /replayed 2 files, 80 frames/)
  assert.equal(await k.stop(), 0)
  const { decodeAll } = await import('../helpers/frames.ts')
  const out = decodeAll(await readFile(join(dir, 'out', 'r.out'))).frames.map((f) => f.payload.toString())
  assert.deepEqual(out, [...Array.from({ length: 50 }, (_, i) => `s${i}`), ...Array.from({ length: 30 }, (_, i) => `p${i}`)], 'the file stream got plain frames, in order')
})

test('a spool with a torn last record (the crash case) replays whole, counts the torn record, and is deleted, not quarantined', async () => {
  const topic = 'spool_torn'
  const broker = await startBroker()
  const dir = await makeTempDir()
  const { FileStream } = await import('../../src/streams/file-stream.ts')
  const { FrameOrigin, WireFrame } = await import('../../src/protocol/frame.ts')
  const wire = encodeFrames(Array.from({ length: 200 }, (_, i) => ({ bucket: topic, payload: `t${i}` })))
  const origin = new FrameOrigin(wire, Date.now())
  const frames = []
  for (let at = 0; at < wire.length;) { const end = at + 4 + wire.readUInt32LE(at); frames.push(new WireFrame(topic, origin, at, end)); at = end }
  // Written as the backup stream writes it, then cut inside its last record.
  const backup = new FileStream({ path: join(dir, 'backup'), fileNameTemplate: '{bucket}{PS}{ts}-{rand}.frames', sizeRotate: 1 << 20, maxFiles: 0, fsync: true, maxOpenFiles: 256 }, { format: 'spool' })
  await backup.write(topic, frames)
  await backup.close()
  const [file] = await listFiles(join(dir, 'backup'))
  const bytes = await readFile(file!)
  await writeFile(file!, bytes.subarray(0, bytes.length - 5))
  const k = await startKahetsWithMetrics({ buckets: kafkaConfig(broker.bootstrap, topic), dir })
  await waitFor(async () => (await listFiles(join(dir, 'backup'))).length === 0 ? true : null, { timeoutMs: 60_000, what: 'the file replayed and removed' })
  const got = await consumeAll(broker.bootstrap, topic, { expected: 199, timeoutMs: 30_000 })
  assert.deepEqual(got.map((m) => m.value!.toString()), Array.from({ length: 199 }, (_, i) => `t${i}`))
  const s = await scrape(k.metrics)
  assert.equal(sample(s, 'kahets_replay_torn_frames_total', { stream: 'kafka' }), 1)
  assert.equal(sample(s, 'kahets_spool_corrupt_records_total', { stream: 'kafka' }), 0)
  assert.ok(!existsSync(join(dir, 'backup', 'quarantine')))
  assert.equal(await k.stop(), 0)
  await broker.stop()
})
