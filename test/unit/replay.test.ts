// Replay (src/actors/replay.ts) over real temp files and a fake stream: refused records are
// counted and set aside or respooled, the rest drains, and a file replayed whole is deleted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Replay } from '../../src/actors/replay.ts'
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
    progress: { filesLeft: 0, bytesLeft: 0, tornFrames: 0, corruptRecords: 0, corruptBytes: 0 },
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
