// Code that may not end runs in a child Node: a synchronous loop in the test's own process
// would block the test runner's timeout too, and a regression would hang the suite instead of
// failing it.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { ROOT } from './kahets.ts'

const execFileP = promisify(execFile)

/**
 * Runs `body`, an ES module that may import from src/ (paths from the checkout's root), in a
 * child Node and returns what it printed. The child is killed after `timeoutMs` (the call
 * then rejects): meant for work that takes milliseconds when right and hours when wrong.
 */
export async function runInChild (body: string, timeoutMs = 30_000): Promise<string> {
  const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', body], { cwd: ROOT, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 })
  return stdout
}
