// Memory pressure pauses reading: a real listener on a real UNIX socket, a router that only
// records what arrives, and the MemoryBudget that decides (memory-budget.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KahetsClient } from '../../clients/node/index.ts'
import { Listener } from '../../src/actors/listener.ts'
import { createLogger } from '../../src/log.ts'
import { MemoryBudget } from '../../src/memory-budget.ts'
import type { Frame } from '../../src/protocol/frame.ts'
import { Stats } from '../../src/stats.ts'
import { waitFor } from '../helpers/wait.ts'

/** A started listener in a temp folder whose router records payloads, paused by `budget`. */
async function pressuredListener (budget: MemoryBudget): Promise<{ listener: Listener, socket: string, got: string[], done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kahets-pressure-'))
  const got: string[] = []
  const listener = new Listener({
    socketPath: join(dir, 'k.sock'),
    socketMode: 0o600,
    maxFrameBytes: 1024 * 1024,
    router: { deliver: (_bucket: string, frames: readonly Frame[]) => { for (const f of frames) got.push(f.payload.toString()) } },
    stats: new Stats(),
    log: createLogger('fatal'),
    budget,
    shutdownTimeoutMs: 5000,
    shutdownDrainMs: 50,
  })
  budget.onPressure((on) => { listener.pauseReading(on) })
  await listener.start()
  return { listener, socket: join(dir, 'k.sock'), got, done: () => rm(dir, { recursive: true, force: true }) }
}

test('past MAXMEMORY the sessions stop reading; under the intake limit they read on, nothing lost', async () => {
  const budget = new MemoryBudget(1000)
  const { listener, socket, got, done } = await pressuredListener(budget)
  const client = await KahetsClient.connect(socket)
  try {
    client.send('b', 'before', null)
    await client.flush()
    await waitFor(() => got.length === 1, { what: 'the first message' })

    budget.acquireSpill(1001) // the backup is behind: reading pauses
    assert.equal(budget.underPressure, true)
    for (let i = 0; i < 100; i++) client.send('b', `during ${i}`, null)
    await client.flush() // in the kernel's socket buffer, not read
    // Nothing may arrive while paused; give the event loop every chance to deliver it.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(got, ['before'])

    budget.release(1001) // caught up
    await waitFor(() => got.length === 101, { what: 'the messages sent while paused' })
    assert.deepEqual(got.slice(1), Array.from({ length: 100 }, (_, i) => `during ${i}`))
  } finally {
    await client.close()
    await listener.stop()
    await done()
  }
})

test('a connection accepted while reading is paused starts paused; shutdown reads it anyway', async () => {
  const budget = new MemoryBudget(1000)
  const { listener, socket, got, done } = await pressuredListener(budget)
  budget.acquireSpill(2000)
  const client = await KahetsClient.connect(socket)
  for (let i = 0; i < 10; i++) client.send('b', `m${i}`, null)
  await client.flush()
  await waitFor(() => listener.sessions === 1, { what: 'the session' })
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(got, [])
  await listener.stop() // still under pressure: a shutdown reads what clients sent regardless
  assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => `m${i}`))
  await client.close().catch(() => {})
  await done()
})
