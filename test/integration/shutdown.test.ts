// Shutdown reads every byte clients already handed to the kernel (docs/guarantees.md#clean-shutdown;
// issue 10 #2): clients keep writing while kahets is SIGTERMed and started again on the same
// socket, and every frame the kernel accepted is in the output exactly once.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { readFrameFiles } from '../helpers/frames.ts'
import { makeTempDir, ROOT, startKahets, type KahetsProcess } from '../helpers/kahets.ts'
import { assertFinalIdentity } from '../helpers/metrics.ts'
import { waitFor } from '../helpers/wait.ts'

const CLIENT = join(ROOT, 'test/fixtures/resending-client.py')
const CLIENTS = 4
const RUNS = 600
const PER_RUN = 500

function buckets (): object {
  return {
    streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out', sizeRotate: '1GB', fsync: false } } },
    buckets: [{ id: 'runs', streams: ['files'], batch: 1000, batchTimeout: 50 }],
  }
}

interface ClientResult { readonly sent: string[], readonly reconnects: number }

/** One resending-client.py writing RUNS runs of PER_RUN frames, 5 ms apart. */
function startClient (socket: string, id: string): Promise<ClientResult> {
  const proc = spawn('python3', [CLIENT, socket, 'runs', id, String(RUNS), String(PER_RUN), '5'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { err += d.toString() })
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => {
      if (code !== 0) reject(new Error(`client ${id} exited ${code}: ${err}`))
      else resolve({ sent: out.split('\n').filter((l) => l !== ''), reconnects: Number(/reconnects=(\d+)/.exec(err)?.[1]) })
    })
  })
}

async function countOutput (dir: string): Promise<Map<string, number>> {
  const seen = new Map<string, number>()
  for (const { frames } of await readFrameFiles(join(dir, 'out'))) {
    for (const f of frames) {
      const id = f.payload.toString('latin1').replace(/\.+$/, '')
      seen.set(id, (seen.get(id) ?? 0) + 1)
    }
  }
  return seen
}

interface Restart { sent: string[], reconnects: number[], seen: Map<string, number>, stopMs: number, first: KahetsProcess }

/** Clients write; in the middle of their runs kahets is SIGTERMed and started again. */
async function restartUnderLoad (env: Record<string, string>): Promise<Restart> {
  const dir = await makeTempDir()
  const first = await startKahets({ buckets: buckets(), dir, env })
  const clients = Array.from({ length: CLIENTS }, (_, i) => startClient(first.socket, `c${i}`))
  await waitFor(async () => (await countOutput(dir)).size > 20_000, { timeoutMs: 60_000, what: 'the clients to be under way' })
  const t0 = Date.now()
  assert.equal(await first.stop(), 0)
  assertFinalIdentity(first.logs())
  const stopMs = Date.now() - t0
  const second = await startKahets({ buckets: buckets(), dir, env })
  const results = await Promise.all(clients)
  assert.equal(await second.stop(), 0)
  assertFinalIdentity(second.logs())
  return { sent: results.flatMap((r) => r.sent), reconnects: results.map((r) => r.reconnects), seen: await countOutput(dir), stopMs, first }
}

