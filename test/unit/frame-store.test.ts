// The acknowledged Node client's frame store (clients/node/frame-store.ts): frames written back
// to back into chunks, dropped from the front, and read back from any absolute offset.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FrameStore } from '../../clients/node/frame-store.ts'

function put (store: FrameStore, text: string): void {
  const { buf, at } = store.reserve(text.length)
  buf.write(text, at, 'latin1')
}

test('frames across chunks: bytesFrom any kept offset, drop from the front, a frame larger than a chunk', () => {
  const store = new FrameStore()
  const frames: string[] = []
  for (let i = 0; i < 3000; i++) frames.push(`${i}:${'x'.repeat(i % 300)};`)
  frames.push('B'.repeat(600 * 1024)) // larger than a chunk: one of its own
  frames.push('after')
  for (const f of frames) put(store, f)
  assert.equal(store.frames, frames.length)
  assert.equal(store.bytes, frames.join('').length)
  assert.equal(store.bytesFrom(0).toString('latin1'), frames.join(''))

  store.drop(1000)
  const rest = frames.slice(1000).join('')
  assert.equal(store.frames, frames.length - 1000)
  assert.equal(store.start, frames.slice(0, 1000).join('').length)
  assert.equal(store.bytesFrom(store.start).toString('latin1'), rest)
  const mid = store.start + 12345
  assert.equal(store.bytesFrom(mid).toString('latin1'), rest.slice(12345))

  store.drop(store.frames)
  assert.equal(store.frames, 0)
  assert.equal(store.bytes, 0)
  assert.equal(store.bytesFrom(store.end).length, 0)
  put(store, 'next')
  assert.equal(store.bytesFrom(store.start).toString('latin1'), 'next')
})

test('a view handed out stays valid while later frames are appended behind it', () => {
  const store = new FrameStore()
  put(store, 'one;')
  const view = store.bytesFrom(0)
  put(store, 'two;')
  assert.equal(view.toString('latin1'), 'one;')
  assert.equal(store.bytesFrom(view.length).toString('latin1'), 'two;')
})
