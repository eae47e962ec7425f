// An acknowledged client that sends and never reads what kahets answers (docs/protocol.md,
// "ACK"): kahets must hold a bounded amount for it, keep serving other clients, and lose
// nothing it read. ACKs are coalesced to one pending ACK while the client is not reading;
// SYNCEDs are the client's own asking, so a client that piles them up is not read further
// (logged) until it reads, and then everything proceeds.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createConnection, createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import { AckLevel, ControlReader, encodeHello, encodeSync, type ControlFrame } from '../../src/protocol/control.ts'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { startKahets, startKahetsWithMetrics } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'
import { scrape, sample } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

const config = {
  streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out' } } },
  buckets: [
    { id: 'mute', streams: ['files'], batch: 500, batchTimeout: 20 },
    { id: 'other', streams: ['files'], batch: 100, batchTimeout: 20 },
  ],
}

interface Mute {
  socket: Socket
  /** Writes and resolves once Node handed the bytes to the kernel, or false at `until`. */
  write: (b: Buffer, until: number) => Promise<boolean>
}

async function connectMute (path: string): Promise<Mute> {
  const socket = createConnection(path)
  await once(socket, 'connect')
  // Never read: what kahets writes stays in the kernel, then in kahets.
  socket.pause()
  return {
    socket,
    write: async (b, until) => {
      if (socket.write(b)) return true
      const drained = once(socket, 'drain').then(() => true)
      const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), Math.max(0, until - Date.now())).unref())
      return await Promise.race([drained, timeout])
    },
  }
}

/** Resumes reading a muted socket and returns a reader of its control frames. */
function readAll (s: Socket): { frames: ControlFrame[] } {
  const reader = new ControlReader()
  const out = { frames: [] as ControlFrame[] }
  s.on('data', (d: Buffer) => { out.frames.push(...reader.push(d)) })
  s.resume()
  return out
}

/**
 * How many 18-byte writes (one ACK each) the kernel takes from a server into a UNIX socket
 * whose client does not read (its paused Node socket included), before the writer has to hold them itself.
 */
async function kernelTakesAcks (dir: string): Promise<number> {
  const path = `${dir}/probe.sock`
  const server = createServer()
  server.listen(path)
  await once(server, 'listening')
  const accepted = once(server, 'connection')
  const client = createConnection(path)
  await once(client, 'connect')
  client.pause() // as connectMute does
  const [conn] = await accepted as [Socket]
  // The client's Node socket reads up to its highWaterMark while paused: let it.
  let n = 0
  while (n < 1_000_000) {
    conn.write(Buffer.alloc(18))
    n++
    if (conn.writableLength > 0) {
      await delay(200)
      if (conn.writableLength > 0) break
    }
  }
  conn.destroy()
  client.destroy()
  server.close()
  return n - 1
}

function batchOf (bucket: string, from: number, count: number): Buffer {
  return encodeFrames(Array.from({ length: count }, (_, i) => ({ bucket, key: null, payload: `${bucket}-${String(from + i).padStart(8, '0')}-${'x'.repeat(70)}` })))
}

async function otherClientDelivers (path: string, dir: string, tag: string): Promise<void> {
  const s = createConnection(path)
  await once(s, 'connect')
  const frames = encodeFrames(Array.from({ length: 1000 }, (_, i) => ({ bucket: 'other', key: null, payload: `${tag}-${i}` })))
  s.end(frames)
  await once(s, 'close')
  await waitFor(async () => {
    const got = (await readFrameFiles(`${dir}/out`)).flatMap((f) => f.frames).filter((f) => f.payload.toString().startsWith(`${tag}-`))
    return got.length === 1000
  }, { timeoutMs: 20_000, what: `client ${tag}'s 1,000 frames while another client reads nothing` })
}

