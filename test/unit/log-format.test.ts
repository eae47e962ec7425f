// Log lines as journald and a terminal get them (src/log-format.ts), and how the format is
// picked from the descriptor and JOURNAL_STREAM (src/log.ts).
import assert from 'node:assert/strict'
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { formatJournal, formatReadable, syslogPriority } from '../../src/log-format.ts'
import { createLogger, logFormatFor } from '../../src/log.ts'

const dir = mkdtempSync(join(tmpdir(), 'kahets-log-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })

test('pino levels map to syslog priorities: fatal crit, error err, warn warning, info info, debug and trace debug', () => {
  assert.deepEqual([60, 50, 40, 30, 20, 10].map(syslogPriority), [2, 3, 4, 6, 7, 7])
})

test('a journal line: <priority>, level, message, fields; no time or pid (journald has them), one line', () => {
  const err = { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x (y.ts:1:1)', code: 'EIO' }
  const line = formatJournal({ level: 50, time: 1, pid: 7, hostname: 'h', name: 'kahets', msg: 'reload rejected', file: '/etc/kahets/buckets.json', problems: ['$.buckets: bad'], err })
  assert.equal(line, '<3>ERROR reload rejected file=/etc/kahets/buckets.json problems=["$.buckets: bad"] err={"type":"Error","message":"boom","stack":"Error: boom\\n    at x (y.ts:1:1)","code":"EIO"}')
  assert.equal(formatJournal({ level: 40, msg: 'invalid frame', reason: 'bucket charset', suppressed: 0 }), '<4>WARN  invalid frame reason="bucket charset" suppressed=0')
})

test('a terminal line: time, level, message, fields; an error\'s stack on the lines after', () => {
  const line = formatReadable({ level: 30, time: Date.UTC(2026, 10, 30, 6, 0, 0, 123), pid: 7, msg: 'listening', socket: '/run/kahets/kahets.sock', mode: '660' }, { time: true, stackLines: true })
  assert.equal(line, '2026-11-30T06:00:00.123Z INFO  listening socket=/run/kahets/kahets.sock mode=660')
  const withStack = formatReadable({ level: 60, time: 0, msg: 'shutdown failed', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' } }, { time: false, stackLines: true })
  assert.equal(withStack, 'FATAL shutdown failed err={"type":"Error","message":"boom"}\n    Error: boom\n        at x')
})

test('the journal format only when the descriptor is the one JOURNAL_STREAM names; JSON on a file or pipe otherwise', () => {
  const file = join(dir, 'journal-stream')
  const fd = openSync(file, 'w')
  try {
    const st = fstatSync(fd, { bigint: true })
    assert.equal(logFormatFor(fd, { JOURNAL_STREAM: `${st.dev}:${st.ino}` }), 'journal')
    assert.equal(logFormatFor(fd, { JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }), 'json', 'inherited from a parent whose stdout was the journal')
    assert.equal(logFormatFor(fd, {}), 'json')
    assert.equal(logFormatFor(fd, { JOURNAL_STREAM: 'garbage' }), 'json')
    // The logger writes what the format says.
    const log = createLogger('info', fd, 'journal')
    log.error({ code: 'X' }, 'it failed')
    log.info('fine')
    log.debug('not at this level')
  } finally {
    closeSync(fd)
  }
  assert.equal(readFileSync(file, 'utf8'), '<3>ERROR it failed code=X\n<6>INFO  fine\n')
})
