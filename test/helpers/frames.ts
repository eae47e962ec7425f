// Reads the frames kahets wrote to files back with the project's own decoders: plain frames
// (file streams) and the spool (backups), told apart by the spool's magic.
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { FrameDecoder } from '../../src/protocol/decoder.ts'
import type { Frame } from '../../src/protocol/frame.ts'
import { hasSpoolMagic, SpoolDecoder } from '../../src/protocol/spool.ts'

export async function listFiles (dir: string): Promise<string[]> {
  const out: string[] = []
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
  for (const e of entries) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await listFiles(p))
    else if (e.isFile()) out.push(p)
  }
  return out.sort()
}

export function decodeAll (bytes: Buffer): { frames: Frame[], invalid: number, trailing: number } {
  const frames: Frame[] = []
  let invalid = 0
  const d = new FrameDecoder({ frames: (b) => { for (const f of b) frames.push(f) }, invalid: () => { invalid++ } }, { maxFrameBytes: 0xffffffff })
  d.push(bytes)
  return { frames, invalid, trailing: d.end() }
}

export function decodeSpool (bytes: Buffer): { frames: Frame[], damaged: number, torn: number } {
  const frames: Frame[] = []
  let damaged = 0
  const d = new SpoolDecoder({ frames: (b) => { for (const f of b) frames.push(f) }, damaged: () => { damaged++ } })
  d.push(bytes)
  const end = d.end()
  return { frames, damaged: damaged + (end.unknownVersion === null ? 0 : 1), torn: end.tornBytes }
}

/** Every frame in every file under dir, each file's frames in file order, and each file's format. */
export async function readFrameFiles (dir: string): Promise<Array<{ file: string, frames: Frame[], format: 'spool' | 'frames' }>> {
  const out = []
  for (const file of await listFiles(dir)) {
    const bytes = await readFile(file)
    if (hasSpoolMagic(bytes)) {
      const { frames, damaged, torn } = decodeSpool(bytes)
      if (damaged > 0 || torn > 0) throw new Error(`${file}: ${damaged} damaged ranges, ${torn} torn bytes`)
      out.push({ file, frames, format: 'spool' as const })
      continue
    }
    const { frames, invalid, trailing } = decodeAll(bytes)
    if (invalid > 0 || trailing > 0) throw new Error(`${file}: ${invalid} invalid frames, ${trailing} trailing bytes`)
    out.push({ file, frames, format: 'frames' as const })
  }
  return out
}
