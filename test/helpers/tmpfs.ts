// A disk that can really fill up: small tmpfs mounts in a fresh temp folder, for the
// full-disk tests (issue 10, finding 6). Mounting takes root; the tests skip without it.
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after } from 'node:test'

/** A test's `skip` option: the reason when not root, else false. */
export const NEEDS_ROOT = process.getuid?.() !== 0 ? 'needs root to mount a tmpfs' : false

/**
 * A fresh temp folder with a tmpfs of the given size mounted at each named subfolder, e.g.
 * `{ primary: '2m' }`; unmounted and removed after the calling test.
 */
export async function tmpfsDir (prefix: string, mounts: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  const mounted: string[] = []
  after(async () => {
    for (const m of mounted) {
      try {
        execFileSync('umount', ['-l', m])
      } catch {
        // Already gone: nothing to unmount.
      }
    }
    await rm(dir, { recursive: true, force: true })
  })
  for (const [name, size] of Object.entries(mounts)) {
    const at = join(dir, name)
    await mkdir(at, { recursive: true })
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', at])
    mounted.push(at)
  }
  return dir
}

/** Fills DIR's file system up to `leave` bytes free with one file, returned for removal. */
export async function fillDisk (dir: string, leave: number): Promise<string> {
  const file = join(dir, 'filler')
  const fh = await open(file, 'w')
  const chunk = Buffer.alloc(64 * 1024, 1)
  let size = 0
  try {
    for (;;) {
      await fh.write(chunk, 0, chunk.length, size)
      size += chunk.length
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
  }
  await fh.truncate(Math.max(0, size - leave))
  await fh.close()
  return file
}
