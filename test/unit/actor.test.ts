// The actor runtime (src/actors/actor.ts): mailbox order, one message at a time, supervision
// directives and the draining stop, on a small actor that records what it sees.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Actor, type ActorRef, type Directive, type Supervisor } from '../../src/actors/actor.ts'

type Msg = { n: number, wait?: Promise<void>, fail?: 'sync' | 'async' }
type Sig = { kind: 'sys', n: number }

class Recorder extends Actor<Msg, Sig> {
  readonly seen: string[] = []
  running = 0
  maxRunning = 0
  unhandled: number[] | null = null

  protected override receive (msg: Msg): void | Promise<void> {
    this.seen.push(`user ${msg.n}`)
    if (msg.fail === 'sync') throw new Error(`boom ${msg.n}`)
    if (msg.wait === undefined && msg.fail === undefined) return
    this.running++
    this.maxRunning = Math.max(this.maxRunning, this.running)
    return (async () => {
      await msg.wait
      this.running--
      if (msg.fail === 'async') throw new Error(`boom ${msg.n}`)
    })()
  }

  protected override receiveSystem (msg: Sig): void {
    this.seen.push(`sys ${msg.n}`)
  }

  protected override onStop (unhandled: Msg[]): void {
    this.seen.push('stopped')
    this.unhandled = unhandled.map((m) => m.n)
  }

  protected override onRestart (error: unknown): void {
    this.seen.push(`restart (${(error as Error).message})`)
  }
}

class Parent implements Supervisor {
  readonly failures: string[] = []
  constructor (readonly directive: Directive) {}
  childFailed (_child: ActorRef, error: unknown): Directive {
    this.failures.push((error as Error).message)
    return this.directive
  }
}

function deferred (): { promise: Promise<void>, resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => { resolve = r })
  return { promise, resolve }
}

test('messages are handled in order, system messages before the user messages still queued', async () => {
  const a = new Recorder('a', new Parent('resume'))
  a.tell({ n: 1 })
  a.tell({ n: 2 })
  a.signal({ kind: 'sys', n: 1 })
  a.tell({ n: 3 })
  await a.stop()
  assert.deepEqual(a.seen, ['sys 1', 'user 1', 'user 2', 'user 3', 'stopped'])
})

test('an async handler is awaited: the next message waits for it, one at a time', async () => {
  const a = new Recorder('a', new Parent('resume'))
  const gate = deferred()
  a.tell({ n: 1, wait: gate.promise })
  a.tell({ n: 2 })
  a.tell({ n: 3, wait: Promise.resolve() })
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(a.seen, ['user 1'], 'message 2 waits while message 1 is under way')
  gate.resolve()
  await a.stop()
  assert.deepEqual(a.seen, ['user 1', 'user 2', 'user 3', 'stopped'])
  assert.equal(a.maxRunning, 1)
})

test('a handler that throws or rejects goes to the supervisor; resume goes on with the next message', async () => {
  const parent = new Parent('resume')
  const a = new Recorder('a', parent)
  a.tell({ n: 1, fail: 'sync' })
  a.tell({ n: 2, fail: 'async' })
  a.tell({ n: 3 })
  await a.stop()
  assert.deepEqual(parent.failures, ['boom 1', 'boom 2'])
  assert.deepEqual(a.seen, ['user 1', 'user 2', 'user 3', 'stopped'])
})

test('restart runs onRestart before the next message', async () => {
  const a = new Recorder('a', new Parent('restart'))
  a.tell({ n: 1, fail: 'async' })
  a.tell({ n: 2 })
  await a.stop()
  assert.deepEqual(a.seen, ['user 1', 'restart (boom 1)', 'user 2', 'stopped'])
})

test('the stop directive stops at once and hands the queued messages to onStop', async () => {
  const a = new Recorder('a', new Parent('stop'))
  a.tell({ n: 1, fail: 'sync' })
  a.tell({ n: 2 })
  a.tell({ n: 3 })
  await a.stopped
  assert.deepEqual(a.seen, ['user 1', 'stopped'])
  assert.deepEqual(a.unhandled, [2, 3])
  assert.equal(a.state, 'stopped')
  assert.throws(() => a.tell({ n: 4 }), /stopping; message refused/)
})

test('a stopped actor refuses messages; a stopping one still takes them and drains them', async () => {
  const a = new Recorder('a', new Parent('resume'))
  const gate = deferred()
  a.tell({ n: 1, wait: gate.promise })
  const stopped = a.stop()
  a.tell({ n: 2 })
  gate.resolve()
  await stopped
  assert.deepEqual(a.seen, ['user 1', 'user 2', 'stopped'])
  assert.throws(() => a.tell({ n: 3 }), /message refused/)
})
