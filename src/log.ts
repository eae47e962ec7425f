// One root pino logger; each actor takes a child({ bucket, stream, ... }).
import { pino, type Logger } from 'pino'
import type { LogLevel } from './config/env.ts'

export type { Logger }

export function createLogger (level: LogLevel, destination: number = 1): Logger {
  return pino({ level, base: { pid: process.pid, name: 'kahets' } }, pino.destination({ dest: destination, sync: true }))
}

/**
 * Logs an event at most once per `intervalMs` per key and says how many were held back, so
 * a client spraying garbage cannot flood the log (docs/protocol.md#what-happens-to-bad-input: rate-limited warn).
 */
export class RateLimitedLog {
  readonly #intervalMs: number
  readonly #last = new Map<string, { at: number, suppressed: number }>()

  constructor (intervalMs = 10_000) {
    this.#intervalMs = intervalMs
  }

  warn (log: Logger, key: string, fields: object, msg: string): void {
    this.#emit(key, (suppressed) => log.warn({ ...fields, suppressed }, msg))
  }

  error (log: Logger, key: string, fields: object, msg: string): void {
    this.#emit(key, (suppressed) => log.error({ ...fields, suppressed }, msg))
  }

  #emit (key: string, write: (suppressed: number) => void): void {
    const now = Date.now()
    const seen = this.#last.get(key)
    if (seen !== undefined && now - seen.at < this.#intervalMs) {
      seen.suppressed++
      return
    }
    write(seen?.suppressed ?? 0)
    this.#last.set(key, { at: now, suppressed: 0 })
  }
}
