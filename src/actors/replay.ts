// Replay (docs/guarantees.md#replay): the backup's closed files go back into the stream, oldest first; each is
// deleted only once all of it was written or set aside, so a crash re-sends at most the file
// under way; a file that could not be read whole (damage found by the spool's checksums) is
// never deleted but moved to quarantine/, its verified records replayed. The backup actor hands out its files (BackupFiles); this module reads them, writes
// them to the stream and decides per record what a refusal means (decideFault):
//
//   written                        counted as replayed
//   destination refused for good   counted (kahets_replay_refused_total) and set aside
//   destination refused for now    written back to the backup (respool) with the rest of that
//                                  bucket in this replay; tried again at a later replay
//   stream failed                  the replay stops; the file stays for the next one
//
// So a refused destination can neither loop a replay nor hold back the other buckets (issue 10).
// A file that was replayed but cannot be deleted or moved to quarantine/ (a read-only
// folder, quarantine/ not a folder) is not read again by this process: it is left in place,
// logged, counted, and the delete or move is tried again with a backoff (StuckFiles).
import { stat, unlink } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { ErrorCodes, KahetsError } from '../errors.ts'
import { groupBy } from '../group-by.ts'
import type { Logger } from '../log.ts'
import type { Frame } from '../protocol/frame.ts'
import type { Stats } from '../stats.ts'
import { readFrameFile, type FrameFileResult } from '../streams/frame-file.ts'
import type { Stream } from '../streams/stream.ts'
import { decideFault } from './fault-policy.ts'

export interface ReplayProgress {
  filesLeft: number
  /** Bytes of backup files still to replay: lowered as each chunk is read and written. */
  bytesLeft: number
  /** Bytes of backup files read back and written into the stream, over the process's life. */
  bytesReplayed: number
  tornFrames: number
  /** Damaged runs found in backup files (each lost at least one record) and their bytes. */
  corruptRecords: number
  corruptBytes: number
  /** Replayed files that could not be deleted or quarantined, left in place (kahets_replay_stuck_files). */
  stuckFiles: number
}

/** First retry of a stuck file's delete or move; doubles up to the maximum. */
export const STUCK_RETRY_MS = 5000
export const STUCK_RETRY_MAX_MS = 10 * 60 * 1000

type StuckAction = 'delete' | 'quarantine'

/**
 * Backup files whose records were all replayed (or set aside) but that could not be deleted
 * or moved to quarantine/: replaying them again would send their records again, so this
 * process does not read them again (a restart does: at least once). Kept by the stream actor
 * across replays.
 */
export class StuckFiles {
  readonly #files = new Map<string, { action: StuckAction, retryAt: number, delayMs: number }>()
  readonly #firstRetryMs: number

  constructor (firstRetryMs = STUCK_RETRY_MS) {
    this.#firstRetryMs = firstRetryMs
  }

