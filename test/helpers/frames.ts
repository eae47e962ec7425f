// Reads the frames kahets wrote to files back with the project's own decoder.
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { FrameDecoder } from '../../src/protocol/decoder.ts'
import type { Frame } from '../../src/protocol/frame.ts'

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

/** Every frame in every file under dir, each file's frames in file order. */
export async function readFrameFiles (dir: string): Promise<Array<{ file: string, frames: Frame[] }>> {
  const out = []
  for (const file of await listFiles(dir)) {
    const { frames, invalid, trailing } = decodeAll(await readFile(file))
    if (invalid > 0 || trailing > 0) throw new Error(`${file}: ${invalid} invalid frames, ${trailing} trailing bytes`)
    out.push({ file, frames })
  }
  return out
}
