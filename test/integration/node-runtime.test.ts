// scripts/node.sh (docs/install.md, "Node runtime") on a disk that fills up: while the
// package downloads and while it unpacks. It must fail saying so, leave no runtime that
// could run half-unpacked and no partial download behind, and fetch once there is room.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from '../helpers/kahets.ts'
import { NEEDS_ROOT, tmpfsDir } from '../helpers/tmpfs.ts'

const run = promisify(execFile)
const NODE_SH = join(ROOT, 'scripts', 'node.sh')

async function fetchInto (cache: string): Promise<{ code: number, stderr: string }> {
  try {
    const { stderr } = await run(NODE_SH, ['fetch'], { env: { ...process.env, NODE_CACHE: cache }, timeout: 300_000 })
    return { code: 0, stderr }
  } catch (err) {
    const e = err as { code: number, stderr: string }
    return { code: e.code, stderr: e.stderr }
  }
}

test('scripts/node.sh on a full disk: fails saying so, leaves nothing half-done, and fetches once there is room', { skip: NEEDS_ROOT, timeout: 600_000 }, async () => {
  // The package is ~57 MB packed and ~210 MB unpacked: 20 MB fills up during the download,
  // 100 MB while unpacking, 400 MB is enough.
  const dir = await tmpfsDir('kahets-node-', { download: '20m', unpack: '100m', room: '400m' })
  for (const where of ['download', 'unpack']) {
    const cache = join(dir, where)
    const r = await fetchInto(cache)
    assert.notEqual(r.code, 0, `${where}: the fetch fails`)
    assert.match(r.stderr, /No space left on device|ENOSPC/, `${where}: the error says why\n${r.stderr}`)
    const left = (await readdir(cache)).filter((name) => name !== '.fetch.lock')
    assert.deepEqual(left, [], `${where}: no runtime folder and no partial download left`)
  }
  const cache = join(dir, 'room')
  const ok = await fetchInto(cache)
  assert.equal(ok.code, 0, ok.stderr)
  const { stdout: runtime } = await run(NODE_SH, ['dir'], { env: { ...process.env, NODE_CACHE: cache } })
  const { stdout: version } = await run(join(runtime.trim(), 'bin', 'node'), ['--version'])
  const { stdout: pinned } = await run(NODE_SH, ['version'])
  assert.equal(version.trim(), `v${pinned.trim()}`)
})
