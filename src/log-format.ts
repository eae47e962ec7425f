// How a pino line is shown where JSON is not wanted (src/log.ts decides where): under
// systemd, with its syslog priority as a `<N>` prefix (sd-daemon(3)), which journald reads
// so that `journalctl -p err` selects by it; on a terminal, as a readable line. Both are one
// line per record (journald would give a second line the default priority) except for an
// error's stack on a terminal. The fields are key=value, values JSON when they are not
// plain words.

/** pino's numeric levels → syslog priorities (fatal is crit, not emerg: emerg is wall(1)ed). */
export function syslogPriority (level: number): number {
  if (level >= 60) return 2
  if (level >= 50) return 3
  if (level >= 40) return 4
  if (level >= 30) return 6
  return 7
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }

/** pino's own keys, shown another way (level, time, msg) or not at all (journald has the pid). */
const OMITTED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name'])

function value (v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=\\]+$/.test(v) ? v : JSON.stringify(v)
  return JSON.stringify(v) ?? String(v)
}

export interface ReadableOptions {
  /** Show the record's time (a terminal); journald stamps its own. */
  time: boolean
  /** Print an error's stack on the lines after (a terminal); otherwise it stays in `err`'s JSON. */
  stackLines: boolean
}

/** One pino record (its JSON line, parsed) as a readable line, without a trailing newline. */
export function formatReadable (record: Record<string, unknown>, opts: ReadableOptions): string {
  const level = typeof record.level === 'number' ? record.level : 30
  const parts: string[] = []
  if (opts.time && typeof record.time === 'number') parts.push(new Date(record.time).toISOString())
  parts.push((LEVEL_NAMES[level] ?? `LEVEL${level}`).padEnd(5))
  if (typeof record.msg === 'string') parts.push(record.msg)
  let stack = ''
  for (const [k, v] of Object.entries(record)) {
    if (OMITTED.has(k) || v === undefined) continue
    if (opts.stackLines && k === 'err' && typeof v === 'object' && v !== null && typeof (v as { stack?: unknown }).stack === 'string') {
      const { stack: s, ...rest } = v as { stack: string }
      stack = '\n' + s.split('\n').map((l) => `    ${l}`).join('\n')
      parts.push(`${k}=${value(rest)}`)
      continue
    }
    parts.push(`${k}=${value(v)}`)
  }
  return parts.join(' ') + stack
}

/** One pino record as a journal line: `<priority>` then the readable line without the time. */
export function formatJournal (record: Record<string, unknown>): string {
  const level = typeof record.level === 'number' ? record.level : 30
  return `<${syslogPriority(level)}>${formatReadable(record, { time: false, stackLines: false })}`
}
