// The release (scripts/release.sh, docs/install.md): `make release` builds the .deb and the
// tarball once for this file; each is unpacked into a scratch root and its kahets is run with
// a PATH that holds no node at all: --version, check-config on the shipped configuration, and a
// short run that writes frames to a file stream. The units verify, and lintian finds no error.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { createConnection } from 'node:net'
import { copyFile, mkdir, readFile, readdir, readlink, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { encodeFrames } from '../../src/protocol/encoder.ts'
import { ROOT, makeTempDir, startKahets } from '../helpers/kahets.ts'
import { readFrameFiles } from '../helpers/frames.ts'

const run = promisify(execFile)
const big = { maxBuffer: 64 * 1024 * 1024 }

const VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
const ARCH = (await run('dpkg', ['--print-architecture'])).stdout.trim()
const NODE_ARCH = ARCH === 'arm64' ? 'arm64' : 'x64'
// The pinned Node, whatever NODE_VERSION this run tries (scripts/node.sh).
const envWithoutNodeVersion = { ...process.env }
delete envWithoutNodeVersion.NODE_VERSION
const PINNED_NODE = (await run(join(ROOT, 'scripts/node.sh'), ['version'], { env: envWithoutNodeVersion })).stdout.trim()
const DEB = join(ROOT, 'dist/release', `kahets_${VERSION}_${ARCH}.deb`)
const TARBALL = join(ROOT, 'dist/release', `kahets-${VERSION}-linux-${NODE_ARCH}.tar.gz`)

// Once per file: make rebuilds only what changed (a no-op when make test just built it).
await run('make', ['--no-print-directory', 'release'], { cwd: ROOT, ...big })
// Slow (a minute or two on a busy machine): started now, asserted in the last test.
const lintian = run('lintian', ['--tag-display-limit', '0', DEB], big).then(
  ({ stdout, stderr }) => stdout + stderr,
  (err: { stdout?: string, stderr?: string, message: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}${err.message}`)

/** A PATH with what bin/kahets needs (bash, readlink, dirname) and no node. */
async function pathWithoutNode (): Promise<string> {
  const dir = join(await makeTempDir(), 'tools')
  await mkdir(dir)
  for (const tool of ['bash', 'readlink', 'dirname']) {
    const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim()
    await symlink(found, join(dir, tool))
  }
  assert.notEqual(spawnSync('bash', ['-c', 'command -v node'], { env: { PATH: dir } }).status, 0, 'node is on the scratch PATH')
  return dir
}

/**
 * Runs an unpacked kahets as an operator would: --version, check-config on the env file and
 * buckets file it ships, and `run` writing frames to a file stream until SIGTERM.
 */
async function exercise (kahets: string, envFile: string, bucketsFile: string, appDir: string): Promise<void> {
  const PATH = await pathWithoutNode()
  const env = { ...process.env, PATH }

  const version = await run(kahets, ['--version'], { env })
  assert.equal(version.stdout.split('\n')[0], `kahets ${VERSION}`)
  assert.match(version.stdout, new RegExp(`^node v${PINNED_NODE.replaceAll('.', '\\.')}$`, 'm'))

  // The shipped files as they are, except where the buckets file is: not yet in /etc here.
  const checked = await run(kahets, ['check-config', '--env-file', envFile], { env: { ...env, BUCKETS_FILE: bucketsFile } })
  assert.match(checked.stdout, /^configuration OK: /)

  const k = await startKahets({
    bin: kahets,
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/out', fileNameTemplate: '{bucket}{PS}{ts}-{rand}.frames' } } },
      buckets: [{ id: 'orders', streams: ['files'], batch: 100, batchTimeout: 50 }],
    },
    env: { PATH },
  })
  // The process is the shipped Node, not one from the host.
  assert.equal(await realpath(`/proc/${k.pid}/exe`), await realpath(join(appDir, 'node/bin/node')))
  const payloads = Array.from({ length: 500 }, (_, i) => `order ${i}`)
  await new Promise<void>((resolve, reject) => {
    const s = createConnection(k.socket, () => {
      s.end(encodeFrames(payloads.map((p) => ({ bucket: 'orders', key: null, payload: Buffer.from(p) }))))
    })
    s.on('error', reject)
    s.on('close', () => resolve())
  })
  assert.equal(await k.stop(), 0, k.output())
  const written = (await readFrameFiles(join(k.dir, 'out'))).flatMap((f) => f.frames.map((fr) => fr.payload.toString()))
  assert.deepEqual(written, payloads)
  assert.doesNotMatch(k.output(), /Warning/, 'Node printed a warning')
}

test('the .deb: its fields and files, and kahets from it runs with no node on PATH', async () => {
  const field = async (name: string): Promise<string> => (await run('dpkg-deb', ['-f', DEB, name])).stdout.trim()
  assert.equal(await field('Package'), 'kahets')
  assert.equal(await field('Version'), VERSION)
  assert.equal(await field('Architecture'), ARCH)
  assert.doesNotMatch(await field('Depends'), /nodejs/)
  assert.match(await field('Depends'), /adduser/)

  const dir = await makeTempDir()
  const control = join(dir, 'DEBIAN')
  await run('dpkg-deb', ['-e', DEB, control])
  assert.deepEqual((await readFile(join(control, 'conffiles'), 'utf8')).trim().split('\n').sort(), ['/etc/kahets/buckets.json', '/etc/kahets/kahets.env'])
  const postinst = await readFile(join(control, 'postinst'), 'utf8')
  assert.match(postinst, /adduser --system .*kahets/s)
  for (const script of ['postinst', 'prerm', 'postrm']) await run('sh', ['-n', join(control, script)])

  const root = join(dir, 'root')
  await run('dpkg-deb', ['-x', DEB, root])
  const app = join(root, 'usr/lib/kahets')
  assert.equal(await readlink(join(root, 'usr/bin/kahets')), '../lib/kahets/bin/kahets')
  assert.ok((await stat(join(root, 'var/lib/kahets'))).isDirectory())
  assert.ok((await stat(join(root, 'lib/systemd/system/kahets.service'))).isFile())
  assert.ok((await stat(join(root, 'usr/share/man/man1/kahets.1.gz'))).size > 0)
  const modules = await readdir(join(app, 'node_modules'))
  for (const dev of ['esbuild', 'tsx', 'typescript', 'eslint', '@types']) assert.ok(!modules.includes(dev), `${dev} is in the production node_modules`)
  assert.ok(modules.includes('kafkajs') && modules.includes('@platformatic'))
  assert.ok(!(await readdir(app)).includes('src'))

  await exercise(join(root, 'usr/bin/kahets'), join(root, 'etc/kahets/kahets.env'), join(root, 'etc/kahets/buckets.json'), app)

  // Units as installed, pointed at the scratch root's kahets (verify checks that ExecStart exists).
  const units = join(dir, 'units')
  await mkdir(units)
  const names = (await readdir(join(root, 'lib/systemd/system'))).filter((n) => /\.(service|socket)$/.test(n))
  for (const name of names) {
    const text = await readFile(join(root, 'lib/systemd/system', name), 'utf8')
    await writeFile(join(units, name), text.replaceAll('/usr/bin/kahets', join(root, 'usr/bin/kahets')))
  }
  const verified = await run('systemd-analyze', ['verify', ...names.map((n) => join(units, n))]).catch((err: { stdout: string, stderr: string }) => err)
  const complaints = (verified.stdout + verified.stderr).split('\n').filter((l) => /kahets\.(service|socket)/.test(l))
  assert.deepEqual(complaints, [])
})

test('the tarball: the same tree, and its bin/kahets runs with no node on PATH', async () => {
  const dir = await makeTempDir()
  await run('tar', ['-xzf', TARBALL, '-C', dir])
  const top = join(dir, `kahets-${VERSION}-linux-${NODE_ARCH}`)
  for (const entry of ['bin', 'dist', 'node', 'node_modules', 'package.json', 'config', 'etc', 'systemd']) {
    assert.ok((await readdir(top)).includes(entry), entry)
  }
  // Same files as the .deb's /usr/lib/kahets.
  const fromDeb = join(dir, 'deb')
  await run('dpkg-deb', ['-x', DEB, fromDeb])
  const list = async (d: string): Promise<string> => (await run('find', ['.', '-printf', '%P %s %m\n'], { cwd: d, ...big })).stdout.split('\n').sort().join('\n')
  const tarList = (await list(top)).split('\n').filter((l) => !/^(etc|systemd|share)( |\/)/.test(l)).join('\n')
  assert.equal(tarList, await list(join(fromDeb, 'usr/lib/kahets')))

  await exercise(join(top, 'bin/kahets'), join(top, 'etc/kahets.env'), join(top, 'etc/buckets.json'), top)
})

// dpkg itself would run them against this machine's /etc; a chroot on the unpacked .deb, with
// the host's programs through a read-only /usr (merged /usr) and copies of its account files,
// keeps every user they create inside the scratch root.
const asRoot = process.getuid?.() === 0 ? false : 'needs root: chroot and bind mounts'
test('maintainer scripts in a chroot: the kahets system user and group, twice without harm; a purge keeps unsent backups', { skip: asRoot }, async () => {
  const root = join(await makeTempDir(), 'root')
  await run('dpkg-deb', ['-x', DEB, root])
  await run('dpkg-deb', ['-e', DEB, join(root, 'DEBIAN')])
  await rm(join(root, 'lib'), { recursive: true })
  for (const dir of ['bin', 'lib', 'lib64', 'sbin']) await symlink(`usr/${dir}`, join(root, dir))
  await mkdir(join(root, 'dev'))
  await writeFile(join(root, 'dev/null'), '')
  await mkdir(join(root, 'run'))
  for (const f of ['passwd', 'group', 'shadow', 'gshadow', 'adduser.conf', 'login.defs', 'nsswitch.conf']) {
    await copyFile(join('/etc', f), join(root, 'etc', f)).catch(() => {})
  }
  const script = 'set -e; r=$1; shift; mount --bind /usr "$r/usr"; mount -o remount,bind,ro "$r/usr"; mount --bind /dev/null "$r/dev/null"; exec chroot "$r" /bin/sh "$@"'
  const maintainer = async (...args: string[]): Promise<void> => { await run('unshare', ['-m', 'sh', '-c', script, 'sh', root, ...args]) }

  await maintainer('/DEBIAN/postinst', 'configure', '')
  const users = (await readFile(join(root, 'etc/passwd'), 'utf8')).split('\n').filter((l) => l.startsWith('kahets:'))
  assert.equal(users.length, 1)
  const [, , uid, gid, , home, shell] = users[0]!.split(':')
  assert.ok(Number(uid) < 1000, `a system uid, not ${uid}`)
  assert.equal(home, '/var/lib/kahets')
  assert.equal(shell, '/usr/sbin/nologin')
  assert.match(await readFile(join(root, 'etc/group'), 'utf8'), new RegExp(`^kahets:x:${gid}:`, 'm'))
  const state = await stat(join(root, 'var/lib/kahets'))
  assert.deepEqual([state.uid, state.gid, state.mode & 0o777], [Number(uid), Number(gid), 0o750])
  for (const f of ['kahets.env', 'buckets.json']) {
    const st = await stat(join(root, 'etc/kahets', f))
    assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [0, Number(gid), 0o640], f)
  }

  // An upgrade configures again: nothing duplicated, nothing fails.
  await maintainer('/DEBIAN/postinst', 'configure', VERSION)
  assert.equal((await readFile(join(root, 'etc/passwd'), 'utf8')).split('\n').filter((l) => l.startsWith('kahets:')).length, 1)

  await maintainer('/DEBIAN/prerm', 'remove')
  await writeFile(join(root, 'var/lib/kahets/unsent.frames'), 'x')
  await maintainer('/DEBIAN/postrm', 'purge')
  assert.ok((await stat(join(root, 'var/lib/kahets/unsent.frames'))).isFile())
  await rm(join(root, 'var/lib/kahets/unsent.frames'))
  await maintainer('/DEBIAN/postrm', 'purge')
  await assert.rejects(stat(join(root, 'var/lib/kahets')), { code: 'ENOENT' })
})

test('lintian reports no error on the .deb', async () => {
  const report = await lintian
  assert.deepEqual(report.split('\n').filter((l) => /^E: /.test(l)), [], report)
})
