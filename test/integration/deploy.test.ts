// The shipped systemd units (deploy/systemd/) pass `systemd-analyze verify`, and
// `systemd-analyze security` rates the service's exposure 2.0 or less (issue 13). Both run
// offline, on the unit files, so no PID 1 is needed; /usr/bin/kahets is pointed at this
// checkout's bin/kahets, since verify checks that the command exists.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT, makeTempDir } from '../helpers/kahets.ts'

const run = promisify(execFile)
const UNITS = ['kahets.service', 'kahets.socket']

async function unitsInTempDir (): Promise<{ dir: string, texts: Record<string, string> }> {
  const dir = await makeTempDir()
  const texts: Record<string, string> = {}
  for (const name of UNITS) {
    texts[name] = await readFile(join(ROOT, 'deploy/systemd', name), 'utf8')
    await writeFile(join(dir, name), texts[name].replaceAll('/usr/bin/kahets', join(ROOT, 'bin/kahets')))
  }
  return { dir, texts }
}

/** The unit's settings as written (last one wins, as in systemd, except for lists). */
function directives (text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line)
    if (m !== null) out.set(m[1], [...(out.get(m[1]) ?? []), m[2]])
  }
  return out
}

test('deploy/systemd/kahets.service and kahets.socket verify cleanly', async () => {
  const { dir } = await unitsInTempDir()
  const { stdout, stderr } = await run('systemd-analyze', ['verify', ...UNITS.map((u) => join(dir, u))])
  assert.equal((stdout + stderr).split('\n').filter((l) => l.includes('kahets.')).join('\n'), '')
})

test('kahets.socket: /run/kahets/kahets.sock, kahets:www-data, 0660; the service takes it and runs as kahets:kahets', async () => {
  const { texts } = await unitsInTempDir()
  const socket = directives(texts['kahets.socket'])
  assert.deepEqual(socket.get('ListenStream'), ['/run/kahets/kahets.sock'])
  assert.deepEqual(socket.get('SocketUser'), ['kahets'])
  assert.deepEqual(socket.get('SocketGroup'), ['www-data'])
  assert.deepEqual(socket.get('SocketMode'), ['0660'])
  assert.equal(socket.get('Accept'), undefined, 'one kahets for all connections (Accept=no)')
  const service = directives(texts['kahets.service'])
  assert.deepEqual(service.get('User'), ['kahets'])
  // www-data must not read the spool or the output files: only the socket carries its group.
  assert.deepEqual(service.get('Group'), ['kahets'])
  assert.deepEqual(service.get('Requires'), ['kahets.socket'])
  assert.deepEqual(service.get('ExecStart'), ['/usr/bin/kahets run --env-file /etc/kahets/kahets.env'])
  assert.deepEqual(service.get('WorkingDirectory'), ['/var/lib/kahets'])
  assert.deepEqual(service.get('StateDirectory'), ['kahets'])
  assert.deepEqual(service.get('ExecReload'), ['/bin/kill -HUP $MAINPID'])
  assert.equal(service.get('RuntimeDirectory'), undefined, 'a RuntimeDirectory would be removed, with the socket in it, when kahets stops')
  for (const [key, value] of [['SystemCallFilter', '@system-service'], ['ProtectProc', 'invisible'], ['ProtectSystem', 'strict'], ['NoNewPrivileges', 'yes']]) {
    assert.ok(service.get(key)?.includes(value), `${key}=${value}`)
  }
  assert.match(service.get('MemoryMax')?.[0] ?? '', /^\d+[KMG]$/)
})

test('systemd-analyze security rates kahets.service at an exposure of 2.0 or less', async () => {
  const { dir } = await unitsInTempDir()
  // --threshold is on a 0..100 scale (exposure × 10): above it systemd-analyze exits 1.
  const { stdout, stderr, code } = await run('systemd-analyze', ['security', '--offline=true', '--threshold=20', '--no-pager', join(dir, 'kahets.service')])
    .then((r) => ({ ...r, code: 0 }), (err: { stdout: string, stderr: string, code: number }) => err)
  const exposure = /Overall exposure level for kahets\.service: (\d+\.\d+)/.exec(stdout + stderr)
  assert.ok(exposure !== null, stdout + stderr)
  assert.ok(Number(exposure[1]) <= 2.0, `exposure ${exposure[1]}:\n${stdout}`)
  assert.equal(code, 0, stderr)
  // The settings the issue names are among those rated as in effect.
  for (const name of ['SystemCallFilter=~@privileged', 'ProtectProc=', 'PrivateDevices=', 'CapabilityBoundingSet=~CAP_SYS_ADMIN']) {
    assert.match(stdout, new RegExp(`✓ ${name.replace(/[~@$]/g, (c) => `\\${c}`)}`), name)
  }
})
