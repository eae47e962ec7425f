// `kahets replay FILE...` (SPEC §4): sends frame files (backup or file-stream files) back
// through the running kahets, so they take the configured buckets and streams like any
// client's frames. Whole frames only: a torn tail is reported and skipped.
import { createConnection, type Socket } from 'node:net'
import { readFrameFile } from './streams/frame-file.ts'
import { wireRuns } from './protocol/frame.ts'

export interface ReplayReport {
  file: string
  frames: number
  tornBytes: number
  invalid: number
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

export async function replayFiles (socketPath: string, files: readonly string[], report: (r: ReplayReport) => void): Promise<void> {
  const socket = await connect(socketPath)
  try {
    for (const file of files) {
      const result = await readFrameFile(file, async (frames) => {
        await write(socket, wireRuns(frames))
      })
      report({ file, ...result })
    }
  } finally {
    await new Promise<void>((resolve) => socket.end(resolve))
  }
}