function assertExactlyOnce (sent: string[], seen: Map<string, number>): void {
  const missing = sent.filter((id) => !seen.has(id))
  const twice = [...seen].filter(([, n]) => n > 1)
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} frames the kernel accepted are missing`)
  assert.deepEqual(twice.slice(0, 10), [], `${twice.length} frames written twice`)
}

test('SIGTERM while 4 clients write: every frame the kernel accepted is written exactly once', { timeout: 180_000 }, async () => {
  const r = await restartUnderLoad({})
  assert.equal(r.sent.length, CLIENTS * RUNS * PER_RUN, 'every client finished its runs')
  assertExactlyOnce(r.sent, r.seen)
  assert.equal(r.seen.size, r.sent.length)
  // Shutdown did not wait for the clients to stop writing: each learnt through EPIPE that the
  // first kahets was gone, and resent on a new connection.
  assert.ok(r.stopMs < 2000, `shutdown took ${r.stopMs} ms`)
  assert.deepEqual(r.reconnects, r.reconnects.map(() => 1))
  assert.ok(r.first.logs().some((l) => l.msg === 'shutdown reads every connection to its end (shutdown(2), SHUT_RD)'), 'the half-close binding loaded')
})

test('without the binding (KAHETS_HALF_CLOSE=off) shutdown reads until SHUTDOWN_TIMEOUT and says what it could not read', { timeout: 180_000 }, async () => {
  // The clients never pause SHUTDOWN_DRAIN_MS, so the fallback reads until the bound.
  const r = await restartUnderLoad({ KAHETS_HALF_CLOSE: 'off', SHUTDOWN_TIMEOUT: '1500', SHUTDOWN_DRAIN_MS: '50' })
  const logs = r.first.logs()
  assert.ok(logs.some((l) => l.msg === 'shutdown cannot half-close connections: it reads each until the client has been quiet for SHUTDOWN_DRAIN_MS, and what a client writes after that is lost' && l.reason === 'KAHETS_HALF_CLOSE=off'))
  assert.ok(logs.some((l) => l.msg === 'SHUTDOWN_TIMEOUT reached: closing a connection with bytes still unread' && l.unreadBytes === 'unknown'))
  assert.ok(r.stopMs >= 1400 && r.stopMs < 4000, `shutdown took ${r.stopMs} ms`)
  // What the fallback cannot promise is that nothing is lost; what it wrote is still whole and once.
  const twice = [...r.seen].filter(([, n]) => n > 1)
  assert.deepEqual(twice.slice(0, 10), [])
})

test('a client that went quiet is read to its end by the fallback too', { timeout: 60_000 }, async () => {
  const dir = await makeTempDir()
  const k = await startKahets({ buckets: buckets(), dir, env: { KAHETS_HALF_CLOSE: 'off' } })
  const { createConnection } = await import('node:net')
  const sock = createConnection(k.socket)
  await new Promise((resolve) => sock.once('connect', resolve))
  const bucket = Buffer.from('runs')
  for (let i = 0; i < 1000; i++) {
    const payload = Buffer.from(`q-${i}`)
    const head = Buffer.alloc(4)
    head.writeUInt32LE(2 + bucket.length + payload.length)
    sock.write(Buffer.concat([head, Buffer.from([bucket.length]), bucket, Buffer.from([0]), payload]))
  }
  await new Promise<void>((resolve) => sock.write('', () => resolve()))
  assert.equal(await k.stop(), 0)
  sock.destroy()
  const seen = await countOutput(dir)
  assert.equal(seen.size, 1000)
})

test('SHUTDOWN_TIMEOUT bounds the drain: what is left unread is counted and logged', { timeout: 60_000 }, async () => {
  // A client that trickles a frame a byte at a time is never quiet and never done: the
  // fallback reads it until the bound, then counts the unfinished frame as unread.
  const dir = await makeTempDir()
  const k = await startKahets({ buckets: buckets(), dir, env: { KAHETS_HALF_CLOSE: 'off', SHUTDOWN_TIMEOUT: '1000' } })
  const { createConnection } = await import('node:net')
  const sock = createConnection(k.socket)
  sock.on('error', () => {})
  await new Promise((resolve) => sock.once('connect', resolve))
  const head = Buffer.alloc(4)
  head.writeUInt32LE(5000)
  sock.write(Buffer.concat([head, Buffer.from([4]), Buffer.from('runs'), Buffer.from([0]), Buffer.alloc(994, 46)]))
  const trickle = setInterval(() => { if (!sock.destroyed) sock.write('.') }, 10)
  try {
    await waitFor(() => k.output().includes('"msg":"kahets started"'))
    const t0 = Date.now()
    assert.equal(await k.stop(), 0)
    assert.ok(Date.now() - t0 < 3000)
  } finally {
    clearInterval(trickle)
    sock.destroy()
  }
  const line = k.logs().find((l) => l.msg === 'shutdown: bytes clients had sent were left unread at SHUTDOWN_TIMEOUT (kahets_shutdown_unread_bytes_total)')
  assert.ok(line !== undefined && typeof line.unreadBytes === 'number' && line.unreadBytes >= 1000, `unread bytes logged: ${JSON.stringify(line)}`)
})
