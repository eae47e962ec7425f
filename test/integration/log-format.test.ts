// The three log formats of a real kahets, picked from its environment (docs/operations-
// systemd.md): under systemd (stdout is the stream JOURNAL_STREAM names) each line carries
// its syslog priority, so `journalctl -p err` selects the errors; on a terminal, readable
// lines; JSON lines elsewhere, also when JOURNAL_STREAM was only inherited.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fstatSync, openSync, closeSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { BIN, makeTempDir, startKahets } from '../helpers/kahets.ts'
import { waitFor } from '../helpers/wait.ts'

const buckets = {
  streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out', fsync: false } } },
  buckets: [{ id: 'events', streams: ['files'] }],
}

/** A frame whose bucket is outside the charset: skipped with a warning (see README, bad input). */
const BAD_FRAME = Buffer.from([0x04, 0, 0, 0, 0x02, 0x21, 0x21, 0x00])

function sendBytes (path: string, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path, () => { s.end(bytes) })
    s.once('error', reject)
    s.once('close', () => resolve())
  })
}

/** bin/kahets run with stdout and stderr on one file, as journald's stream is to a service. */
async function runOnFile (dir: string, env: (fd: number) => Record<string, string>): Promise<{ pid: number, text: () => string, exited: Promise<number | null> }> {
  const file = join(dir, 'stdout')
  const fd = openSync(file, 'a')
  const bucketsFile = join(dir, 'buckets.json')
  await writeFile(bucketsFile, JSON.stringify(buckets).replaceAll('{dir}', dir))
  const proc = spawn(BIN, ['run'], {
    cwd: dir,
    env: { ...process.env, environment: 'test', SOCKET: join(dir, 'kahets.sock'), BUCKETS_FILE: bucketsFile, LOG_LEVEL: 'info', ...env(fd) },
    stdio: ['ignore', fd, fd],
  })
  closeSync(fd)
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve))
  after(async () => { if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGKILL'); await exited } })
  return { pid: proc.pid!, text: () => readFileSync(file, 'utf8'), exited }
}

test('under systemd (stdout is JOURNAL_STREAM): every line starts with its syslog priority; errors are <3>', { timeout: 60_000 }, async () => {
  const dir = await makeTempDir('kahets-journal-')
  const kahets = await runOnFile(dir, (fd) => {
    const st = fstatSync(fd, { bigint: true })
    return { JOURNAL_STREAM: `${st.dev}:${st.ino}` }
  })
  await waitFor(() => kahets.text().includes('kahets started'), { timeoutMs: 20_000, what: `kahets to start: ${kahets.text()}` })
  await sendBytes(join(dir, 'kahets.sock'), BAD_FRAME)
  // An error: a reload of a buckets file that is not valid.
  await writeFile(join(dir, 'buckets.json'), '{"buckets": 5}')
  process.kill(kahets.pid, 'SIGHUP')
  await waitFor(() => kahets.text().includes('reload rejected'), { timeoutMs: 20_000, what: 'the rejected reload to be logged' })
  process.kill(kahets.pid, 'SIGTERM')
  assert.equal(await kahets.exited, 0, kahets.text())

  const lines = kahets.text().trimEnd().split('\n')
  assert.deepEqual(lines.filter((l) => !/^<[0-7]>(TRACE|DEBUG|INFO |WARN |ERROR|FATAL) /.test(l)), [], 'every line has a priority prefix and a level')
  // What `journalctl -p err` would show: priorities 0..3.
  const errors = lines.filter((l) => /^<[0-3]>/.test(l))
  assert.equal(errors.length, 1, errors.join('\n'))
  assert.match(errors[0], /^<3>ERROR reload rejected: invalid buckets file; keeping the running configuration file=\S+buckets\.json problems=/)
  assert.ok(lines.some((l) => /^<4>WARN {2}.*reason=/.test(l)), 'the invalid frame is a warning')
  assert.ok(lines.some((l) => l.startsWith('<6>INFO  kahets started ')))
  assert.ok(!lines.some((l) => l.includes('{"level"')), 'no JSON lines')
})

test('under systemd, check-config (ExecStartPre) reports a bad buckets file as errors', { timeout: 60_000 }, async () => {
  const dir = await makeTempDir('kahets-journal-check-')
  const file = join(dir, 'stderr')
  const fd = openSync(file, 'a')
  const st = fstatSync(fd, { bigint: true })
  await writeFile(join(dir, 'buckets.json'), '{"buckets": 5}')
  const proc = spawn(BIN, ['check-config'], { cwd: dir, env: { ...process.env, environment: 'test', BUCKETS_FILE: join(dir, 'buckets.json'), JOURNAL_STREAM: `${st.dev}:${st.ino}` }, stdio: ['ignore', fd, fd] })
  closeSync(fd)
  assert.equal(await new Promise((resolve) => proc.once('exit', resolve)), 1)
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n')
  assert.ok(lines.length >= 2)
  for (const l of lines) assert.match(l, /^<3>/)
})

test('JOURNAL_STREAM inherited while stdout is a pipe: JSON lines, as the tests and log shippers read them', { timeout: 60_000 }, async () => {
  const dir = await makeTempDir('kahets-inherited-')
  const kahets = await startKahets({ buckets, dir, env: { JOURNAL_STREAM: '8:12345' } })
  assert.equal(await kahets.stop(), 0)
  assert.ok(kahets.logs().some((l) => l.msg === 'kahets started' && l.level === 30))
  assert.deepEqual(kahets.output().trimEnd().split('\n').filter((l) => !l.startsWith('{')), [])
})

test('on a terminal: readable lines with time, level name, message and fields', { timeout: 60_000 }, async () => {
  const dir = await makeTempDir('kahets-tty-')
  const bucketsFile = join(dir, 'buckets.json')
  await writeFile(bucketsFile, JSON.stringify(buckets).replaceAll('{dir}', dir))
  // script(1) (util-linux) gives kahets a pseudo-terminal; sh says kahets's pid first.
  const proc = spawn('script', ['-qec', `sh -c 'echo pid=$$; exec ${BIN} run'`, '/dev/null'], {
    cwd: dir,
    env: { ...process.env, environment: 'test', SOCKET: join(dir, 'kahets.sock'), BUCKETS_FILE: bucketsFile, LOG_LEVEL: 'info' },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve))
  after(async () => { if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGKILL'); await exited } })
  await waitFor(() => out.includes('kahets started'), { timeoutMs: 20_000, what: `kahets to start on a terminal: ${out}` })
  process.kill(Number(/pid=(\d+)/.exec(out)![1]), 'SIGTERM')
  assert.equal(await exited, 0, out)
  const lines = out.replaceAll('\r', '').trimEnd().split('\n').filter((l) => !l.startsWith('pid='))
  assert.deepEqual(lines.filter((l) => !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO |WARN |ERROR) \S/.test(l)), [])
  assert.ok(lines.some((l) => / INFO {2}listening socket=\S+kahets\.sock mode=660$/.test(l)), lines.join('\n'))
  assert.ok(lines.some((l) => / INFO {2}stopped peakBufferedBytes=0 /.test(l)))
})
