// A UNIX socket path kahets is about to listen on (docs/configuration.md#environment, METRICS=unix:PATH): it may
// replace only a socket file nobody answers on, the one a crashed run leaves behind. A
// path that is anything else (a file, a folder, a symlink) is never deleted, and a socket
// another live process serves is never taken from it (issue 10, finding 10). The listener
// applies the same rule to SOCKET.
import { lstat, unlink } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { ErrorCodes, KahetsError } from './errors.ts'

/** Is a live process accepting on this socket file? */
export function answers (path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path)
    probe.once('connect', () => { probe.destroy(); resolve(true) })
    probe.once('error', () => { resolve(false) })
  })
}

/**
 * Makes `path` free to listen on. Resolves 'free' when nothing was there, 'stale' when a
 * socket file nobody answered on was removed; throws SOCKET_IN_USE otherwise.
 */
export async function claimSocketPath (path: string): Promise<'free' | 'stale'> {
  const existing = await lstat(path).catch(() => null)
  if (existing === null) return 'free'
  if (!existing.isSocket()) throw new KahetsError(ErrorCodes.SOCKET_IN_USE, `${path} exists and is not a socket; refusing to replace it`)
  if (await answers(path)) throw new KahetsError(ErrorCodes.SOCKET_IN_USE, `another process is serving ${path}; refusing to start a second instance`)
  await unlink(path)
  return 'stale'
}
