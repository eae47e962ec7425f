// Waiting on a condition with a deadline: tests never sleep a fixed time and hope.
import { setTimeout as delay } from 'node:timers/promises'

const HUNG = Symbol('hung')

/**
 * Checks `check` every intervalMs until it returns something (not undefined, null or false)
 * or timeoutMs has passed. One attempt that does not settle (a scrape of a kahets busy in
 * one payload, a read that never returns) is given up on once it has run past the deadline
 * by another timeoutMs: the wait fails instead of hanging until the test's own timeout.
 */
export async function waitFor<T> (check: () => T | Promise<T>, opts: { timeoutMs?: number, intervalMs?: number, what?: string } = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000
  const deadline = Date.now() + timeoutMs
  const what = opts.what ?? 'a condition'
  let last: unknown
  while (true) {
    const attempt = Promise.resolve().then(check)
    attempt.catch(() => {}) // when given up on, it may still reject; nobody waits for it then
    const giveUp = new AbortController()
    const hung = delay(Math.max(0, deadline - Date.now()) + timeoutMs, HUNG, { signal: giveUp.signal }).catch(() => null)
    let v: T | typeof HUNG | null | undefined
    try {
      v = await Promise.race([attempt, hung])
    } catch (err) {
      last = err
    }
    giveUp.abort()
    if (v === HUNG) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: one check of it did not finish`)
    if (v !== undefined && v !== null && v !== false) return v as NonNullable<T>
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`)
    }
    await delay(opts.intervalMs ?? 20)
  }
}
