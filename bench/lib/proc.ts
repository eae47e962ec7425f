// Measuring processes from the outside (/proc), and keeping track of every process the bench
// starts so that it can be ended by its recorded PID, whatever way the bench itself ends.
//
// kahets, the raw sink and the ceilings are measured by reading /proc/<pid> from this process:
// the figures then cost the measured process nothing, and they are the same kind of figure for
// all of them (whole-process CPU of every thread, resident set of the whole process).
import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'

// Clock ticks per second for utime/stime in /proc/<pid>/stat (USER_HZ); 100 on every
// mainstream Linux, but asked once rather than assumed.
const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    return Number.isFinite(n) && n > 0 ? n : 100
  } catch {
    return 100
  }
})()

/** User + system CPU seconds of the whole process (all threads) so far. */
export function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Field 2 (comm) may hold spaces and parentheses; everything after the last ')' is safe to
  // split. rest[0] is field 3 (state), so utime (field 14) is rest[11] and stime rest[12].
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK
}

function statusKb (pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
  return m === null ? 0 : Number(m[1])
}

/** Peak resident set (VmHWM) since start or since the last resetPeakRss(), in bytes. */
export function peakRssBytes (pid: number): number {
  return statusKb(pid, 'VmHWM') * 1024
}

/**
 * Resets VmHWM to the current RSS (clear_refs value 5, Linux ≥ 4.0), so that one long-lived
 * process yields a peak per run instead of a peak over all the runs before it.
 * Returns false where the kernel or permissions do not allow it (the figure is then cumulative).
 */
export function resetPeakRss (pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/** A point on the wall clock with sub-millisecond resolution that every process on the host shares. */
export function wallMs (): number {
  return performance.timeOrigin + performance.now()
}

// ------------------------------------------------------------------ tracked children

const tracked = new Map<number, ChildProcess>()

/** spawn() that records the PID, so cleanup can end exactly the processes this bench started. */
export function spawnTracked (command: string, args: readonly string[], opts: SpawnOptions): ChildProcess {
  const child = spawn(command, args, opts)
  const pid = child.pid
  if (pid === undefined) {
    // spawn failed (ENOENT…); the 'error' event carries the reason to whoever listens.
    return child
  }
  tracked.set(pid, child)
  child.once('exit', () => { tracked.delete(pid) })
  return child
}

/** Resolves with the exit code (or the signal's name) once the child has exited. */
export function exited (child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  if (child.signalCode !== null) return Promise.resolve(child.signalCode)
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => { resolve(code ?? signal ?? 'unknown') })
    child.once('error', reject)
  })
}

/** Sends `signal` to every child still running, by its recorded PID. Synchronous: usable in 'exit'. */
export function signalTracked (signal: NodeJS.Signals): void {
  for (const [pid, child] of tracked) {
    if (child.exitCode !== null || child.signalCode !== null) continue
    try {
      process.kill(pid, signal)
    } catch {
      // Already gone between the check and the kill.
    }
  }
}

/** SIGTERM to every tracked child, then SIGKILL to those still there after `graceMs`. */
export async function endTracked (graceMs = 5000): Promise<void> {
  const alive = [...tracked.values()].filter((c) => c.exitCode === null && c.signalCode === null)
  if (alive.length === 0) return
  signalTracked('SIGTERM')
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline && [...tracked.values()].some((c) => c.exitCode === null && c.signalCode === null)) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  signalTracked('SIGKILL')
}
