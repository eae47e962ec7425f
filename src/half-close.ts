// Half-closing a client connection at shutdown (docs/guarantees.md#clean-shutdown). shutdown(2) with
// SHUT_RD on a Linux UNIX stream socket keeps every byte already queued for reading and makes
// the peer's later writes fail with EPIPE, so reading to EOF after it gets exactly what
// clients believe they sent. Node's net has no call for it; libc's is reached through koffi,
// a foreign-function binding that ships prebuilt binaries. It is optional: loaded lazily, and
// where it cannot load the caller falls back to reading until the client is quiet.
import type { Socket } from 'node:net'

const SHUT_RD = 0
// Linux's FIONREAD (SIOCINQ): bytes queued on the socket, not yet read.
const FIONREAD = 0x541b

export interface HalfClose {
  /** shutdown(fd, SHUT_RD) on the socket's descriptor; false when it has none or the call failed. */
  shutdownRead (socket: Socket): boolean
  /** Bytes the kernel holds for this socket that were not read, or null when unknown. */
  unreadBytes (socket: Socket): number | null
}

/** The environment variable that forces the fallback (a test switch: `KAHETS_HALF_CLOSE=off`). */
export const HALF_CLOSE_SWITCH = 'KAHETS_HALF_CLOSE'

function fdOf (socket: Socket): number {
  // libuv's pipe handle exposes its descriptor; net has no public accessor for it.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd
  return typeof fd === 'number' ? fd : -1
}

/** Loads the binding; resolves with the reason instead when it cannot be used here. */
export async function loadHalfClose (env: NodeJS.ProcessEnv = process.env): Promise<HalfClose | string> {
  if (env[HALF_CLOSE_SWITCH] === 'off') return `${HALF_CLOSE_SWITCH}=off`
  if (process.platform !== 'linux') return `shutdown(2) on UNIX sockets is relied on only on Linux, not ${process.platform}`
  try {
    const { default: koffi } = await import('koffi')
    const libc = koffi.load('libc.so.6')
    const shutdown = libc.func('int shutdown(int, int)') as (fd: number, how: number) => number
    const ioctl = libc.func('int ioctl(int, unsigned long, _Out_ int *)') as (fd: number, req: number, out: number[]) => number
    return {
      shutdownRead (socket) {
        const fd = fdOf(socket)
        return fd >= 0 && shutdown(fd, SHUT_RD) === 0
      },
      unreadBytes (socket) {
        const fd = fdOf(socket)
        if (fd < 0) return null
        const out = [0]
        return ioctl(fd, FIONREAD, out) === 0 ? out[0]! : null
      },
    }
  } catch (err) {
    return `koffi could not be loaded: ${(err as Error).message}`
  }
}
