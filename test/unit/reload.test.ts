// A reload the manager cannot build (a stream constructor that throws) leaves nothing
// behind, and the next reload is judged on its own file. The real-process proof is in
// test/integration/reload-metrics.test.ts; this reaches the manager's failure path, which a
// valid buckets file no longer gets to.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseBucketsConfig } from '../../src/config/buckets.ts'
import { loadEnv } from '../../src/config/env.ts'
import { startDaemon } from '../../src/daemon.ts'
import { createLogger } from '../../src/log.ts'
import { createStream } from '../../src/streams/create-stream.ts'

test('a reload whose streams cannot be built stops what it built; the next reload applies', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kahets-reload-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = (id: string): object => ({ type: 'file', settings: { path: join(dir, id) } })
  const doc = (streams: Record<string, object>): object => ({ streamsConfigs: streams, buckets: [{ id: 'a', streams: Object.keys(streams).slice(0, 1) }] })
  const bucketsFile = join(dir, 'buckets.json')
  await writeFile(bucketsFile, JSON.stringify(doc({ one: file('one') })))
  const env = loadEnv({ cwd: dir, env: { SOCKET: join(dir, 's.sock'), BUCKETS_FILE: bucketsFile } })
  const daemon = await startDaemon({
    env,
    buckets: parseBucketsConfig(doc({ one: file('one') })),
    log: createLogger('fatal'),
    createStream: (config, log) => {
      if (config.id === 'broken') throw new Error('constructor failed')
      return createStream(config, log)
    },
  })
  t.after(() => daemon.stop())
  assert.equal(daemon.openStreams, 1)

  // "two" (with its backup) is built before "broken" throws.
  await writeFile(bucketsFile, JSON.stringify(doc({ one: file('one'), two: { ...file('two'), backup: file('two-backup') }, broken: file('broken') })))
  assert.equal(await daemon.reload(), false)
  assert.equal(daemon.openStreams, 1, 'what the failed reload built is closed')
  assert.deepEqual([...daemon.manager.streams.keys()], ['one'])

  await writeFile(bucketsFile, JSON.stringify(doc({ one: file('one'), two: file('two') })))
  assert.equal(await daemon.reload(), true, 'no stale error from the failed reload')
  assert.deepEqual([...daemon.manager.streams.keys()], ['one', 'two'])
  assert.equal(daemon.openStreams, 2)
})
