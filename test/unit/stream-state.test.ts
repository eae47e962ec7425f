// The stream modes' transition table (src/actors/stream-state.ts), one case per row and
// column that does something; the rest of the table is "ignored, stays", checked at the end.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { initialState, transition, type StreamEvent, type StreamMode, type StreamState } from '../../src/actors/stream-state.ts'

const at = (mode: StreamMode, again = false, canReplay = true): StreamState => ({ mode, again, canReplay })

const rows: Array<[string, StreamState, StreamEvent, StreamState, string[]]> = [
  // failed
  ['normal, failed with a backup: fail over', at('normal'), { type: 'failed', backup: true }, at('backup'), ['divert', 'wait']],
  ['normal, failed without a backup: hold and retry', at('normal', false, false), { type: 'failed', backup: false }, at('retrying', false, false), ['divert', 'wait']],
  ['draining, failed: fail over (the replay ends by itself)', at('draining'), { type: 'failed', backup: true }, at('backup'), ['divert', 'wait']],
  // tick
  ['normal, tick with a replay wanted: drain in the background', at('normal', true), { type: 'tick' }, at('draining'), ['drain']],
  ['normal, tick with nothing wanted', at('normal'), { type: 'tick' }, at('normal'), []],
  ['backup, tick: probe', at('backup'), { type: 'tick' }, at('backup'), ['probe']],
  ['retrying, tick: probe', at('retrying', false, false), { type: 'tick' }, at('retrying', false, false), ['probe']],
  // probed
  ['backup, probe ok: replay the backup', at('backup'), { type: 'probed', ok: true }, at('replaying'), ['replay']],
  ['backup, probe ok, no files to replay (a Kafka backup): resume', at('backup', false, false), { type: 'probed', ok: true }, at('normal', false, false), ['resume']],
  ['backup, probe failed: wait', at('backup'), { type: 'probed', ok: false }, at('backup'), ['wait']],
  ['retrying, probe ok: resume', at('retrying', false, false), { type: 'probed', ok: true }, at('normal', false, false), ['resume']],
  ['retrying, probe failed: wait', at('retrying', false, false), { type: 'probed', ok: false }, at('retrying', false, false), ['wait']],
  // spilled
  ['normal, spilled: a replay at the next tick', at('normal'), { type: 'spilled' }, at('normal', true), ['wait']],
  ['draining, spilled: another replay after this one', at('draining'), { type: 'spilled' }, at('draining', true), []],
  ['replaying, spilled: another replay after this one', at('replaying'), { type: 'spilled' }, at('replaying', true), []],
  ['backup, spilled: the coming replay takes it', at('backup'), { type: 'spilled' }, at('backup'), []],
  ['normal, spilled, no backup files: nothing to replay', at('normal', false, false), { type: 'spilled' }, at('normal', false, false), []],
  // leftovers
  ['normal, leftovers: on the backup, probe at once', at('normal'), { type: 'leftovers' }, at('backup'), ['probe-now']],
  // replayed
  ['draining, background replay done, nothing more', at('draining'), { type: 'replayed', kind: 'background', ok: true, more: false }, at('normal'), []],
  ['draining, background replay done, the backup took more: again', at('draining'), { type: 'replayed', kind: 'background', ok: true, more: true }, at('normal', true), ['wait']],
  ['draining, background replay failed: again at the next tick', at('draining'), { type: 'replayed', kind: 'background', ok: false, more: false }, at('normal', true), ['wait']],
  ['replaying, recovery done: resume', at('replaying'), { type: 'replayed', kind: 'recovery', ok: true, more: false }, at('normal'), ['resume']],
  ['replaying, recovery done, more came in: resume, drain next tick', at('replaying'), { type: 'replayed', kind: 'recovery', ok: true, more: true }, at('normal', true), ['resume', 'wait']],
  ['replaying, recovery failed: back on the backup', at('replaying', true), { type: 'replayed', kind: 'recovery', ok: false, more: true }, at('backup'), ['divert', 'wait']],
]

for (const [name, from, event, to, effects] of rows) {
  test(name, () => {
    assert.deepEqual(transition(from, event), { state: to, effects })
  })
}

test('a stream starts normal, with nothing to replay', () => {
  assert.deepEqual(initialState(true), at('normal'))
})

test('every other (mode, event) pair is ignored: same state, no effect', () => {
  const events: StreamEvent[] = [
    { type: 'failed', backup: true }, { type: 'tick' }, { type: 'probed', ok: true }, { type: 'probed', ok: false }, { type: 'spilled' }, { type: 'leftovers' },
    { type: 'replayed', kind: 'background', ok: true, more: false }, { type: 'replayed', kind: 'recovery', ok: true, more: false },
  ]
  const modes: StreamMode[] = ['normal', 'draining', 'backup', 'retrying', 'replaying']
  const covered = new Set(rows.map(([, from, event]) => `${from.mode}/${event.type}/${event.type === 'replayed' ? event.kind : ''}`))
  for (const mode of modes) {
    for (const event of events) {
      const key = `${mode}/${event.type}/${event.type === 'replayed' ? event.kind : ''}`
      if (covered.has(key)) continue
      // A stream that retries has no backup, so nothing to replay.
      const from = mode === 'retrying' ? at(mode, false, false) : at(mode)
      assert.deepEqual(transition(from, event), { state: from, effects: [] }, key)
    }
  }
})
