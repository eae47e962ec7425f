import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { RotatingFile, type RotatingFileEvent, type RotatingFileOptions, type WritableFile } from '../../src/streams/rotating-file.ts'
import { checkFileNameTemplate, listTemplateFiles, renderFileName } from '../../src/streams/file-name-template.ts'
import { ErrorCodes, KahetsError } from '../../src/errors.ts'

const T0 = 1_700_000_000_000

let base = ''
let dirCount = 0
before(async () => { base = await fsp.mkdtemp(path.join(os.tmpdir(), 'kahets-rotating-')) })
after(async () => { await fsp.rm(base, { recursive: true, force: true }) })

async function newRoot (): Promise<string> {
  const dir = path.join(base, `root${++dirCount}`)
  await fsp.mkdir(dir)
  return dir
}

/** Distinct buffers of the given sizes, each recognisable by its index. */
function buffers (sizes: number[], first = 0): Buffer[] {
  return sizes.map((size, i) => {
    const b = Buffer.alloc(size, 0x61 + ((first + i) % 26))
    b.write(`${first + i}:`.slice(0, size))
    return b
  })
}

function clock (start = T0): { now: () => number, set: (ms: number) => void } {
  let t = start
  return { now: () => t, set: (ms) => { t = ms } }
}

function options (root: string, over: Partial<RotatingFileOptions> = {}): RotatingFileOptions {
  return { root, template: '{bucket}-{ts}.log', bucket: 'b', hostname: 'h1', sizeRotate: 1 << 20, maxFiles: 0, fsync: false, now: () => T0, ...over }
}

async function filesUnder (dir: string): Promise<string[]> {
  const entries = await fsp.readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort()
}

function isInside (root: string, file: string): boolean {
  const rel = path.relative(root, file)
  return rel !== '' && !path.isAbsolute(rel) && rel.split(path.sep)[0] !== '..'
}

async function contents (files: string[]): Promise<Buffer[]> {
  return Promise.all(files.map((f) => fsp.readFile(f)))
}

