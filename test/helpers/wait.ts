// Waiting on a condition with a deadline: tests never sleep a fixed time and hope.
import { setTimeout as delay } from 'node:timers/promises'

export async function waitFor<T> (check: () => T | Promise<T>, opts: { timeoutMs?: number, intervalMs?: number, what?: string } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000)
  let last: unknown
  while (true) {
    try {
      const v = await check()
      if (v !== undefined && v !== null && v !== false) return v as NonNullable<T>
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${opts.timeoutMs ?? 10_000} ms waiting for ${opts.what ?? 'a condition'}${last === undefined ? '' : `: ${String(last)}`}`)
    }
    await delay(opts.intervalMs ?? 20)
  }
}
