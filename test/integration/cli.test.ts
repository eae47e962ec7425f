// The kahets process as an operator meets it: the socket file, a second instance, a stale
// file after a crash, check-config, --help and --version.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFile } from 'node:child_process'
import { existsSync, lstatSync, readFileSync } from 'node:fs'
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { BIN, ROOT, makeTempDir, startKahets } from '../helpers/kahets.ts'
import { waitFor } from '../helpers/wait.ts'

const run = promisify(execFile)
const buckets = { streamsConfigs: { f: { type: 'file', settings: { path: '{dir}/out' } } }, buckets: [{ id: 'a', streams: ['f'] }] }

async function cli (args: string[], env: Record<string, string> = {}, cwd?: string): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await run(BIN, args, { env: { ...process.env, ...env }, cwd })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

test('socket file: SOCKET_MODE applied, removed on exit', async () => {
  const k = await startKahets({ buckets, env: { SOCKET_MODE: '0600' } })
  const st = lstatSync(k.socket)
  assert.ok(st.isSocket())
  assert.equal(st.mode & 0o777, 0o600)
  assert.equal(await k.stop(), 0)
  assert.equal(existsSync(k.socket), false, 'socket file removed')
})

test('a second instance on the same socket refuses to start', async () => {
  const first = await startKahets({ buckets })
  const second = await startKahets({ buckets, env: { SOCKET: first.socket }, waitReady: false })
  assert.equal(await second.exited, 1)
  assert.match(second.output(), /another process is serving .*kahets\.sock; refusing to start a second instance/)
  assert.ok(existsSync(first.socket), "the first instance's socket is untouched")
  assert.equal(await first.stop(), 0)
})

test('a stale socket file left by a crash is replaced', async () => {
  const dir = await makeTempDir()
  const socket = join(dir, 'stale.sock')
  // A process that listens and is killed: the file stays, nobody serves it.
  const crashed = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise((resolve) => crashed.stdout!.once('data', resolve))
  crashed.kill('SIGKILL')
  await new Promise((resolve) => crashed.once('exit', resolve))
  assert.ok(lstatSync(socket).isSocket(), 'stale socket file present')
  const k = await startKahets({ buckets, env: { SOCKET: socket } })
  assert.ok(k.logs().some((l) => l.msg === 'removing stale socket file left by a previous run'))
  assert.equal(await k.stop(), 0)
})

test('a path that is not a socket is never replaced', async () => {
  const dir = await makeTempDir()
  const path = join(dir, 'precious.txt')
  await writeFile(path, 'data')
  const k = await startKahets({ buckets, env: { SOCKET: path }, waitReady: false })
  assert.equal(await k.exited, 1)
  assert.match(k.output(), /exists and is not a socket/)
  assert.ok(lstatSync(path).isFile())
})

test('check-config prints every error with its JSON path and exits 1', async () => {
  const dir = await makeTempDir()
  await writeFile(join(dir, 'buckets.json'), JSON.stringify({
    streamsConfigs: { f: { type: 'file', slice: 2, settings: { path: '/tmp/x', sizeRotate: 'big' } } },
    buckets: [{ id: 'a', streams: ['missing'] }],
  }))
  await writeFile(join(dir, '.env.dev.local'), 'BUCKETS_FILE=./buckets.json\nMAXMEMORY=much\n')
  const envBad = await cli(['check-config'], {}, dir)
  assert.equal(envBad.code, 1)
  assert.match(envBad.stderr, /MAXMEMORY: invalid value "much"/)

  await writeFile(join(dir, '.env.dev.local'), 'BUCKETS_FILE=./buckets.json\n')
  const r = await cli(['check-config'], {}, dir)
  assert.equal(r.code, 1)
  assert.match(r.stderr, /\$\.streamsConfigs\.f\.slice: /)
  assert.match(r.stderr, /\$\.streamsConfigs\.f\.settings\.sizeRotate: must be a size such as "10MB" or "64KiB", not "big"/)
  // In the same pass as the shape: references.
  assert.match(r.stderr, /\$\.buckets\[0\]\.streams\[0\]: stream "missing" is not defined in streamsConfigs/)
  await writeFile(join(dir, 'buckets.json'), JSON.stringify({ streamsConfigs: { f: { type: 'file', settings: { path: '/tmp/x' } } }, buckets: [{ id: 'a', streams: ['missing'] }] }))
  const refs = await cli(['check-config', '--env-file', join(dir, '.env.dev.local')], {}, dir)
  assert.equal(refs.code, 1)
  assert.match(refs.stderr, /\$\.buckets\[0\]\.streams\[0\]: stream "missing" is not defined in streamsConfigs/)

  // No raw regular expression or ajv wording reaches the operator.
  assert.doesNotMatch(r.stderr, /pattern|\^|oneOf|must NOT|must match/)

  // Sizes in KiB, MiB, GiB beside KB, MB, GB.
  await writeFile(join(dir, 'buckets.json'), JSON.stringify({ streamsConfigs: { f: { type: 'file', settings: { path: '/tmp/x', sizeRotate: '10MiB' } } }, buckets: [{ id: 'a', streams: ['f'] }] }))
  await writeFile(join(dir, '.env.dev.local'), 'BUCKETS_FILE=./buckets.json\nMAXMEMORY=64MiB\nMAX_FRAME_BYTES=512KiB\n')
  const ok = await cli(['check-config'], {}, dir)
  assert.equal(ok.code, 0, ok.stderr)
  assert.match(ok.stdout, /configuration OK/)
})

