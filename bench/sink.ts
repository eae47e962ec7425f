// The ingest ceiling: a UNIX socket server that only counts the bytes it reads. Nothing can
// take frames off a socket faster than this with Node's net module, so kahets's socket → file
// rate divided by this one shows what decoding, batching and writing cost.
//
// It runs as its own process (measured from /proc like kahets). The parent says how many more
// bytes to expect before a run ('expect'); the sink answers 'reached' with the wall-clock time
// it read the last of them.
import { createServer } from 'node:net'
import { unlinkSync } from 'node:fs'
import { wallMs } from './lib/proc.ts'

export type SinkMessage = { type: 'listening' } | { type: 'expecting' } | { type: 'reached', atMs: number, total: number }

const socket = process.env.BENCH_SINK_SOCKET ?? ''
let total = 0
let target = Infinity

const server = createServer((conn) => {
  conn.on('data', (chunk: Buffer) => {
    total += chunk.length
    if (total >= target) {
      target = Infinity
      process.send!({ type: 'reached', atMs: wallMs(), total } satisfies SinkMessage)
    }
  })
  conn.on('error', () => {})
})

process.on('message', (m: { type: string, bytes: number }) => {
  if (m.type !== 'expect') return
  target = total + m.bytes
  // Acknowledged, so the parent starts the load only once the target is in place.
  process.send!({ type: 'expecting' } satisfies SinkMessage)
})
process.on('disconnect', () => { server.close(); process.exit(0) })
process.on('SIGTERM', () => { server.close(); process.exit(0) })
process.on('exit', () => { try { unlinkSync(socket) } catch { /* already gone */ } })

server.listen(socket, () => { process.send!({ type: 'listening' } satisfies SinkMessage) })
