// The `file` stream (SPEC §2): each bucket appends its frames, in the wire format, to its own
// rotating file under `settings.path`. Also the usual backup of a Kafka stream.
import { access, mkdir, constants } from 'node:fs/promises'
import { hostname } from 'node:os'
import type { FileSettings } from '../config/buckets.ts'
import { wireRuns, type Frame } from '../protocol/frame.ts'
import { listTemplateFiles } from './file-name-template.ts'
import { RotatingFile } from './rotating-file.ts'
import type { Stream } from './stream.ts'

export class FileStream implements Stream {
  readonly type = 'file' as const
  readonly #settings: FileSettings
  readonly #files = new Map<string, RotatingFile>()
  readonly #hostname = hostname()

  constructor (settings: FileSettings) {
    this.#settings = settings
  }

  async write (bucket: string, frames: readonly Frame[]): Promise<undefined> {
    let file = this.#files.get(bucket)
    if (file === undefined) {
      file = new RotatingFile({
        root: this.#settings.path,
        template: this.#settings.fileNameTemplate,
        bucket,
        hostname: this.#hostname,
        sizeRotate: this.#settings.sizeRotate,
        maxFiles: this.#settings.maxFiles,
        fsync: this.#settings.fsync,
      })
      this.#files.set(bucket, file)
    }
    await file.write(wireRuns(frames))
    return undefined
  }

  async listClosedFiles (): Promise<string[]> {
    const open = new Set([...this.#files.values()].map((f) => f.currentPath))
    const files = await listTemplateFiles(this.#settings.path, this.#settings.fileNameTemplate, this.#hostname)
    return files.filter((f) => !open.has(f))
  }

  async probe (): Promise<boolean> {
    try {
      await mkdir(this.#settings.path, { recursive: true })
      await access(this.#settings.path, constants.W_OK)
      return true
    } catch {
      return false
    }
  }

  async reset (): Promise<void> {
    await this.close()
  }

  async close (): Promise<void> {
    const files = [...this.#files.values()]
    this.#files.clear()
    await Promise.allSettled(files.map((f) => f.close()))
  }
}
