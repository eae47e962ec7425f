// `kahets replay [--dry-run] FILE...` (docs/operations.md#commands): sends backup and frame files back
// through the running kahets, so they take the configured buckets and streams like any
// client's frames. Both formats (frame-file.ts): the spool backups are written in, and plain
// frames (file streams, kahego's `.bckstm`, kahets's backups before the spool). Only verified
// frames are sent; a torn tail and damaged ranges are reported and skipped. --dry-run reads
// and verifies, and sends nothing.
import { createConnection, type Socket } from 'node:net'
import { readFrameFile, type FrameFileResult } from './streams/frame-file.ts'
import { wireRuns } from './protocol/frame.ts'

export interface ReplayReport extends FrameFileResult {
  file: string
}

export interface ReplayProgress {
  file: number
  files: number
  bytes: number
  totalBytes: number
  frames: number
}

export interface ReplayHooks {
  report: (r: ReplayReport) => void
  progress?: (p: ReplayProgress) => void
}

function connect (socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socketPath)
    s.once('connect', () => { s.off('error', reject); resolve(s) })
    s.once('error', reject)
  })
}

function write (socket: Socket, buffers: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err)
    socket.once('error', onError)
    const flushed = socket.write(Buffer.concat(buffers))
    const done = (): void => { socket.off('error', onError); resolve() }
    if (flushed) done()
    else socket.once('drain', done)
  })
}

/** `socketPath` null: a dry run, nothing is sent. */
export async function replayFiles (socketPath: string | null, files: readonly string[], totalBytes: number, hooks: ReplayHooks): Promise<void> {
  const socket = socketPath === null ? null : await connect(socketPath)
  const progress: ReplayProgress = { file: 0, files: files.length, bytes: 0, totalBytes, frames: 0 }
  try {
    for (const file of files) {
      progress.file++
      const result = await readFrameFile(file, async (frames) => {
        if (socket !== null) await write(socket, wireRuns(frames))
        progress.frames += frames.length
      }, { onRead: (bytes) => { progress.bytes += bytes; hooks.progress?.(progress) } })
      hooks.report({ file, ...result })
    }
  } finally {
    if (socket !== null) await new Promise<void>((resolve) => socket.end(resolve))
  }
}

/** One line per file: what was sent (or verified), and what was skipped. */
export function describeReplay (r: ReplayReport, dryRun: boolean): string {
  const parts = [`${r.file}: ${r.format}, ${r.frames} frames ${dryRun ? 'verified (dry run, not sent)' : 'sent'}`]
  if (r.tornBytes > 0) parts.push(`torn tail of ${r.tornBytes} bytes skipped`)
  if (r.damaged.length > 0) parts.push(`DAMAGED: ${r.damaged.length} range${r.damaged.length === 1 ? '' : 's'} (${r.corruptBytes} bytes) skipped at ${r.damaged.slice(0, 5).map((d) => `${d.start}-${d.end}`).join(', ')}${r.damaged.length > 5 ? ', …' : ''}`)
  if (r.unreadable !== null) parts.push(`UNREADABLE: ${r.unreadable}`)
  return parts.join(', ')
}
