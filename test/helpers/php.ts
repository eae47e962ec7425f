// A PHP script that uses kahets's PHP client (clients/php/Kahets.php), run by the real php CLI.
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from './kahets.ts'

const run = promisify(execFile)

/**
 * Writes `body` to `dir/name` after the line that loads the client and runs it as
 * `php -n [phpFlags] script args…`; resolves with its output, rejects when it exits non-zero.
 */
export async function runPhpScript (dir: string, name: string, body: string, args: string[], phpFlags: string[] = []): Promise<{ stdout: string, stderr: string }> {
  const script = join(dir, name)
  await writeFile(script, `<?php\nrequire ${JSON.stringify(join(ROOT, 'clients/php/Kahets.php'))};\n${body}`)
  return await run('php', ['-n', ...phpFlags, script, ...args], { maxBuffer: 16 * 1024 * 1024 })
}