test('an accepted-level client that never reads its ACKs keeps being read; kahets holds one pending ACK for it, loses nothing', async () => {
  const k = await startKahetsWithMetrics({ buckets: config })
  const mute = await connectMute(k.socket)
  await mute.write(encodeHello(AckLevel.ACCEPTED), Date.now() + 5000)

  // 15 s of data and never a read: every write must go through (kahets keeps reading).
  const kernel = await kernelTakesAcks(k.dir)
  const until = Date.now() + 15_000
  let sent = 0
  let stalled = false
  const other = delay(2000).then(async () => { await otherClientDelivers(k.socket, k.dir, 'during') })
  while (Date.now() < until) {
    // Steady, so that the counts move every ACK interval.
    if (!await mute.write(batchOf('mute', sent, 20), until + 5000)) { stalled = true; break }
    sent += 20
    await delay(1)
  }
  await other
  assert.equal(stalled, false, 'kahets stopped reading a client that asked for nothing but ACKs')
  assert.ok(sent >= 10_000, `only ${sent} frames sent in 15 s`)

  const got = readAll(mute.socket)
  mute.socket.write(encodeSync(1))
  await waitFor(() => got.frames.some((f) => f.type === 'synced'), { timeoutMs: 30_000, what: 'SYNCED 1' })
  const synced = got.frames.find((f) => f.type === 'synced')!
  assert.deepEqual(synced, { type: 'synced', token: 1, settled: sent, refused: 0 })
  // What reached the client is what the kernel buffer held plus one coalesced ACK (and the
  // ACKs after it read again), not one per 5 ms of the run (3,000).
  const acks = got.frames.filter((f) => f.type === 'ack').length
  assert.ok(acks <= kernel + 10, `${acks} ACKs reached a client that did not read for 15 s; the kernel holds ${kernel}`)
  mute.socket.end()

  await waitFor(async () => {
    const m = await scrape(k.metrics)
    return sample(m, 'kahets_delivered_total', { bucket: 'mute', stream: 'files' }) === sent
  }, { timeoutMs: 20_000, what: `all ${sent} frames delivered` })
  const files = (await readFrameFiles(`${k.dir}/out`)).flatMap((f) => f.frames).filter((f) => f.bucket === 'mute')
  assert.equal(files.length, sent)
  assert.equal(await k.stop(), 0)
})

test('a client piling up unread SYNCEDs is not read past the 64 KiB bound, logged; others are served; it resumes when it reads', async () => {
  const k = await startKahets({ buckets: config })
  const mute = await connectMute(k.socket)
  await mute.write(encodeHello(AckLevel.ACCEPTED), Date.now() + 5000)

  // A SYNC after every 10 frames and never a read: the SYNCEDs (26 bytes) pile up.
  let sent = 0
  let token = 0
  let stalled = false
  const until = Date.now() + 30_000
  while (Date.now() < until) {
    const parts: Buffer[] = []
    for (let i = 0; i < 50; i++) {
      parts.push(batchOf('mute', sent, 10), encodeSync(++token))
      sent += 10
    }
    if (!await mute.write(Buffer.concat(parts), Date.now() + 3000)) { stalled = true; break }
  }
  assert.ok(stalled, `kahets read ${sent} frames and answered ${token} SYNCs into a socket nobody reads`)
  await waitFor(() => k.logs().some((l) => typeof l.msg === 'string' && l.msg.includes('does not read')), { timeoutMs: 10_000, what: 'the log line for a client that does not read' })
  const line = k.logs().find((l) => typeof l.msg === 'string' && l.msg.includes('does not read'))!
  assert.equal(line.level, 40, 'a warning')

  // Other clients do not notice.
  await otherClientDelivers(k.socket, k.dir, 'while-blocked')

  // The client reads: kahets reads it again and answers every SYNC, the last with everything.
  const got = readAll(mute.socket)
  await waitFor(() => got.frames.some((f) => f.type === 'synced' && f.token === token), { timeoutMs: 60_000, what: `SYNCED ${token}` })
  const last = got.frames.findLast((f) => f.type === 'synced')!
  assert.deepEqual(last, { type: 'synced', token, settled: sent, refused: 0 })
  assert.equal(got.frames.filter((f) => f.type === 'synced').length, token)
  mute.socket.end()
  await once(mute.socket, 'close')
  assert.equal(await k.stop(), 0)
  const files = (await readFrameFiles(`${k.dir}/out`)).flatMap((f) => f.frames).filter((f) => f.bucket === 'mute')
  assert.equal(files.length, sent)
})
