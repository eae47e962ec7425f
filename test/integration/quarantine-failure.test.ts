// A damaged backup file that cannot be moved to quarantine/ (docs/guarantees.md#replay): the
// replay must not loop on it (re-sending its good records at every probe), must log and
// count it, keep replaying the other files, and move it once quarantine/ works again.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { KahetsClient } from '../../clients/node/index.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { encodeSpoolRecords, spoolHeader } from '../../src/protocol/spool.ts'
import { FILES_WITH_BACKUP, makeTempDir, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { decodeAll, readFrameFiles } from '../helpers/frames.ts'
import { sample, scrape } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

function spool (bucket: string, payloads: string[]): Buffer {
  const frames = decodeAll(encodeFrames(payloads.map((payload) => ({ bucket, payload })))).frames
  return Buffer.concat([spoolHeader(), ...encodeSpoolRecords(frames)])
}

test('a damaged backup file whose quarantine/ is a file: replayed once, left in place, counted; other files replay; moved once quarantine/ works', { timeout: 120_000 }, async () => {
  const dir = await makeTempDir()
  const backup = join(dir, 'backup')
  await mkdir(join(backup, 'events'), { recursive: true })
  const damagedFile = join(backup, 'events', '1700000000-AAAAAAAA.frames')
  const goodFile = join(backup, 'events', '1700000001-BBBBBBBB.frames')
  const damaged = spool('events', Array.from({ length: 100 }, (_, i) => `d${i}`))
  // Flip a byte inside the 50th record's payload: its CRC fails, the rest verifies.
  let at = 16
  for (let i = 0; i < 50; i++) at += 4 + damaged.readUInt32LE(at)
  damaged[at + 4 + damaged.readUInt32LE(at) - 1]! ^= 0x01
  await writeFile(damagedFile, damaged)
  await writeFile(goodFile, spool('events', Array.from({ length: 100 }, (_, i) => `g${i}`)))
  // Where quarantine/ should be, a file: the move fails (ENOTDIR / EEXIST).
  await writeFile(join(backup, 'quarantine'), 'not a folder')

  const k = await startKahetsWithMetrics({
    dir,
    buckets: {
      streamsConfigs: FILES_WITH_BACKUP,
      buckets: [{ id: 'events', streams: ['files'], batch: 50, batchTimeout: 20 }],
    },
  })
  const base = k.metrics
  const primary = async (): Promise<string[]> => (await readFrameFiles(join(dir, 'primary'))).flatMap((f) => f.frames.map((x) => x.payload.toString()))
  await waitFor(async () => !existsSync(goodFile) && (await primary()).length === 199, { timeoutMs: 30_000, what: 'both files replayed' })
  const m = await scrape(base)
  assert.equal(sample(m, 'kahets_replay_stuck_files', { stream: 'files' }), 1)
  assert.equal(sample(m, 'kahets_spool_corrupt_records_total', { stream: 'files' }), 1)
  assert.ok(existsSync(damagedFile), 'the damaged file stays where it was')
  const stuckLog = k.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('backup file replayed but it cannot be moved to quarantine/'))
  assert.ok(stuckLog !== undefined, 'logged')
  assert.equal(stuckLog.file, damagedFile)

  // Several probe intervals later: not replayed again (no duplicates), no hot loop, and live
  // messages flow.
  const client = await KahetsClient.connect(k.socket)
  for (let i = 0; i < 10; i++) client.send('events', `live${i}`)
  await client.close()
  await delay(3000)
  const after = await primary()
  assert.equal(after.length, 209)
  assert.equal(new Set(after).size, 209, 'nothing twice')
  const replays = k.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('replay')).length
  assert.ok(replays < 20, `${replays} replay log lines in a few seconds`)

  // quarantine/ works again: the file moves at the next retry (backoff from 5 s).
  await rm(join(backup, 'quarantine'))
  const quarantined = join(backup, 'quarantine', 'events', '1700000000-AAAAAAAA.frames')
  await waitFor(async () => existsSync(quarantined) && !existsSync(damagedFile) && sample(await scrape(base), 'kahets_replay_stuck_files', { stream: 'files' }) === 0, { timeoutMs: 30_000, what: 'the damaged file in quarantine/' })
  assert.equal((await primary()).length, 209, 'moving it sent nothing again')
  assert.equal(await k.stop(), 0)
})
