// Socket activation (docs/operations-systemd.md): systemd, or `systemd-socket-activate`,
// holds the listening socket and passes it to kahets as fd 3, with the sd_listen_fds(3)
// contract: LISTEN_PID is the pid the sockets are meant for (a child that inherited the
// variables must not take them), LISTEN_FDS how many there are from fd 3 on, LISTEN_FDNAMES
// their names. The variables are removed once read, whoever they were meant for, so that no
// process kahets starts inherits them.
import { fstatSync } from 'node:fs'
import { ConfigError } from './errors.ts'

/** The first passed descriptor (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3

const VARIABLES = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const

/**
 * The descriptors passed to this process, [] when none were (no LISTEN_PID, or another
 * pid's). Throws a ConfigError when the variables are malformed or a descriptor is not open.
 */
export function takeListenFds (env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): number[] {
  const { LISTEN_PID: listenPid, LISTEN_FDS: listenFds } = env
  for (const name of VARIABLES) delete env[name]
  if (listenPid === undefined || listenPid === '') return []
  if (!/^[1-9]\d*$/.test(listenPid)) throw bad('LISTEN_PID', `"${listenPid}" is not a process id`)
  if (Number(listenPid) !== pid) return []
  if (listenFds === undefined || !/^\d+$/.test(listenFds)) throw bad('LISTEN_FDS', `"${listenFds ?? ''}" is not a number of descriptors`)
  const fds = Array.from({ length: Number(listenFds) }, (_, i) => LISTEN_FDS_START + i)
  for (const fd of fds) {
    try {
      if (!fstatSync(fd).isSocket()) throw bad('LISTEN_FDS', `descriptor ${fd} is not a socket`)
    } catch (err) {
      if (err instanceof ConfigError) throw err
      throw bad('LISTEN_FDS', `descriptor ${fd} is not open (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
    }
  }
  return fds
}

function bad (path: string, message: string): ConfigError {
  return new ConfigError([{ path, message }])
}
