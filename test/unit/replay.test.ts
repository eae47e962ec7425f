// Replay (src/actors/replay.ts) over real temp files and a fake stream: refused records are
// counted and set aside or respooled, the rest drains, and a file replayed whole is deleted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Replay, StuckFiles } from '../../src/actors/replay.ts'
import { ErrorCodes, KahetsError } from '../../src/errors.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { Stats } from '../../src/stats.ts'
import { FakeStream } from '../helpers/fake-stream.ts'

const log = pino({ level: 'silent' })

async function setup (t: import('node:test').TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'kahets-replay-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'backup.frames')
  await writeFile(file, encodeFrames([
    { bucket: 'good', payload: 'g0' }, { bucket: 'bad', payload: 'b0' }, { bucket: 'good', payload: 'g1' }, { bucket: 'bad', payload: 'b1' },
  ]))
  const stream = new FakeStream()
  const stats = new Stats()
  const respooled: string[] = []
  let files = [file]
  const replay = new Replay({
    streamId: 's',
    stream,
    backup: { rotate: async () => {}, closedFiles: async () => { const f = files; files = []; return f }, quarantine: async () => null },
    respool: (bucket, frames) => { for (const f of frames) respooled.push(`${bucket}:${f.payload.toString()}`) },
    stats,
    log,
    bytesPerSec: 1e9,
    progress: { filesLeft: 0, bytesLeft: 0, bytesReplayed: 0, tornFrames: 0, corruptRecords: 0, corruptBytes: 0, stuckFiles: 0 },
    stuck: new StuckFiles(),
    abandoned: () => false,
  })
  return { file, stream, stats, respooled, replay }
}

const exists = (f: string): Promise<boolean> => access(f).then(() => true, () => false)

test('a destination refused for good: its records are counted and set aside, the rest replayed, the file deleted', async (t) => {
  const { file, stream, stats, respooled, replay } = await setup(t)
  stream.refuse.set('bad', new KahetsError(ErrorCodes.DESTINATION_REJECTED, 'ENAMETOOLONG', { scope: 'destination', retriable: false }))
  await replay.pass()
  assert.deepEqual(stream.written.get('good'), ['g0', 'g1'])
  assert.equal(stats.bucket('good').flow('s').replayed, 2)
  assert.equal(stats.bucket('bad').flow('s').replayRefused.get('destination_rejected'), 2)
  assert.deepEqual(respooled, [])
  assert.equal(await exists(file), false)
})

test('a destination refused for now: its records go back to the backup, the rest replayed, the file deleted', async (t) => {
  const { file, stream, stats, respooled, replay } = await setup(t)
  stream.refuse.set('bad', new KahetsError(ErrorCodes.DESTINATION_REJECTED, 'EACCES', { scope: 'destination', retriable: true }))
  await replay.pass()
  assert.deepEqual(stream.written.get('good'), ['g0', 'g1'])
  assert.deepEqual(respooled, ['bad:b0', 'bad:b1'])
  assert.deepEqual([...replay.refusedForNow], ['bad'])
  assert.equal(replay.respooledFrames, 2)
  assert.equal(stats.bucket('good').flow('s').replayed, 2)
  assert.equal(await exists(file), false)
})

test('a stream failure stops the replay and keeps the file for the next one', async (t) => {
  const { file, stream, replay } = await setup(t)
  stream.down = true
  await assert.rejects(replay.pass(), (e: unknown) => e instanceof KahetsError && e.code === ErrorCodes.STREAM_WRITE_FAILED)
  assert.equal(await exists(file), true)
})

test('progress moves in bytes as each chunk of a file is replayed, not once per file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kahets-replay-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  // One 3.3 MB file: the reader takes 1 MiB chunks, so the stream sees four writes.
  const file = join(dir, 'big.frames')
  const bytes = encodeFrames(Array.from({ length: 3300 }, (_, i) => ({ bucket: 'b', payload: Buffer.alloc(1000, i % 256) })))
  await writeFile(file, bytes)
  const progress = { filesLeft: 0, bytesLeft: 0, bytesReplayed: 0, tornFrames: 0, corruptRecords: 0, corruptBytes: 0, stuckFiles: 0 }
  const seen: Array<[number, number]> = []
  const stream = new FakeStream()
  const write = stream.write.bind(stream)
  stream.write = async (bucket, frames) => {
    seen.push([progress.bytesLeft, progress.bytesReplayed])
    return await write(bucket, frames)
  }
  let files = [file]
  const replay = new Replay({
    streamId: 's',
    stream,
    backup: { rotate: async () => {}, closedFiles: async () => { const f = files; files = []; return f }, quarantine: async () => null },
    respool: () => { throw new Error('nothing is refused') },
    stats: new Stats(),
    log,
    bytesPerSec: 1e9,
    progress,
    abandoned: () => false,
    stuck: new StuckFiles(),
  })
  await replay.pass()
  const MiB = 1024 * 1024
  assert.deepEqual(seen, [[bytes.length, 0], [bytes.length - MiB, MiB], [bytes.length - 2 * MiB, 2 * MiB], [bytes.length - 3 * MiB, 3 * MiB]])
  assert.deepEqual([progress.bytesLeft, progress.bytesReplayed, progress.filesLeft], [0, bytes.length, 0])
})

test('a damaged file that cannot be quarantined is left in place, not read again, and moved once the backoff passed; other files replay', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kahets-replay-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const damaged = join(dir, 'a-damaged.frames')
  const good = join(dir, 'b-good.frames')
  // A length no frame can have after a whole one: the file is not read whole.
  await writeFile(damaged, Buffer.concat([encodeFrames([{ bucket: 'x', payload: 'd0' }]), Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3])]))
  await writeFile(good, encodeFrames([{ bucket: 'x', payload: 'g0' }]))
  const stream = new FakeStream()
  const progress = { filesLeft: 0, bytesLeft: 0, bytesReplayed: 0, tornFrames: 0, corruptRecords: 0, corruptBytes: 0, stuckFiles: 0 }
  let quarantineWorks = false
  const moved: string[] = []
  const stuck = new StuckFiles(50)
  const replay = (): Replay => new Replay({
    streamId: 's',
    stream,
    backup: {
      rotate: async () => {},
      closedFiles: async () => [damaged, good].filter((f) => !moved.includes(f) && existsSync(f)),
      quarantine: async (f) => {
        if (!quarantineWorks) throw Object.assign(new Error('ENOTDIR: not a directory'), { code: 'ENOTDIR' })
        moved.push(f)
        return `${f}.quarantined`
      },
    },
    respool: () => {},
    stats: new Stats(),
    log,
    bytesPerSec: 1e9,
    progress,
    abandoned: () => false,
    stuck,
  })
  await replay().pass()
  assert.deepEqual(stream.written.get('x'), ['d0', 'g0'], 'the damaged file\'s good record, then the next file')
  assert.equal(existsSync(good), false)
  assert.equal(existsSync(damaged), true, 'left in place')
  assert.equal(progress.stuckFiles, 1)
  await replay().pass()
  await replay().pass()
  assert.deepEqual(stream.written.get('x'), ['d0', 'g0'], 'not read again')
  quarantineWorks = true
  await new Promise((resolve) => setTimeout(resolve, 60))
  await replay().pass()
  assert.deepEqual(moved, [damaged])
  assert.equal(progress.stuckFiles, 0)
  assert.deepEqual(stream.written.get('x'), ['d0', 'g0'])
})