async function rejectsWith (p: Promise<unknown>, code: string): Promise<KahetsError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof KahetsError, `expected KahetsError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    return err
  }
  assert.fail(`expected rejection with ${code}`)
}

/** Wraps the real open so a test can watch or break what the file does. */
function instrumentedOpen (hooks: {
  writev?: (real: WritableFile, bufs: readonly Buffer[]) => Promise<{ bytesWritten: number }>
  onWritev?: (file: string, bufs: readonly Buffer[]) => void
  onSync?: (file: string) => void
}): (file: string, mode: 'create' | 'append') => Promise<WritableFile> {
  return async (file, mode) => {
    const real = await fsp.open(file, mode === 'create' ? 'wx' : 'a')
    return {
      writev: (bufs) => {
        hooks.onWritev?.(file, bufs)
        return hooks.writev ? hooks.writev(real, bufs) : real.writev(bufs)
      },
      sync: () => {
        hooks.onSync?.(file)
        return real.sync()
      },
      truncate: (len) => real.truncate(len),
      stat: () => real.stat(),
      close: () => real.close(),
    }
  }
}

describe('renderFileName', () => {
  test('substitutes every placeholder and returns an absolute path inside root', () => {
    const file = renderFileName('/data/files', '{bucket}{PS}{hostname}-{ts}-{rand}.bckstm', { bucket: 'orders', hostname: 'web1', ts: 1_700_000_123, rand: 'Ab3dEf9h' })
    assert.equal(file, path.join('/data/files', 'orders', 'web1-1700000123-Ab3dEf9h.bckstm'))
  })

  test('a relative root resolves against the working directory', () => {
    assert.equal(renderFileName('var/x', '{bucket}.log', { bucket: 'a', hostname: 'h', ts: 1, rand: 'r' }), path.resolve('var/x/a.log'))
  })

  test('templates that leave root throw PATH_ESCAPE', () => {
    const vars = { bucket: 'a', hostname: 'h', ts: 1, rand: 'AAAAAAAA' }
    for (const template of ['../x/{bucket}', '/abs/{bucket}', '{bucket}/../../x', '{PS}tmp{PS}{bucket}', '', '{bucket}/..', '.']) {
      assert.throws(() => renderFileName('/data/files', template, vars), (err: unknown) => err instanceof KahetsError && err.code === ErrorCodes.PATH_ESCAPE, template)
    }
  })

  test('bucket names made of dots stay inside root', () => {
    for (const bucket of ['a..b', '...', '.a', 'a.', '-', '_', '..a']) {
      for (const template of ['{bucket}', '{bucket}{PS}{ts}.log', '{ts}-{bucket}.log']) {
        const file = renderFileName('/data/files', template, { bucket, hostname: 'h', ts: 5, rand: 'AAAAAAAA' })
        assert.ok(isInside('/data/files', file), `${template} ${bucket} -> ${file}`)
      }
    }
  })
})

describe('checkFileNameTemplate', () => {
  test('accepts kahego templates and the usual shapes', () => {
    for (const template of [
      '{bucket}/{ts}.bckstm',
      '{bucket}{PS}{hostname}-{ts}.bckstm',
      '{bucket}-{ts}.log',
      '{hostname}-{bucket}-{rand}.log',
      '{ts}{PS}{bucket}-{rand}.log',
      '{bucket}.{ts}.log',
      'logs/{bucket}/{hostname}.frames',
    ]) {
      assert.equal(checkFileNameTemplate('/data/files', template), null, template)
    }
  })

  test('rejects each kind of bad template with a reason', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['{bucket}-{date}.log', /unknown placeholder \{date\}/],
      ['../x/{bucket}', /"\.\." path segments/],
      ['{bucket}/../../x', /"\.\." path segments/],
      ['./{bucket}', /"\." path segments/],
      ['/abs/{bucket}', /relative/],
      ['{PS}{bucket}', /relative/],
      ['{bucket}{PS}', /name a file/],
      ['{ts}.log', /must contain \{bucket\}/],
      ['{bucket}{ts}.log', /could also be another bucket's/],
      ['{bucket}.{ts}', /could also be another bucket's/],
      ['{ts}-{bucket}', /could also be another bucket's/],
    ]
    for (const [template, reason] of cases) {
      const message = checkFileNameTemplate('/data/files', template)
      assert.ok(message !== null && reason.test(message), `${JSON.stringify(template)}: ${message}`)
    }
  })
})

describe('RotatingFile', () => {
  test('nothing is opened before the first write, and an empty write opens nothing', async () => {
    const root = await newRoot()
    const rf = new RotatingFile(options(root))
    assert.equal(rf.currentPath, null)
    await rf.write([])
    await rf.write([Buffer.alloc(0)])
    assert.equal(rf.currentPath, null)
    assert.deepEqual(await filesUnder(root), [])
    await rf.close()
  })

  test('a file being created is already the current one: a replay listing the folder then must not take it as closed', async () => {
    const root = await newRoot()
    let created: () => void = () => {}
    const gate = new Promise<void>((resolve) => { created = resolve })
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => { release = resolve })
    let seen: string | null = null
    const real = instrumentedOpen({})
    const rf = new RotatingFile(options(root, {
      // The file exists on disk from here; kahets has not finished opening it.
      open: async (file, mode) => {
        const handle = await real(file, mode)
        seen = file
        created()
        await released
        return handle
      },
    }))
    const writing = rf.write([Buffer.from('frame')])
    await gate
    assert.deepEqual(await filesUnder(root), [path.relative(root, seen!)])
    assert.equal(rf.currentPath, seen, 'the file on disk is reported as being written')
    release()
    await writing
    assert.equal(rf.currentPath, seen)
    await rf.close()
  })

  test('writes appear byte-identical and in order', async () => {
    const root = await newRoot()
    const rf = new RotatingFile(options(root))
    const all: Buffer[] = []
    for (let call = 0; call < 5; call++) {
      const batch = buffers([3, 17, 1, 250, 40], call * 5)
      all.push(...batch)
      await rf.write(batch)
    }
    const file = rf.currentPath
    assert.equal(file, path.join(root, 'b-1700000000.log'))
    await rf.close()
    assert.equal(rf.currentPath, null)
    assert.deepEqual(await fsp.readFile(file!), Buffer.concat(all))
  })

  test('writes issued without waiting are applied in call order', async () => {
    const root = await newRoot()
    const rf = new RotatingFile(options(root, { sizeRotate: 64 }))
    const batches = Array.from({ length: 20 }, (_, i) => buffers([7, 11, 13], i * 3))
    await Promise.all(batches.map((b) => rf.write(b)))
    await rf.close()
    const files = await rf.existingFiles()
    assert.deepEqual(Buffer.concat(await contents(files)), Buffer.concat(batches.flat()))
  })

  test('rotates at frame boundaries, one writev per file touched', async () => {
    const root = await newRoot()
    const writevs: string[] = []
    const c = clock()
    const rf = new RotatingFile(options(root, {
      sizeRotate: 100,
      now: c.now,
      open: instrumentedOpen({ onWritev: (file) => { writevs.push(file) } }),
    }))
    // Sizes cycle through awkward values; 150 is a frame larger than sizeRotate.
    const sizes = Array.from({ length: 60 }, (_, i) => [1, 30, 45, 99, 100, 150, 7, 64][i % 8]!)
    const frames = buffers(sizes)
    let next = 0
    for (const count of [1, 5, 13, 2, 20, 19]) {
      const before = writevs.length
      const batch = frames.slice(next, next + count)
      await rf.write(batch)
      next += count
      const touched = new Set(writevs.slice(before))
      assert.equal(writevs.length - before, touched.size, 'one writev per file in a write() call')
      c.set(c.now() + 1000)
    }
    await rf.close()
    const files = await rf.existingFiles()
    const data = await contents(files)
    assert.deepEqual(Buffer.concat(data), Buffer.concat(frames), 'nothing lost, nothing reordered')
    // Walk the frames through the files: each file must hold whole frames only.
    let f = 0
    for (const [i, content] of data.entries()) {
      let at = 0
      let count = 0
      while (at < content.length) {
        assert.ok(frames[f]!.equals(content.subarray(at, at + frames[f]!.length)), `file ${i} splits frame ${f}`)
        at += frames[f++]!.length
        count++
      }
      assert.ok(content.length <= 100 || count === 1, `file ${i} is ${content.length} bytes with ${count} frames`)
      if (i < data.length - 1) {
        assert.ok(content.length + frames[f]!.length > 100, `file ${i} was rotated although frame ${f} fitted`)
      }
    }
    assert.equal(f, frames.length)
  })

  test('maxFiles keeps the newest files and deletes the oldest', async () => {
    const root = await newRoot()
    const c = clock()
    const rf = new RotatingFile(options(root, { sizeRotate: 10, maxFiles: 3, now: c.now }))
    const frames = buffers(Array(8).fill(10))
    for (const frame of frames) {
      await rf.write([frame])
      c.set(c.now() + 1000)
      assert.ok((await filesUnder(root)).length <= 3)
    }
    await rf.close()
    const files = await rf.existingFiles()
    assert.deepEqual(files.map((f) => path.basename(f)), ['b-1700000005.log', 'b-1700000006.log', 'b-1700000007.log'])
    assert.deepEqual(await contents(files), frames.slice(5))
  })

  test('maxFiles of 1 keeps only the file being written', async () => {
    const root = await newRoot()
    const rf = new RotatingFile(options(root, { sizeRotate: 4, maxFiles: 1 }))
    await rf.write(buffers([4, 4, 4]))
    assert.deepEqual(await filesUnder(root), ['b-1700000000.log.2'])
    await rf.close()
  })

  test('maxFiles deletes only regular files: one replaced by a folder is reported and left alone', async () => {
    const root = await newRoot()
    const c = clock()
    const failed: string[] = []
    const rf = new RotatingFile(options(root, { sizeRotate: 1, maxFiles: 2, now: c.now, onDeleteError: (file) => { failed.push(path.basename(file)) } }))
    await rf.write(buffers([1]))
    c.set(T0 + 1000)
    await rf.write(buffers([1]))
    await fsp.unlink(path.join(root, 'b-1700000000.log'))
    await fsp.mkdir(path.join(root, 'b-1700000000.log'))
    await fsp.writeFile(path.join(root, 'b-1700000000.log', 'keep'), 'not ours')
    c.set(T0 + 2000)
    await rf.write(buffers([1]))
    assert.deepEqual(failed, ['b-1700000000.log'])
    assert.deepEqual(await filesUnder(root), ['b-1700000000.log/keep', 'b-1700000001.log', 'b-1700000002.log'])
    c.set(T0 + 3000)
    await rf.write(buffers([1]))
    assert.deepEqual(failed, ['b-1700000000.log'], 'no longer counted as ours')
    assert.deepEqual(await filesUnder(root), ['b-1700000000.log/keep', 'b-1700000002.log', 'b-1700000003.log'], 'the next oldest went instead')
    await rf.close()
  })

  test('same-second names get .1, .2 suffixes and nothing is overwritten', async () => {
    const root = await newRoot()
    const rf = new RotatingFile(options(root, { sizeRotate: 5 }))
    const frames = buffers([5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5])
    await rf.write(frames)
    await rf.close()
    const names = (await rf.existingFiles()).map((f) => path.basename(f))
    assert.deepEqual(names, ['b-1700000000.log', ...Array.from({ length: 11 }, (_, i) => `b-1700000000.log.${i + 1}`)],
      'oldest first, .10 and .11 after .9')
    assert.deepEqual(await contents(await rf.existingFiles()), frames)
  })

  test('a restart finds the existing files, counts them toward maxFiles and never appends into them', async () => {
    const root = await newRoot()
    const c = clock()
    const first = new RotatingFile(options(root, { sizeRotate: 10, maxFiles: 4, now: c.now }))
    await first.write(buffers([10, 10, 10], 0))
    // A crash leaves a torn frame at the end of the last file.
    const torn = first.currentPath!
    await fsp.appendFile(torn, 'TORN')
    await first.close()
    const before = await rf2Contents(root)

    // Same second, so the new instance's first name collides with one already there.
    const second = new RotatingFile(options(root, { sizeRotate: 10, maxFiles: 4, now: c.now }))
    assert.deepEqual((await second.existingFiles()).map((f) => path.basename(f)), ['b-1700000000.log', 'b-1700000000.log.1', 'b-1700000000.log.2'])
    await second.write(buffers([10], 3))
    assert.equal(path.basename(second.currentPath!), 'b-1700000000.log.3')
    assert.deepEqual(await rf2Contents(root), { ...before, 'b-1700000000.log.3': buffers([10], 3)[0]!.toString() }, 'old files untouched')
    assert.equal((await fsp.readFile(torn, 'latin1')).endsWith('TORN'), true)

    c.set(T0 + 5000)
    await second.write(buffers([10], 4))
    assert.deepEqual(await filesUnder(root), ['b-1700000000.log.1', 'b-1700000000.log.2', 'b-1700000000.log.3', 'b-1700000005.log'],
      'the oldest file of the first run was deleted to stay at 4')
    await second.close()

    async function rf2Contents (dir: string): Promise<Record<string, string>> {
      const out: Record<string, string> = {}
      for (const name of await filesUnder(dir)) out[name] = await fsp.readFile(path.join(dir, name), 'latin1')
      return out
    }
  })

  test('a restart orders files by {ts}, then modification time', async () => {
    const root = await newRoot()
    await fsp.writeFile(path.join(root, 'b-1700000009.log'), 'newest')
    await fsp.writeFile(path.join(root, 'b-200.log'), 'oldest')
    await fsp.writeFile(path.join(root, 'b-1700000001.log.1'), 'middle, written first')
    await fsp.writeFile(path.join(root, 'b-1700000001.log'), 'middle, written second')
    await fsp.utimes(path.join(root, 'b-1700000001.log.1'), 1000, 1000)
    await fsp.utimes(path.join(root, 'b-1700000001.log'), 2000, 2000)
    // Not ours: other buckets, other templates, directories, a suffix that is not ours.
    await fsp.writeFile(path.join(root, 'bb-1700000002.log'), 'x')
    await fsp.writeFile(path.join(root, 'b-1700000002.txt'), 'x')
    await fsp.writeFile(path.join(root, 'b-1700000002.log.x'), 'x')
    await fsp.writeFile(path.join(root, 'b-1700000002.log.01'), 'x')
    await fsp.mkdir(path.join(root, 'b-1700000003.log'))
    const rf = new RotatingFile(options(root))
    assert.deepEqual((await rf.existingFiles()).map((f) => path.basename(f)),
      ['b-200.log', 'b-1700000001.log.1', 'b-1700000001.log', 'b-1700000009.log'])
  })

  test('{PS} creates subdirectories, and files are found there again', async () => {
    const root = await newRoot()
    const c = clock()
    const opts = options(root, { template: '{bucket}{PS}{hostname}{PS}{ts}.bckstm', bucket: 'orders', sizeRotate: 3, now: c.now })
    const rf = new RotatingFile(opts)
    await rf.write(buffers([3]))
    c.set(T0 + 1000)
    await rf.write(buffers([3]))
    await rf.close()
    assert.deepEqual(await filesUnder(root), ['orders/h1/1700000000.bckstm', 'orders/h1/1700000001.bckstm'])
    assert.deepEqual((await new RotatingFile(opts).existingFiles()).map((f) => path.relative(root, f)), ['orders/h1/1700000000.bckstm', 'orders/h1/1700000001.bckstm'])
  })

  test('{ts} and {rand} in a directory segment: those directories are scanned too', async () => {
    const root = await newRoot()
    const c = clock()
    const opts = options(root, { template: '{ts}{PS}{bucket}-{rand}.log', sizeRotate: 3, maxFiles: 2, now: c.now })
    const rf = new RotatingFile(opts)
    for (let i = 0; i < 3; i++) {
      c.set(T0 + i * 1000)
      await rf.write(buffers([3], i))
    }
    await rf.close()
    await fsp.mkdir(path.join(root, '1700000009'))
    await fsp.writeFile(path.join(root, '1700000009', 'b-short.log'), 'not a {rand}')
    const found = await new RotatingFile(opts).existingFiles()
    assert.deepEqual(found.map((f) => path.dirname(path.relative(root, f))), ['1700000001', '1700000002'])
    for (const f of found) assert.match(path.basename(f), /^b-[A-Za-z0-9]{8}\.log$/)
    assert.deepEqual(await contents(found), buffers([3, 3], 1))
  })

  test('bucket names like a..b and ... write inside root', async () => {
    const root = await newRoot()
    for (const bucket of ['a..b', '...', '..a', '-']) {
      for (const template of ['{bucket}{PS}{ts}.log', '{bucket}-{ts}.log']) {
        const rf = new RotatingFile(options(root, { bucket, template }))
        await rf.write(buffers([5]))
        assert.ok(isInside(root, rf.currentPath!), rf.currentPath!)
        await rf.close()
      }
    }
    assert.deepEqual(await filesUnder(root), [
      '--1700000000.log', '-/1700000000.log', '...-1700000000.log', '.../1700000000.log',
      '..a-1700000000.log', '..a/1700000000.log', 'a..b-1700000000.log', 'a..b/1700000000.log',
    ].sort())
  })

  test('never counts or deletes a file another bucket name could have produced', async () => {
    const root = await newRoot()
    // An ambiguous template (checkFileNameTemplate refuses it): bucket "a.1700000000" at
    // ts 1700000001 writes a name that bucket "a" would read as its own ts + suffix.
    const template = '{bucket}.{ts}'
    const other = new RotatingFile(options(root, { template, bucket: 'a.1700000000', now: () => T0 + 1000 }))
    await other.write(buffers([4]))
    await other.close()
    const rf = new RotatingFile(options(root, { template, bucket: 'a', sizeRotate: 4, maxFiles: 1 }))
    assert.deepEqual(await rf.existingFiles(), [])
    await rf.write(buffers([4, 4]))
    await rf.close()
    assert.ok((await filesUnder(root)).includes('a.1700000000.1700000001'))
  })

  test('partial writes continue with the remainder', async () => {
    const root = await newRoot()
    const rf = new RotatingFile(options(root, {
      open: instrumentedOpen({
        writev: async (real, bufs) => {
          // At most 7 bytes per call, cutting buffers anywhere.
          const out: Buffer[] = []
          let room = 7
          for (const b of bufs) {
            if (room === 0) break
            out.push(b.subarray(0, room))
            room -= out.at(-1)!.length
          }
          return real.writev(out)
        },
      }),
    }))
    const frames = buffers([1, 20, 3, 0, 50, 7])
    await rf.write(frames)
    const file = rf.currentPath!
    await rf.close()
    assert.deepEqual(await fsp.readFile(file), Buffer.concat(frames))
  })

  test('a write failing part-way rejects with STREAM_WRITE_FAILED, cuts back to where the call started, and the next write starts a new file', async () => {
    const root = await newRoot()
    const c = clock()
    const events: RotatingFileEvent[] = []
    let failAfter: number | null = null
    const rf = new RotatingFile(options(root, {
      now: c.now,
      onEvent: (e) => { events.push(e) },
      open: instrumentedOpen({
        writev: async (real, bufs) => {
          if (failAfter === null) return real.writev(bufs)
          if (failAfter === 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
          // The kernel takes part of the data, then the disk is full.
          const { bytesWritten } = await real.writev([Buffer.concat(bufs).subarray(0, failAfter)])
          failAfter = 0
          return { bytesWritten }
        },
      }),
    }))
    const ok = buffers([10, 10])
    await rf.write(ok)
    const first = rf.currentPath!
    failAfter = 15 // the whole of frame 2 and half of frame 3
    const failing = buffers([10, 10, 10], 2)
    const err = await rejectsWith(rf.write(failing), ErrorCodes.STREAM_WRITE_FAILED)
    assert.equal(err.retriable, true)
    assert.equal(err.scope, 'stream', 'a full disk is the whole stream\'s')
    assert.equal((err.cause as { code?: string }).code, 'ENOSPC')
    assert.equal(rf.currentPath, null)
    assert.deepEqual(await fsp.readFile(first), Buffer.concat(ok), 'cut back to the last whole batch: a retry of it writes nothing twice')
    assert.deepEqual(events, [{ kind: 'undone', file: first, bytes: 15 }])

    failAfter = null
    c.set(T0 + 1000)
    await rf.write(buffers([10], 9))
    assert.notEqual(rf.currentPath, first)
    assert.deepEqual(await fsp.readFile(first), Buffer.concat(ok), 'never written again')
    await rf.close()
  })

  test('a file left empty by a failed write is removed', async () => {
    const root = await newRoot()
    let fail = true
    const rf = new RotatingFile(options(root, {
      open: instrumentedOpen({
        writev: async (real, bufs) => {
          if (!fail) return real.writev(bufs)
          throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })
        },
      }),
    }))
    await rejectsWith(rf.write(buffers([10])), ErrorCodes.STREAM_WRITE_FAILED)
    assert.deepEqual(await filesUnder(root), [])
    fail = false
    await rf.write(buffers([10]))
    assert.deepEqual(await filesUnder(root), ['b-1700000000.log'])
    await rf.close()
  })

  test('a file where a bucket\'s folder is expected rejects with DESTINATION_REJECTED; writing recovers once it is gone', async () => {
    const root = await newRoot()
    await fsp.writeFile(path.join(root, 'b'), 'in the way')
    const rf = new RotatingFile(options(root, { template: '{bucket}{PS}{ts}.log' }))
    const err = await rejectsWith(rf.write(buffers([5])), ErrorCodes.DESTINATION_REJECTED)
    assert.equal(err.retriable, true)
    assert.equal(err.scope, 'destination', 'only this bucket: an operator can move the file away')
    assert.equal(rf.currentPath, null)
    await fsp.unlink(path.join(root, 'b'))
    await rf.write(buffers([5]))
    assert.deepEqual(await filesUnder(root), ['b/1700000000.log'])
    await rf.close()
  })

  // fs.mkdir's own `recursive` spins forever on this path instead of failing.
  test('a root that cannot hold files rejects with STREAM_WRITE_FAILED', { timeout: 5000 }, async () => {
    const rf = new RotatingFile(options('/proc/self/kahets-test'))
    await rejectsWith(rf.write(buffers([5])), ErrorCodes.STREAM_WRITE_FAILED)
  })

  test('a template leaving root rejects the write with PATH_ESCAPE', async () => {
    const root = await newRoot()
    const rf = new RotatingFile(options(root, { template: '../{bucket}.log' }))
    await rejectsWith(rf.write(buffers([5])), ErrorCodes.PATH_ESCAPE)
    assert.deepEqual(await fsp.readdir(path.dirname(root)).then((names) => names.filter((n) => n.endsWith('.log'))), [])
  })

  test('with fsync, every file written is synced before write() resolves', async () => {
    const root = await newRoot()
    const synced: string[] = []
    const rf = new RotatingFile(options(root, { sizeRotate: 10, fsync: true, open: instrumentedOpen({ onSync: (file) => { synced.push(path.basename(file)) } }) }))
    await rf.write(buffers([10, 10, 5]))
    assert.deepEqual(synced, ['b-1700000000.log', 'b-1700000000.log.1', 'b-1700000000.log.2'])
    await rf.write(buffers([5]))
    assert.equal(synced.length, 4)
    await rf.close()
    assert.equal(synced.length, 4, 'nothing left to sync at close')
  })

  test('after close, write rejects', async () => {
    const root = await newRoot()
    const rf = new RotatingFile(options(root))
    await rf.write(buffers([5]))
    await rf.close()
    await rf.close()
    await rejectsWith(rf.write(buffers([5])), ErrorCodes.STREAM_WRITE_FAILED)
  })

  test('100k small buffers in 100 write() calls', async () => {
    const root = await newRoot()
    const rf = new RotatingFile(options(root, { sizeRotate: 1 << 20 }))
    const frame = Buffer.from('0123456789abcdef0123456789')
    const batch: Buffer[] = Array(1000).fill(frame)
    for (let i = 0; i < 100; i++) await rf.write(batch)
    await rf.close()
    const files = await rf.existingFiles()
    const sizes = await Promise.all(files.map(async (f) => (await fsp.stat(f)).size))
    assert.equal(sizes.reduce((a, b) => a + b, 0), 100_000 * frame.length)
    assert.ok(sizes.every((s) => s <= 1 << 20 && s % frame.length === 0))
  })
})

describe('RotatingFile: files that vanish, symlinks, suspend (issue 10)', () => {
  test('a file deleted between writes is recreated at its path, folders too, and counted', async () => {
    const root = await newRoot()
    const events: RotatingFileEvent[] = []
    const rf = new RotatingFile(options(root, { template: '{bucket}{PS}{ts}.log', onEvent: (e) => { events.push(e) } }))
    await rf.write(buffers([5]))
    const file = rf.currentPath!
    await fsp.rm(path.join(root, 'b'), { recursive: true })
    await rf.write(buffers([5], 1))
    assert.equal(rf.currentPath, file, 'the same path')
    assert.deepEqual(await fsp.readFile(file), Buffer.concat(buffers([5], 1)), 'the frames after the delete are in the new file')
    assert.deepEqual(events, [{ kind: 'reopened', file, reason: 'unlinked' }])
    await rf.close()
  })

  test('a file deleted while a write is under way gets that write again', async () => {
    const root = await newRoot()
    const events: RotatingFileEvent[] = []
    let deleteDuringWrite = false
    const rf = new RotatingFile(options(root, {
      onEvent: (e) => { events.push(e) },
      open: instrumentedOpen({
        writev: async (real, bufs) => {
          const r = await real.writev(bufs)
          if (deleteDuringWrite) {
            deleteDuringWrite = false
            await fsp.unlink(path.join(root, 'b-1700000000.log'))
          }
          return r
        },
      }),
    }))
    await rf.write(buffers([5]))
    deleteDuringWrite = true
    await rf.write(buffers([5, 5], 1))
    assert.deepEqual(await fsp.readFile(path.join(root, 'b-1700000000.log')), Buffer.concat(buffers([5, 5], 1)))
    assert.deepEqual(events.map((e) => e.kind), ['reopened'])
    await rf.close()
  })

  test('a file replaced by a symlink is not written through: a new file, the target untouched', async () => {
    const root = await newRoot()
    const outside = await newRoot()
    await fsp.writeFile(path.join(outside, 'target'), 'keep')
    const events: RotatingFileEvent[] = []
    const rf = new RotatingFile(options(root, { onEvent: (e) => { events.push(e) } }))
    await rf.write(buffers([5]))
    const file = rf.currentPath!
    await fsp.unlink(file)
    await fsp.symlink(path.join(outside, 'target'), file)
    await rf.write(buffers([5], 1))
    assert.equal(await fsp.readFile(path.join(outside, 'target'), 'utf8'), 'keep')
    assert.equal(rf.currentPath, `${file}.1`)
    assert.deepEqual(events, [{ kind: 'reopened', file, reason: 'replaced' }])
    await rf.close()
  })

  test('a symlink at path/<bucket> or as a deeper folder fails that bucket with DESTINATION_REJECTED and writes nothing outside', async () => {
    for (const template of ['{bucket}{PS}{ts}.log', 'x{PS}{bucket}{PS}{ts}.log', '{bucket}{PS}sub{PS}{ts}.log']) {
      const root = await newRoot()
      const outside = await newRoot()
      await fsp.writeFile(path.join(outside, '1699999999.log'), 'keep')
      const link = template.startsWith('x') ? path.join(root, 'x') : template.includes('sub') ? path.join(root, 'b', 'sub') : path.join(root, 'b')
      await fsp.mkdir(path.dirname(link), { recursive: true })
      await fsp.symlink(outside, link)
      const rf = new RotatingFile(options(root, { template, maxFiles: 1 }))
      const err = await rejectsWith(rf.write(buffers([5])), ErrorCodes.DESTINATION_REJECTED)
      assert.equal(err.scope, 'destination', template)
      assert.equal(err.retriable, true)
      assert.deepEqual(await rf.existingFiles(), [], 'nothing is found through the symlink')
      assert.deepEqual(await fsp.readdir(outside), ['1699999999.log'], `${template}: nothing written or deleted outside`)
      await rf.close()
    }
  })

  test('path itself may be a symlink', async () => {
    const real = await newRoot()
    const root = path.join(base, `link${++dirCount}`)
    await fsp.symlink(real, root)
    const rf = new RotatingFile(options(root, { template: '{bucket}{PS}{ts}.log' }))
    await rf.write(buffers([5]))
    await rf.close()
    assert.deepEqual(await filesUnder(real), ['b/1700000000.log'])
  })

  test('after suspend() the next write appends to the same file; one changed meanwhile is left alone', async () => {
    const root = await newRoot()
    const c = clock()
    const rf = new RotatingFile(options(root, { now: c.now }))
    await rf.write(buffers([5]))
    const file = rf.currentPath!
    await rf.suspend()
    assert.equal(rf.isOpen, false)
    c.set(T0 + 5000)
    await rf.write(buffers([5], 1))
    assert.equal(rf.currentPath, file)
    assert.deepEqual(await fsp.readFile(file), Buffer.concat(buffers([5, 5])))
    await rf.suspend()
    await fsp.appendFile(file, 'torn')
    await rf.write(buffers([5], 2))
    assert.notEqual(rf.currentPath, file, 'not kahets\'s size any more: a new file')
    assert.deepEqual(await fsp.readFile(file), Buffer.concat([...buffers([5, 5]), Buffer.from('torn')]))
    await rf.close()
  })

  test('a write failing in its second file after rotating cuts both back', async () => {
    const root = await newRoot()
    let writes = 0
    const c = clock()
    const rf = new RotatingFile(options(root, {
      sizeRotate: 10,
      now: c.now,
      open: instrumentedOpen({
        writev: async (real, bufs) => {
          if (++writes === 3) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
          return real.writev(bufs)
        },
      }),
    }))
    await rf.write(buffers([5]))
    const first = rf.currentPath!
    c.set(T0 + 1000)
    await rejectsWith(rf.write(buffers([5, 10], 1)), ErrorCodes.STREAM_WRITE_FAILED)
    assert.deepEqual(await fsp.readFile(first), Buffer.concat(buffers([5])), 'the first file cut back to before the call')
    assert.deepEqual(await filesUnder(root), ['b-1700000000.log'], 'the second, emptied, removed')
    await rf.close()
  })
})

describe('listTemplateFiles (what a backup left for replay)', () => {
  test('every bucket\'s files, oldest first, and nothing the template did not render', async () => {
    const root = await newRoot()
    const c = clock()
    for (const [bucket, at] of [['b', T0 + 2000], ['a', T0], ['a', T0 + 1000], ['c.d', T0 + 3000]] as const) {
      c.set(at)
      const f = new RotatingFile(options(root, { template: '{bucket}{PS}{ts}-{rand}.frames', bucket, now: c.now }))
      await f.write(buffers([10]))
      await f.close()
    }
    await fsp.writeFile(path.join(root, 'a', 'notes.txt'), 'not a frame file')
    await fsp.writeFile(path.join(root, 'stray-1700000000-AbCdEfGh.frames'), 'wrong folder')
    const listed = await listTemplateFiles(root, '{bucket}{PS}{ts}-{rand}.frames', 'h1')
    assert.deepEqual(listed.map((f) => path.relative(root, f).split(path.sep)[0]), ['a', 'a', 'b', 'c.d'])
    assert.ok(listed.every((f) => isInside(root, f)))
  })

  test('a template naming {ts} twice in one segment, and empty segments, are handled', async () => {
    const root = await newRoot()
    const f = new RotatingFile(options(root, { template: 'x//{bucket}-{ts}-{ts}.log' }))
    await f.write(buffers([5]))
    await f.close()
    assert.equal((await listTemplateFiles(root, 'x//{bucket}-{ts}-{ts}.log', 'h1')).length, 1)
  })
})
