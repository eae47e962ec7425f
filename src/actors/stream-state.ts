// The modes of one stream actor (docs/architecture.md#how-it-works, issue 10) as one pure function: (state, event) →
// { state, effects }. The actor (stream-actor.ts) feeds it events and performs the effects;
// nothing else changes the mode.
//
//   mode       deliveries go               left by
//   normal     into the stream, per lane   failed → backup | retrying; leftovers → backup
//   draining   as normal, while a replay   replayed → normal (again if more was spooled)
//              of spilled or diverted
//              frames runs in the background
//   backup     to the backup stream        probe ok → replaying (or normal: no files to replay)
//   retrying   held in memory (no backup,  probe ok → normal
//              so nothing to replay)
//   replaying  phase 1 to the backup,      replayed ok → normal; failed → backup
//              phase 2 held in their lanes
//
// states × events (— : ignored, stays):
//
//   event \ mode        normal            draining           backup              retrying          replaying
//   failed(backup?)     backup|retrying   backup|retrying    —                   —                 —
//                       divert, wait      divert, wait
//   tick                drain if again    —                  probe               probe             —
//   probed ok           —                 —                  replaying: replay   normal: resume    —
//                                                            (normal: resume
//                                                            when no files)
//   probed failed       —                 —                  wait                wait              —
//   spilled             again, wait       again              —                   —                 again
//   leftovers           backup, probe now —                  —                   —                 —
//   replayed(bg)        —                 normal; again      —                   —                 —
//                                         and wait if more
//   replayed(recovery)  —                 —                  —                   —                 ok: normal, resume
//                                                                                                  (again, wait if more)
//                                                                                                  failed: backup, wait
//
// `again`: the backup took frames a replay has not seen yet (a MAXMEMORY spill, a diverted
// destination, a replay that did not finish); they are drained at the next probe tick, so
// within two probe intervals of the stream being healthy (issue 10, finding 6).

export type StreamMode = 'normal' | 'draining' | 'backup' | 'retrying' | 'replaying'

export interface StreamState {
  readonly mode: StreamMode
  /** A replay of the backup is wanted at the next probe tick. */
  readonly again: boolean
  /** The stream has a backup whose files can be replayed into it. */
  readonly canReplay: boolean
}

export type StreamEvent =
  /** A write failed for the whole stream; the supervisor chose failover (backup) or restart. */
  | { readonly type: 'failed', readonly backup: boolean }
  /** The probe timer fired. */
  | { readonly type: 'tick' }
  | { readonly type: 'probed', readonly ok: boolean }
  /** The backup took frames that need a replay (a spill, a diverted destination). */
  | { readonly type: 'spilled' }
  /** Backup files from an earlier run were found at start. */
  | { readonly type: 'leftovers' }
  /**
   * A replay ended. `more`: the backup took frames while it ran, or holds some not yet in
   * a file, so another replay is due.
   */
  | { readonly type: 'replayed', readonly kind: 'background' | 'recovery', readonly ok: boolean, readonly more: boolean }

export type StreamEffect =
  /** Lanes that are not writing hand their deliveries to the backup (or hold them). */
  | 'divert'
  /** Arm the probe timer (1 s at most while retrying, else the probe interval). */
  | 'wait'
  /** Arm the probe timer to fire at once. */
  | 'probe-now'
  /** Ask the stream whether it takes writes again (answers with `probed`). */
  | 'probe'
  /** Replay the backup while deliveries wait (answers with `replayed`, kind recovery). */
  | 'replay'
  /** Replay the backup while deliveries go on (answers with `replayed`, kind background). */
  | 'drain'
  /** Held deliveries go back into their lanes, and every lane writes again. */
  | 'resume'

export interface Transition {
  readonly state: StreamState
  readonly effects: readonly StreamEffect[]
}

export function initialState (canReplay: boolean): StreamState {
  return { mode: 'normal', again: false, canReplay }
}

const stay = (state: StreamState): Transition => ({ state, effects: [] })

export function transition (state: StreamState, event: StreamEvent): Transition {
  const to = (mode: StreamMode, effects: StreamEffect[], again = state.again): Transition => ({ state: { ...state, mode, again }, effects })
  switch (event.type) {
    case 'failed':
      if (state.mode !== 'normal' && state.mode !== 'draining') return stay(state)
      return to(event.backup ? 'backup' : 'retrying', ['divert', 'wait'])
    case 'tick':
      switch (state.mode) {
        case 'normal': return state.again && state.canReplay ? to('draining', ['drain'], false) : to('normal', [], false)
        case 'backup':
        case 'retrying': return to(state.mode, ['probe'])
        default: return stay(state)
      }
    case 'probed':
      if (state.mode !== 'backup' && state.mode !== 'retrying') return stay(state)
      if (!event.ok) return to(state.mode, ['wait'])
      if (state.mode === 'backup' && state.canReplay) return to('replaying', ['replay'], false)
      return to('normal', state.again && state.canReplay ? ['resume', 'wait'] : ['resume'])
    case 'spilled':
      if (!state.canReplay) return stay(state)
      if (state.mode === 'normal') return to('normal', ['wait'], true)
      if (state.mode === 'backup') return stay(state)
      return to(state.mode, [], true)
    case 'leftovers':
      if (state.mode !== 'normal' || !state.canReplay) return stay(state)
      return to('backup', ['probe-now'])
    case 'replayed': {
      const again = state.again || event.more || !event.ok
      if (event.kind === 'background') {
        if (state.mode !== 'draining') return stay(state)
        return to('normal', again ? ['wait'] : [], again)
      }
      if (state.mode !== 'replaying') return stay(state)
      if (!event.ok) return to('backup', ['divert', 'wait'], false)
      return to('normal', again ? ['resume', 'wait'] : ['resume'], again)
    }
    default: {
      const never: never = event
      throw new Error(`unknown stream event ${JSON.stringify(never)}`)
    }
  }
}