  get size (): number { return this.#files.size }
  has (file: string): boolean { return this.#files.has(file) }

  /** A first failure, or a failed retry: the next try waits twice as long. */
  failed (file: string, action: StuckAction, now: number): number {
    const prev = this.#files.get(file)
    const delayMs = prev === undefined ? this.#firstRetryMs : Math.min(STUCK_RETRY_MAX_MS, prev.delayMs * 2)
    this.#files.set(file, { action, retryAt: now + delayMs, delayMs })
    return delayMs
  }

  /** When the next retry is due, or null with none stuck. */
  get nextRetryAt (): number | null {
    let at: number | null = null
    for (const e of this.#files.values()) if (at === null || e.retryAt < at) at = e.retryAt
    return at
  }

  due (now: number): Array<{ file: string, action: StuckAction }> {
    return [...this.#files].filter(([, e]) => e.retryAt <= now).map(([file, e]) => ({ file, action: e.action }))
  }

  remove (file: string): void { this.#files.delete(file) }
}

/** What a backup stream actor offers a replay. */
export interface BackupFiles {
  /** Closes the files the backup has open, after every write queued before this call. */
  rotate (): Promise<void>
  /** The backup's closed files, oldest first. */
  closedFiles (): Promise<string[]>
  /** Moves a file that could not be read whole where replay will not list it again; where to, or null. */
  quarantine (file: string): Promise<string | null>
}

export interface ReplayOptions {
  streamId: string
  /** The stream replayed into. */
  stream: Stream
  backup: BackupFiles
  /** Writes frames of a destination that refused them for now back to the backup. */
  respool: (bucket: string, frames: readonly Frame[]) => void
  stats: Stats
  log: Logger
  bytesPerSec: number
  progress: ReplayProgress
  /** True once shutdown gave up on the stream: the replay stops at the next chunk. */
  abandoned: () => boolean
  /** Files replayed earlier that could not be deleted or quarantined (kept by the stream actor). */
  stuck: StuckFiles
}

// Frames per write while replaying: enough to batch well, small enough to bound memory.
const REPLAY_CHUNK_FRAMES = 5000

export class Replay {
  readonly #o: ReplayOptions
  /** Buckets whose destination refused for now during this replay: the rest of them is respooled. */
  readonly refusedForNow = new Set<string>()
  /** Buckets whose frames went into the stream during this replay. */
  readonly written = new Set<string>()

  constructor (opts: ReplayOptions) {
    this.#o = opts
  }

  /**
   * Replays the backup's closed files until none is left, or until a round wrote nothing into
   * the stream (all of it respooled or refused: nothing left that could drain now).
   */
  async pass (): Promise<void> {
    await this.#retryStuck()
    while (true) {
      const files = (await this.#o.backup.closedFiles()).filter((f) => !this.#o.stuck.has(f))
      if (files.length === 0) return
      const before = this.#replayedFrames
      await this.#files(files)
      if (this.#replayedFrames === before) return
    }
  }

  #replayedFrames = 0
  #respooledFrames = 0
  /** Frames written into the stream by this replay. */
  get replayedFrames (): number { return this.#replayedFrames }
  /** Frames written back to the backup by this replay (their destination refused them for now). */
  get respooledFrames (): number { return this.#respooledFrames }

  async #files (files: string[]): Promise<void> {
    const { progress, log } = this.#o
    const sizes = await Promise.all(files.map((f) => stat(f).then((st) => st.size, () => 0)))
    progress.filesLeft = files.length
    progress.bytesLeft = sizes.reduce((a, b) => a + b, 0)
    for (const [i, file] of files.entries()) {
      const started = Date.now()
      let bytes = 0
      let read = 0
      // The one read of a file: a reader of another format drops in here. Progress moves per
      // chunk read (onRead comes once that chunk's frames were written), not per file.
      const result = await readFrameFile(file, async (frames) => {
        bytes += await this.#frames(frames)
        // Bound the replay rate so live traffic is not starved.
        const due = started + (bytes / this.#o.bytesPerSec) * 1000
        if (due > Date.now()) await sleep(due - Date.now())
      }, {
        onRead: (n) => {
          read += n
          progress.bytesReplayed += n
          progress.bytesLeft = Math.max(0, progress.bytesLeft - n)
        },
      })
      if (result.tornBytes > 0) {
        progress.tornFrames++
        log.warn({ file, tornBytes: result.tornBytes }, 'backup file ends in a torn frame (written when kahets was killed); whole frames replayed, the tail skipped')
      }
      if (result.whole) await this.#done(file)
      else await this.#quarantine(file, result)
      progress.filesLeft = files.length - i - 1
      progress.bytesLeft = Math.max(0, progress.bytesLeft - Math.max(0, sizes[i]! - read))
      if (result.whole) log.info({ file, frames: result.frames }, 'backup file replayed and removed')
    }
  }

  /** A file all of whose records were written, respooled or set aside: it goes. */
  async #done (file: string): Promise<void> {
    try {
      await unlink(file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#stuck(file, 'delete', err)
    }
  }

  #stuck (file: string, action: StuckAction, err: unknown): void {
    stuckFile(this.#o.stuck, file, action, err, this.#o.log, this.#o.progress)
  }

  async #retryStuck (): Promise<void> {
    const { stuck, backup, log, progress } = this.#o
    await retryStuckFiles(stuck, backup, log, progress)
  }

  async #quarantine (file: string, result: FrameFileResult): Promise<void> {
    const { progress, log } = this.#o
    progress.corruptRecords += result.damaged.length
    progress.corruptBytes += result.corruptBytes
    let to: string | null = null
    try {
      to = await this.#o.backup.quarantine(file)
    } catch (err) {
      this.#stuck(file, 'quarantine', err)
    }
    log.error({
      file,
      quarantined: to,
      format: result.format,
      frames: result.frames,
      corruptRecords: result.damaged.length,
      corruptBytes: result.corruptBytes,
      damaged: result.damaged.slice(0, 20).map((r) => `${r.start}-${r.end}`),
      unreadable: result.unreadable ?? undefined,
    }, 'backup file damaged: its verified records were replayed, the damaged ranges skipped; the file is kept in quarantine (kahets inspect shows it)')
  }

  #respool (bucket: string, frames: Frame[]): void {
    this.#respooledFrames += frames.length
    this.#o.respool(bucket, frames)
  }

  async #frames (frames: Frame[]): Promise<number> {
    const { stream, stats, streamId, log } = this.#o
    let bytes = 0
    if (this.#o.abandoned()) throw new KahetsError(ErrorCodes.STREAM_UNAVAILABLE, 'replay abandoned at shutdown', { retriable: true })
    for (const [bucket, group] of groupBy(frames, (f) => f.bucket)) {
      for (let at = 0; at < group.length; at += REPLAY_CHUNK_FRAMES) {
        const chunk = group.slice(at, at + REPLAY_CHUNK_FRAMES)
        for (const f of chunk) bytes += f.size
        if (this.refusedForNow.has(bucket)) {
          this.#respool(bucket, chunk)
          continue
        }
        const flow = stats.bucket(bucket).flow(streamId)
        let rejections
        try {
          rejections = await stream.write(bucket, chunk)
        } catch (err) {
          const decision = decideFault(err, true)
          if (decision.action === 'drop') {
            flow.refuseOnReplay(decision.reason, chunk.length)
            log.error({ bucket, frames: chunk.length, reason: decision.reason, err }, 'replayed messages refused by the stream; set aside')
            continue
          }
          if (decision.action === 'divert') {
            this.refusedForNow.add(bucket)
            log.warn({ bucket, frames: chunk.length, err }, 'destination refuses replayed messages for now; back to the backup')
            this.#respool(bucket, chunk)
            continue
          }
          throw err
        }
        let refused = 0
        for (const [reason, n] of rejections ?? []) {
          refused += n
          flow.refuseOnReplay(reason, n)
          log.error({ bucket, frames: n, reason }, 'replayed messages refused by the stream')
        }
        flow.replayed += chunk.length - refused
        this.#replayedFrames += chunk.length
        this.written.add(bucket)
      }
    }
    return bytes
  }
}

function stuckFile (stuck: StuckFiles, file: string, action: StuckAction, err: unknown, log: Logger, progress: ReplayProgress): void {
  const first = !stuck.has(file)
  const retryInMs = stuck.failed(file, action, Date.now())
  progress.stuckFiles = stuck.size
  const what = action === 'delete' ? 'deleted' : 'moved to quarantine/'
  if (first) log.error({ file, err, retryInMs }, `backup file replayed but it cannot be ${what}: left in place and not replayed again until a restart; retrying with a backoff`)
  else log.warn({ file, err, retryInMs }, `backup file still cannot be ${what}; retrying later`)
}

/**
 * Tries again to delete or quarantine the stuck files whose backoff has passed: at each
 * replay, and on the stream actor's timer while no replay runs.
 */
export async function retryStuckFiles (stuck: StuckFiles, backup: BackupFiles, log: Logger, progress: ReplayProgress): Promise<void> {
  for (const { file, action } of stuck.due(Date.now())) {
    try {
      if (action === 'delete') await unlink(file)
      else {
        const to = await backup.quarantine(file)
        log.info({ file, quarantined: to }, 'damaged backup file moved to quarantine/ at last')
      }
      stuck.remove(file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') stuck.remove(file)
      else stuckFile(stuck, file, action, err, log, progress)
    }
  }
  progress.stuckFiles = stuck.size
}
