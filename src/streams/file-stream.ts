// The `file` stream (docs/configuration.md#file-settings): each bucket appends its frames, in the wire format, to its own
// rotating file under `settings.path`. Also the usual backup of a Kafka stream.
//
// At most `maxOpenFiles` of those files are open at once (open-files.ts): a bucket whose
// file was closed to make room, or idle for IDLE_CLOSE_MS, appends to it again at its next
// write (rotating-file.ts says why that is safe).
import { access, constants, mkdir, stat, statfs } from 'node:fs/promises'
import { hostname } from 'node:os'
import type { FileSettings } from '../config/buckets.ts'
import { RateLimitedLog, type Logger } from '../log.ts'
import { wireRuns, type Frame } from '../protocol/frame.ts'
import { listTemplateFiles } from './file-name-template.ts'
import { fileStreamStats, type FileStreamStats } from './file-stream-stats.ts'
import { OpenFiles } from './open-files.ts'
import { RotatingFile, type RotatingFileEvent } from './rotating-file.ts'
import { encodeSpoolRecords, spoolHeader } from '../protocol/spool.ts'
import { firstRecordTime, quarantineFile } from './frame-file.ts'
import type { FileUsage, Stream } from './stream.ts'

/** A bucket's file not written for this long is closed (issue 10). */
export const IDLE_CLOSE_MS = 30_000
const SWEEP_MS = 5_000
// Free space a probe asks for before the stream takes writes again: a bucket's flush is at
// most 1 MiB of frames unless one frame is larger (docs/configuration.md#buckets-file).
const PROBE_MIN_FREE_BYTES = 1024 * 1024

export interface FileStreamOptions {
  /** The stream's id, for metrics. */
  id?: string
  log?: Logger
  /** `spool` for backups (see `format`); default `frames`. */
  format?: 'frames' | 'spool'
}

export class FileStream implements Stream {
  readonly type = 'file' as const
  readonly #settings: FileSettings
  readonly #files = new Map<string, RotatingFile>()
  readonly #hostname = hostname()
  readonly #openFiles: OpenFiles
  readonly #stats: FileStreamStats
  readonly #log: Logger | null
  readonly #rateLimited = new RateLimitedLog()
  #sweep: NodeJS.Timeout | null = null

  /**
   * `frames`: kahego's plain frame format, for files users read. `spool`: checksummed
   * records (protocol/spool.ts), for backups, which only kahets reads back.
   */
  readonly format: 'frames' | 'spool'

  constructor (settings: FileSettings, opts: FileStreamOptions = {}) {
    this.#settings = settings
    this.format = opts.format ?? 'frames'
    this.#stats = fileStreamStats(opts.id ?? settings.path)
    this.#log = opts.log ?? null
    this.#openFiles = new OpenFiles(settings.maxOpenFiles, { onPressure: () => { this.#pressure() } })
    this.#stats.openFiles = this.#openFiles
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
        header: this.format === 'spool' ? spoolHeader() : undefined,
        openFiles: this.#openFiles,
        onEvent: (event) => { this.#event(bucket, event) },
        onDeleteError: (old, err) => { this.#log?.warn({ bucket, file: old, err }, 'maxFiles: an old file was not deleted') },
      })
      this.#files.set(bucket, file)
    }
    this.#startSweep()
    await file.write(this.format === 'spool' ? encodeSpoolRecords(frames) : wireRuns(frames))
    return undefined
  }

  async listClosedFiles (): Promise<string[]> {
    const files = await listTemplateFiles(this.#settings.path, this.#settings.fileNameTemplate, this.#hostname)
    // The files being written are taken once the folder was read, not before: a file created
    // while it was read (a backup that answers again writing what it held) is current now,
    // and a replay must not read it and delete it while writes still land in it (they were
    // lost: spill-drain.test.ts). A file closed only to stay under maxOpenFiles is still
    // being written too.
    const open = new Set([...this.#files.values()].map((f) => f.currentPath))
    return files.filter((f) => !open.has(f))
  }

  async usage (): Promise<FileUsage> {
    const files = await listTemplateFiles(this.#settings.path, this.#settings.fileNameTemplate, this.#hostname)
    let bytes = 0
    for (const f of files) bytes += await stat(f).then((st) => st.size, () => 0)
    // Oldest first: the first file with a record holds the oldest message.
    let oldestAt: number | null = null
    for (const f of files) {
      oldestAt = await firstRecordTime(f)
      if (oldestAt !== null) break
    }
    return { files: files.length, bytes, oldestAt }
  }

  /** Moves a file replay could not read whole to `quarantine/` under path (frame-file.ts). */
  async quarantine (file: string): Promise<string> {
    return await quarantineFile(this.#settings.path, file)
  }

  /**
   * Writable again: the folder exists (or can be made), may be written, and its file system
   * has room for a batch. A full disk answers no, so that the backup is not replayed into
   * it only to fail part-way again at every probe.
   */
  async probe (): Promise<boolean> {
    try {
      await mkdir(this.#settings.path, { recursive: true })
      await access(this.#settings.path, constants.W_OK)
      const fs = await statfs(this.#settings.path)
      return fs.bavail * fs.bsize >= Math.min(PROBE_MIN_FREE_BYTES, this.#settings.sizeRotate)
    } catch {
      return false
    }
  }

  async reset (): Promise<void> {
    await this.close()
  }

  async close (): Promise<void> {
    if (this.#sweep !== null) clearInterval(this.#sweep)
    this.#sweep = null
    const files = [...this.#files.values()]
    this.#files.clear()
    await Promise.allSettled(files.map((f) => f.close()))
  }

  #startSweep (): void {
    if (this.#sweep !== null) return
    this.#sweep = setInterval(() => {
      for (const holder of this.#openFiles.sweep(Date.now() - IDLE_CLOSE_MS)) {
        holder.suspend().catch((err: unknown) => { this.#log?.warn({ err }, 'closing an idle file failed') })
      }
    }, SWEEP_MS)
    this.#sweep.unref()
  }

  #event (bucket: string, event: RotatingFileEvent): void {
    switch (event.kind) {
      case 'reopened':
        this.#stats.reopened.set(event.reason, (this.#stats.reopened.get(event.reason) ?? 0) + 1)
        this.#log?.warn({ bucket, file: event.file, reason: event.reason }, 'file no longer at its path (deleted or replaced); recreated there')
        return
      case 'undone':
        this.#stats.writesUndone++
        this.#stats.bytesUndone += event.bytes
        this.#log?.warn({ bucket, file: event.file, bytes: event.bytes }, 'write failed part-way; its bytes were cut off again so that the batch is written once')
        return
      default: {
        const never: never = event
        throw new Error(`unknown file event ${JSON.stringify(never)}`)
      }
    }
  }

  #pressure (): void {
    this.#stats.pressureEvents++
    if (this.#log !== null) {
      this.#rateLimited.warn(this.#log, 'pressure', { openFiles: this.#openFiles.size, limit: this.#openFiles.limit, maxOpenFiles: this.#openFiles.max }, 'out of file descriptors: closed idle files and lowered the bound on open files')
    }
  }
}