test('check-config reports every error at once with its JSON path: booleans, bounds, shared folders, CA files', async () => {
  const dir = await makeTempDir()
  await writeFile(join(dir, '.env.dev.local'), 'BUCKETS_FILE=./buckets.json\n')
  // Shape errors, all in one report.
  await writeFile(join(dir, 'buckets.json'), JSON.stringify({
    streamsConfigs: { f: { type: 'file', settings: { path: join(dir, 'f'), fsync: 'flase' } } },
    buckets: [{ id: 'a', streams: ['f'], batch: 1e308, batchTimeout: 1e308 }],
  }))
  const shape = await cli(['check-config'], {}, dir)
  assert.equal(shape.code, 1)
  assert.match(shape.stderr, /invalid configuration \(3 problems\)/)
  assert.match(shape.stderr, /\$\.streamsConfigs\.f\.settings\.fsync: must be one of true, false, "true", "false"/)
  assert.match(shape.stderr, /\$\.buckets\[0\]\.batch: must be at most 1000000/)
  assert.match(shape.stderr, /\$\.buckets\[0\]\.batchTimeout: must be at most 3600000/)
  // Once the shape is right: bounds on strings, shared folders, an unreadable CA, references.
  const bad = {
    streamsConfigs: {
      f: { type: 'file', settings: { path: join(dir, 'f') } },
      g: { type: 'file', settings: { path: join(dir, 'f') } },
      k: { type: 'kafka', settings: { 'bootstrap.servers': '127.0.0.1:1', 'security.protocol': 'ssl', 'ssl.ca.location': join(dir, 'no-ca.pem') } },
    },
    buckets: [{ id: 'a', streams: ['f', 'missing'], batch: '2000000' }],
  }
  await writeFile(join(dir, 'buckets.json'), JSON.stringify(bad))
  const r = await cli(['check-config'], {}, dir)
  assert.equal(r.code, 1)
  assert.match(r.stderr, /invalid configuration \(4 problems\)/)
  assert.match(r.stderr, /\$\.streamsConfigs\.g\.settings\.path: shares files with \$\.streamsConfigs\.f: both could write /)
  assert.match(r.stderr, /\$\.streamsConfigs\.k\.settings\["ssl\.ca\.location"\]: cannot read CA file .*no-ca\.pem/)
  assert.match(r.stderr, /\$\.buckets\[0\]\.streams\[1\]: stream "missing" is not defined/)
  assert.match(r.stderr, /\$\.buckets\[0\]\.batch: must be at most 1000000/)
  // And `run` refuses the same file: two streams would delete each other's files.
  const k = await startKahets({ buckets: bad, dir, waitReady: false })
  await waitFor(() => k.proc.exitCode !== null, { what: 'kahets to refuse the file' })
  assert.equal(k.proc.exitCode, 1)
  assert.match(k.output(), /shares files with/)
})

test('kahets parses its own flags: a missing --env-file is its own usage error (exit 2), never Node\'s', async () => {
  const missing = await cli(['run', '--env-file', '/nonexistent/kahets.env'])
  assert.equal(missing.code, 2, missing.stderr)
  assert.match(missing.stderr, /^kahets: --env-file \/nonexistent\/kahets\.env: no such file\n/)
  assert.doesNotMatch(missing.stderr, /^node:/m)
  const equals = await cli(['check-config', '--env-file=/nonexistent/kahets.env'])
  assert.equal(equals.code, 2)
  const bogus = await cli(['run', '--bogus'])
  assert.equal(bogus.code, 2)
  assert.match(bogus.stderr, /Unknown option '--bogus'/)
  const noFile = await cli(['replay'])
  assert.equal(noFile.code, 2)
  assert.match(noFile.stderr, /replay needs FILE\.\.\./)
})

