// Each client in acknowledged mode while its (FAKE, test/helpers/ack-server.ts) kahets shuts
// down with CLOSING between two halves of a stream and a new one takes over the socket path:
// every message arrives exactly once. The same drivers can run against a real kahets.
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { encodeFrame } from '../../src/protocol/encoder.ts'
import { AckServer } from '../helpers/ack-server.ts'
import { type AckMessage, type AckRunOptions, type AckRunResult, runNodeAck, runPhpAck, runPythonAck } from '../helpers/ack-clients.ts'
import { SinkDir } from '../helpers/sink.ts'

const sinks = new SinkDir('kahets-ack-restart-')
const servers: AckServer[] = []

after(async () => {
  for (const s of servers) await s.close()
  await sinks.cleanup()
})

const drivers: Record<string, (socketPath: string, opts: AckRunOptions) => Promise<AckRunResult>> = {
  node: runNodeAck,
  php: (p, o) => runPhpAck(sinks.dir, p, o),
  python: (p, o) => runPythonAck(sinks.dir, p, o),
}

describe('acknowledged mode across a restart of kahets', () => {
  for (const [name, run] of Object.entries(drivers)) {
    test(`${name}: CLOSING at shutdown, then the next kahets at the same path: every frame once`, async () => {
      const socketPath = sinks.socketPath(name)
      const first = await AckServer.start(socketPath)
      servers.push(first)
      let second: AckServer | null = null
      const msgs: AckMessage[] = Array.from({ length: 400 }, (_, i) => ({ bucket: 'orders', payload: `${name} ${i}`, key: `k${i % 7}` }))
      const r = await run(socketPath, {
        ack: 'accepted',
        messages: msgs,
        midway: async () => {
          await first.shutdown()
          fs.rmSync(socketPath, { force: true })
          second = await AckServer.start(socketPath)
          servers.push(second)
        },
      })
      assert.deepEqual({ ok: r.ok, settled: r.settled, refused: r.refused }, { ok: true, settled: 400, refused: 0 }, r.log)
      const got = [...first.allFrames(), ...second!.allFrames()]
      assert.deepEqual(got, msgs.map((m) => encodeFrame(m)), 'every frame exactly once, in order')
      assert.ok(second!.allFrames().length >= 200, 'the second half went to the new kahets')
    })
  }
})
