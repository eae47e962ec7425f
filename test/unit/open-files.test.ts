// The bound on a file stream's open files (src/streams/open-files.ts), with fake holders,
// and a real FileStream under a small maxOpenFiles.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { OpenFiles, type FileHolder } from '../../src/streams/open-files.ts'
import { FileStream } from '../../src/streams/file-stream.ts'
import { FILE_DEFAULTS, parseBucketsConfig } from '../../src/config/buckets.ts'
import { ConfigError } from '../../src/errors.ts'
import type { Frame } from '../../src/protocol/frame.ts'
import { decodeAll, readFrameFiles } from '../helpers/frames.ts'
import { encodeFrame } from '../../src/protocol/encoder.ts'

class Holder implements FileHolder {
  idle = true
  suspended = 0
  constructor (readonly bound: OpenFiles, readonly name: string) {}
  async open (): Promise<void> {
    await this.bound.acquire(this)
    this.bound.opened(this)
  }

  async suspend (): Promise<void> {
    this.suspended++
    this.bound.release(this)
  }
}

/** Every bound in the process is asked to close idle files under pressure: leave none open. */
function done (...holders: Holder[]): void {
  for (const h of holders) h.bound.release(h)
}

describe('OpenFiles', () => {
  test('never more than the bound; the least recently written idle file is closed', async () => {
    const bound = new OpenFiles(2)
    const [a, b, c] = ['a', 'b', 'c'].map((n) => new Holder(bound, n)) as [Holder, Holder, Holder]
    await a.open()
    await b.open()
    bound.touch(a) // b is now the least recently written
    await c.open()
    assert.equal(bound.size, 2)
    assert.deepEqual([a.suspended, b.suspended, c.suspended], [0, 1, 0])
    done(a, b, c)
  })

  test('a busy holder is not closed: the next opener waits until it is idle', async () => {
    const bound = new OpenFiles(1)
    const a = new Holder(bound, 'a')
    const b = new Holder(bound, 'b')
    await a.open()
    a.idle = false
    let granted = false
    const waiting = b.open().then(() => { granted = true })
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(granted, false)
    a.idle = true
    bound.idle()
    await waiting
    assert.equal(a.suspended, 1)
    assert.equal(bound.size, 1)
    done(a, b)
  })

  test('EMFILE lowers the bound to the files open, and the opener gets a slot once one is closed', async () => {
    const bound = new OpenFiles(10)
    const holders = Array.from({ length: 4 }, (_, i) => new Holder(bound, `h${i}`))
    for (const h of holders.slice(0, 3)) await h.open()
    const h3 = holders[3]!
    await bound.acquire(h3) // a slot, but the system refuses the descriptor
    assert.equal(await bound.pressure(h3), true)
    assert.equal(bound.limit, 5, 'lowered, at most halved per burst')
    assert.equal(holders[0]!.suspended, 1, 'the least recently written was closed to make room')
    assert.equal(bound.size, 3)
    done(...holders)
  })

  test('the idle sweep names files not written for a while, idle ones only', async () => {
    let now = 1000
    const bound = new OpenFiles(10, { now: () => now })
    const [a, b, c] = ['a', 'b', 'c'].map((n) => new Holder(bound, n)) as [Holder, Holder, Holder]
    await a.open()
    await b.open()
    now = 40_000
    await c.open()
    b.idle = false
    assert.deepEqual(bound.sweep(31_000), [a], 'b is busy, c was written recently')
    done(a, b, c)
  })

  test('EMFILE with none of this stream\'s files open: closing cannot help', async () => {
    const bound = new OpenFiles(10)
    const h = new Holder(bound, 'h')
    await bound.acquire(h)
    assert.equal(await bound.pressure(h), false)
    done(h)
  })
})

function frame (bucket: string, payload: string): Frame {
  return decodeAll(encodeFrame({ bucket, key: null, payload })).frames[0]!
}

let base = ''
before(async () => { base = await fsp.mkdtemp(path.join(os.tmpdir(), 'kahets-open-files-')) })
after(async () => { await fsp.rm(base, { recursive: true, force: true }) })

describe('FileStream with maxOpenFiles', () => {
  test('20 buckets through 3 open files: every frame in one file per bucket, appended', async () => {
    const root = path.join(base, 'many')
    const stream = new FileStream({ ...FILE_DEFAULTS, path: root, fsync: true, maxOpenFiles: 3 })
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 20 }, (_, b) => stream.write(`b${b}`, [frame(`b${b}`, `r${round}`)])))
    }
    await stream.close()
    const files = await readFrameFiles(root)
    assert.equal(files.length, 20, 'one file per bucket: a file kahets closed is appended to')
    for (const { frames } of files) assert.deepEqual(frames.map((f) => f.payload.toString()), ['r0', 'r1', 'r2'])
  })
})

describe('maxOpenFiles in the buckets file', () => {
  const doc = (maxOpenFiles: unknown): unknown => ({
    streamsConfigs: { f: { type: 'file', settings: { path: '/tmp/x', maxOpenFiles } } },
    buckets: [{ id: 'a', streams: ['f'] }],
  })
  const settings = (maxOpenFiles: unknown): unknown => {
    const s = parseBucketsConfig(doc(maxOpenFiles)).streams.get('f')!
    return s.type === 'file' ? s.settings.maxOpenFiles : null
  }

  test('defaults to 256; numbers and strings are accepted', () => {
    assert.equal(settings(undefined), 256)
    assert.equal(settings(16), 16)
    assert.equal(settings('1000'), 1000)
  })

  test('0, negatives and words are config errors naming the setting', () => {
    for (const bad of [0, '0', -1, 'many']) {
      assert.throws(() => parseBucketsConfig(doc(bad)), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.path.endsWith('.maxOpenFiles')), String(bad))
    }
  })
})