test('the env file cannot set NODE_OPTIONS or other runtime options of the process: refused, never applied', async () => {
  const dir = await makeTempDir()
  const marker = join(dir, 'injected')
  await writeFile(join(dir, 'inject.cjs'), `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran')\n`)
  await writeFile(join(dir, 'buckets.json'), JSON.stringify(buckets).replaceAll('{dir}', dir))
  await writeFile(join(dir, 'kahets.env'), `BUCKETS_FILE=./buckets.json\nSOCKET=${join(dir, 'k.sock')}\nNODE_OPTIONS="--require ${join(dir, 'inject.cjs')}"\nUV_THREADPOOL_SIZE=64\n`)
  for (const command of ['check-config', 'run']) {
    const r = await cli([command, '--env-file', join(dir, 'kahets.env')], { NODE_OPTIONS: '' }, dir)
    assert.equal(r.code, 1, `${command}: ${r.stderr}`)
    assert.match(r.stderr, /NODE_OPTIONS: set in .*kahets\.env, but Node\.js reads it when the process starts/)
    assert.match(r.stderr, /UV_THREADPOOL_SIZE: set in /)
    assert.equal(existsSync(marker), false, `${command}: the env file's NODE_OPTIONS was applied`)
  }
})

test('the shipped default configuration is valid', async () => {
  const root = join(import.meta.dirname, '../..')
  const r = await cli(['check-config', '--env-file', 'config/.env.dev.local'], {}, root)
  assert.equal(r.code, 0, r.stderr)
})

test('without a current bundle, bin/kahets runs the TypeScript sources through tsx', async () => {
  // A checkout where dist/ was never built: bin/kahets and package.json copied, src/ and
  // node_modules/ linked, no dist/.
  const dir = await makeTempDir()
  await mkdir(join(dir, 'bin'))
  await copyFile(BIN, join(dir, 'bin/kahets'))
  await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'))
  await symlink(join(ROOT, 'src'), join(dir, 'src'))
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  const bin = join(dir, 'bin/kahets')
  const { stdout } = await run(bin, ['--version'])
  assert.match(stdout, /^kahets \d+\.\d+\.\d+/)
  const { stdout: checked } = await run(bin, ['check-config', '--env-file', 'config/.env.dev.local'], { cwd: ROOT })
  assert.match(checked, /^configuration OK: /)
})

test('--help, --version, unknown commands', async () => {
  const help = await cli(['--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /Usage: kahets/)
  assert.match(help.stdout, /`kahets COMMAND --help` describes one command/)
  // Each command's own help: exit 0, its usage line, its own options, never another's.
  const own: Record<string, [RegExp, RegExp | null]> = {
    run: [/^Usage: kahets run \[OPTIONS\]\n/, /SIGHUP/],
    'check-config': [/^Usage: kahets check-config \[OPTIONS\]\n/, /KiB, MiB or GiB/],
    replay: [/^Usage: kahets replay FILE\.\.\. \[OPTIONS\]\n/, /--dry-run +read, verify and report/],
    inspect: [/^Usage: kahets inspect FILE\.\.\. \[OPTIONS\]\n/, /--dump +write every frame/],
  }
  for (const [command, [usageLine, detail]] of Object.entries(own)) {
    const r = await cli([command, '--help'])
    assert.equal(r.code, 0, `${command} --help: ${r.stderr}`)
    assert.match(r.stdout, usageLine)
    if (detail !== null) assert.match(r.stdout, detail)
    assert.match(r.stdout, /--env-file PATH/)
    if (command !== 'replay') assert.doesNotMatch(r.stdout, /--dry-run/)
  }
  const unknownHelp = await cli(['frobnicate', '--help'])
  assert.equal(unknownHelp.code, 2)
  const version = await cli(['--version'])
  assert.match(version.stdout, /^kahets \d+\.\d+\.\d+/)
  const bad = await cli(['frobnicate'])
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /unknown command/)
})

test('a running kahets exits 0 on SIGINT too', async () => {
  const k = await startKahets({ buckets })
  assert.equal(await k.stop('SIGINT'), 0)
  await waitFor(() => !existsSync(k.socket), { what: 'socket removed' })
})

test('bin/kahets caps V8\'s young generation at 16 MB per semi-space, unless NODE_OPTIONS names its own', async () => {
  const cmdline = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
  const capped = await startKahets({ buckets })
  assert.ok(cmdline(capped.proc.pid!).includes('--max-semi-space-size=16'), cmdline(capped.proc.pid!).join(' '))
  assert.equal(await capped.stop(), 0)
  const chosen = await startKahets({ buckets, env: { NODE_OPTIONS: '--max-semi-space-size=32' } })
  assert.ok(!cmdline(chosen.proc.pid!).some((a) => a.startsWith('--max-semi-space-size')), cmdline(chosen.proc.pid!).join(' '))
  assert.equal(await chosen.stop(), 0)
})

test('kahets runs with the hard limit on open files: Node raises the soft one at start, as Go does for kahego', async () => {
  // Started with 256 of a possible 2048 descriptors, as from a shell with `ulimit -n 256`.
  const k = await startKahets({ buckets, bin: 'prlimit', args: ['--nofile=256:2048', BIN, 'run'] })
  const limits = readFileSync(`/proc/${k.proc.pid!}/limits`, 'utf8')
  assert.match(limits, /^Max open files\s+2048\s+2048\s+files/m, limits)
  assert.equal(await k.stop(), 0)
})
