// One root pino logger; each actor takes a child({ bucket, stream, ... }). Where its lines go
// decides how they look (docs/operations-systemd.md): JSON lines by default (what log
// shippers and the tests read); under systemd, when stdout is the journal stream
// (JOURNAL_STREAM names its device:inode), each line starts with its syslog priority, `<3>`,
// so that `journalctl -p err` works; on a terminal, readable lines.
import { fstatSync } from 'node:fs'
import { isatty } from 'node:tty'
import { pino, type DestinationStream, type Logger } from 'pino'
import type { LogLevel } from './config/env.ts'
import { formatJournal, formatReadable } from './log-format.ts'

export type { Logger }

export type LogFormat = 'json' | 'journal' | 'terminal'

/**
 * The format for lines written to `fd`. JOURNAL_STREAM alone is not enough: a child of a
 * service inherits it while its stdout may be a pipe to its parent, so the descriptor's
 * device and inode must be the ones it names (systemd.exec(5), $JOURNAL_STREAM).
 */
export function logFormatFor (fd: number, env: NodeJS.ProcessEnv = process.env): LogFormat {
  const journal = env.JOURNAL_STREAM
  if (journal !== undefined && journal !== '') {
    try {
      const st = fstatSync(fd, { bigint: true })
      if (journal === `${st.dev}:${st.ino}`) return 'journal'
    } catch {
      // A descriptor that cannot be stat-ed is not the journal's.
    }
  }
  return isatty(fd) ? 'terminal' : 'json'
}

export function createLogger (level: LogLevel, destination: number = 1, format: LogFormat = logFormatFor(destination)): Logger {
  const sink = pino.destination({ dest: destination, sync: true })
  const options = { level, base: { pid: process.pid, name: 'kahets' } }
  if (format === 'json') return pino(options, sink)
  const render = format === 'journal'
    ? formatJournal
    : (record: Record<string, unknown>) => formatReadable(record, { time: true, stackLines: true })
  // pino hands each record to write() as its JSON line: logs are few (rate-limited where a
  // client could flood them), so parsing it back costs nothing that matters.
  const stream: DestinationStream = {
    write (line: string): void {
      sink.write(render(JSON.parse(line) as Record<string, unknown>) + '\n')
    },
  }
  return pino(options, stream)
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
