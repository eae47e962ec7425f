// The shipped systemd unit passes `systemd-analyze verify` (paths pointed at this checkout).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { BIN, ROOT, makeTempDir } from '../helpers/kahets.ts'

const run = promisify(execFile)

test('deploy/systemd/kahets.service verifies cleanly', async () => {
  const dir = await makeTempDir()
  const unit = (await readFile(join(ROOT, 'deploy/systemd/kahets.service'), 'utf8')).replaceAll('/usr/bin/kahets', BIN)
  const path = join(dir, 'kahets.service')
  await writeFile(path, unit)
  const { stdout, stderr } = await run('systemd-analyze', ['verify', path])
  assert.equal((stdout + stderr).split('\n').filter((l) => l.includes('kahets.service')).join('\n'), '')
  for (const directive of ['RuntimeDirectory=kahets', 'User=kahets', 'Restart=on-failure', 'ExecReload=/bin/kill -HUP $MAINPID', 'NoNewPrivileges=yes', 'ProtectSystem=strict']) {
    assert.ok(unit.includes(directive), directive)
  }
})
