// sd_listen_fds(3) semantics of takeListenFds: the variables are always removed (no child
// inherits them), and only the pid they name takes the descriptors.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConfigError } from '../../src/errors.ts'
import { takeListenFds } from '../../src/listen-fds.ts'

const PID = 4242

test('no LISTEN_PID: nothing passed', () => {
  assert.deepEqual(takeListenFds({ LISTEN_FDS: '1' }, PID), [])
})

test('LISTEN_PID of another process (inherited from a parent): nothing passed, and the variables are removed', () => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'kahets.socket', OTHER: 'kept' }
  assert.deepEqual(takeListenFds(env, PID), [])
  assert.deepEqual(env, { OTHER: 'kept' })
})

test('LISTEN_FDS=0 for this pid: nothing passed, the variables removed', () => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: String(PID), LISTEN_FDS: '0' }
  assert.deepEqual(takeListenFds(env, PID), [])
  assert.deepEqual(env, {})
})

test('malformed variables are configuration errors naming the variable, and are removed too', () => {
  for (const [env, path] of [
    [{ LISTEN_PID: 'abc', LISTEN_FDS: '1' }, 'LISTEN_PID'],
    [{ LISTEN_PID: String(PID), LISTEN_FDS: 'one' }, 'LISTEN_FDS'],
    [{ LISTEN_PID: String(PID) }, 'LISTEN_FDS'],
  ] as Array<[NodeJS.ProcessEnv, string]>) {
    assert.throws(() => takeListenFds(env, PID), (err: unknown) => err instanceof ConfigError && err.problems[0].path === path, JSON.stringify(env))
    assert.equal(env.LISTEN_PID, undefined)
    assert.equal(env.LISTEN_FDS, undefined)
  }
})

test('the descriptors from 3 on are checked to be sockets', () => {
  // In this process fd 3.. are Node's own (epoll, pipes): whatever they are, a descriptor that
  // is not a socket or not open is named.
  const env: NodeJS.ProcessEnv = { LISTEN_PID: String(PID), LISTEN_FDS: '1000' }
  assert.throws(() => takeListenFds(env, PID), (err: unknown) => err instanceof ConfigError && /descriptor \d+ is not (a socket|open)/.test(err.problems[0].message))
})
