// The spool as files: RotatingFile writes the spool header once per file (the `header`
// option), FileStream's `spool` format writes checksummed records, and the reader reads them
// back whole, also across rotations and a cut-back after a failed write.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { RotatingFile, type WritableFile } from '../../src/streams/rotating-file.ts'
import { FileStream } from '../../src/streams/file-stream.ts'
import { readFrameFile } from '../../src/streams/frame-file.ts'
import { encodeSpoolRecords, spoolHeader, SPOOL_HEADER_BYTES } from '../../src/protocol/spool.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { FrameOrigin, WireFrame, type Frame } from '../../src/protocol/frame.ts'
import { makeTempDir } from '../helpers/kahets.ts'

function frames (n: number, bucket = 'orders', from = 0): Frame[] {
  const msgs = Array.from({ length: n }, (_, i) => ({ bucket, key: `k${from + i}`, payload: `payload ${from + i}` }))
  const wire = encodeFrames(msgs)
  const origin = new FrameOrigin(wire, 1_700_000_000_000 + from)
  const out: Frame[] = []
  for (let at = 0; at < wire.length;) {
    const end = at + 4 + wire.readUInt32LE(at)
    out.push(new WireFrame(bucket, origin, at, end))
    at = end
  }
  return out
}

async function readAll (file: string): Promise<{ payloads: string[], result: Awaited<ReturnType<typeof readFrameFile>> }> {
  const payloads: string[] = []
  const result = await readFrameFile(file, async (b) => { for (const f of b) payloads.push(f.payload.toString()) })
  return { payloads, result }
}

test('every file RotatingFile creates starts with the header, counted in sizeRotate', async () => {
  const root = await makeTempDir()
  const header = spoolHeader()
  const rf = new RotatingFile({ root, template: '{bucket}-{ts}.spool', bucket: 'b', hostname: 'h', sizeRotate: 16 + 20, maxFiles: 0, fsync: false, now: () => 1_700_000_000_000, header })
  await rf.write([Buffer.alloc(20, 1), Buffer.alloc(20, 2), Buffer.alloc(30, 3)])
  await rf.close()
  const files = (await fsp.readdir(root)).sort()
  assert.equal(files.length, 3, files.join(' '))
  for (const f of files) {
    const bytes = await fsp.readFile(path.join(root, f))
    assert.deepEqual(bytes.subarray(0, SPOOL_HEADER_BYTES), header)
  }
  // A buffer larger than sizeRotate goes alone into its own file, rather than looping.
  assert.equal((await fsp.readFile(path.join(root, files[2]!))).length, 16 + 30)
})

test('a failed write cuts a spool file back to where the call started, header kept; a header-only file is removed', async () => {
  const root = await makeTempDir()
  let failAfter: number | null = null
  const open = async (file: string): Promise<WritableFile> => {
    const real = await fsp.open(file, 'wx')
    return {
      writev: async (bufs) => {
        const header = bufs.length === 1 && bufs[0]!.length === SPOOL_HEADER_BYTES
        if (failAfter === null || header) return await real.writev(bufs)
        if (failAfter === 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
        const { bytesWritten } = await real.writev([Buffer.concat(bufs).subarray(0, failAfter)])
        failAfter = 0
        return { bytesWritten }
      },
      sync: () => real.sync(),
      truncate: (len) => real.truncate(len),
      stat: () => real.stat(),
      close: () => real.close(),
    }
  }
  const stream = new FileStream({ path: root, fileNameTemplate: '{bucket}{PS}{ts}-{rand}.frames', sizeRotate: 1 << 20, maxFiles: 0, fsync: false, maxOpenFiles: 256 }, { format: 'spool' })
  await stream.write('orders', frames(100))
  await stream.close()
  const [file] = await stream.listClosedFiles()
  // Written through a RotatingFile of its own, failing half-way through the second record.
  const rf = new RotatingFile({ root, template: '{bucket}.spool', bucket: 'cut', hostname: 'h', sizeRotate: 1 << 20, maxFiles: 0, fsync: false, header: spoolHeader(), open })
  const records = encodeSpoolRecords(frames(3), 1) // one record a buffer
  await rf.write([records[0]!])
  failAfter = records[1]!.length + 5
  await assert.rejects(rf.write([records[1]!, records[2]!]))
  const cut = await readAll(path.join(root, 'cut.spool'))
  // Cut back to where the failed call started: its whole records too, since the caller
  // sends the whole batch again (docs/configuration.md#file-settings: a full disk).
  assert.deepEqual(cut.payloads, ['payload 0'])
  assert.equal(cut.result.whole, true)
  assert.equal(cut.result.tornBytes, 0)

  failAfter = 0
  await assert.rejects(rf.write([records[0]!]))
  assert.deepEqual((await fsp.readdir(root)).filter((f) => f.startsWith('cut')), ['cut.spool'], 'a file left with only its header is removed')
  await rf.close()

  const back = await readAll(file!)
  assert.equal(back.result.format, 'spool')
  assert.deepEqual(back.payloads, Array.from({ length: 100 }, (_, i) => `payload ${i}`))
})

test('FileStream: format frames writes kahego\'s plain frames, format spool the checksummed records', async () => {
  for (const format of ['frames', 'spool'] as const) {
    const root = await makeTempDir()
    const stream = new FileStream({ path: root, fileNameTemplate: '{bucket}.x', sizeRotate: 1 << 20, maxFiles: 0, fsync: true, maxOpenFiles: 256 }, { format })
    await stream.write('orders', frames(10))
    await stream.close()
    const bytes = await fsp.readFile(path.join(root, 'orders.x'))
    if (format === 'frames') assert.deepEqual(bytes, Buffer.concat(frames(10).map((f) => f.raw)))
    else assert.deepEqual(bytes.subarray(0, 8).toString(), 'KHTSPOOL')
    const { payloads, result } = await readAll(path.join(root, 'orders.x'))
    assert.equal(result.format, format)
    assert.equal(payloads.length, 10)
  }
})
