// Peak RSS and CPU of kahets at a fixed rate, per Node binary and V8 flags: the comparison
// behind bin/kahets's --max-semi-space-size (docs/benchmarks.md, Targets). `make bench`'s
// half-rate rows run at half of each run's own maximum, so their RSS moves with the machine;
// this holds the rate, and alternates the variants round by round so that a noisy moment
// falls on all of them.
//
// Usage: node --import tsx bench/node-memory.ts [--rate N] [--seconds S] [--rounds R]
//          [--variant 'NAME=NODE_BINARY FLAG…']…
// Default variants: the Node on PATH (the pinned one under make) with and without the cap,
// and /usr/bin/node when it exists. File stream, 100 B messages, 8 clients, fsync on; each
// measurement is a fresh kahets (`make build` first: it runs dist/kahets.js).
import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { startKahets, waitAccounted } from './lib/kahets.ts'
import { LoadPool } from './lib/load.ts'
import { cpuSeconds, peakRssBytes, resetPeakRss } from './lib/proc.ts'

interface Variant { name: string, node: string, flags: string[] }

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '3' },
    variant: { type: 'string', multiple: true },
  },
})
const rate = Number(values.rate)
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
// bench/lib/kahets.ts adds the cap to every run it starts with nodeFlags, as bin/kahets does;
// a variant's own --max-semi-space-size=0 (V8's default sizing) comes later and wins.
const variants: Variant[] = values.variant?.map((v) => {
  const [name, rest] = v.split('=', 2) as [string, string | undefined]
  const [node, ...flags] = (rest ?? '').trim().split(/\s+/)
  if (node === undefined || node === '') throw new Error(`--variant ${v}: NAME=NODE_BINARY [FLAG…]`)
  return { name, node, flags }
}) ?? [
  { name: `${process.version} capped`, node: process.execPath, flags: [] },
  { name: `${process.version} V8 sizing`, node: process.execPath, flags: ['--max-semi-space-size=0'] },
  ...(existsSync('/usr/bin/node') && process.execPath !== '/usr/bin/node' ? [{ name: '/usr/bin/node capped', node: '/usr/bin/node', flags: [] }] : []),
]

const pool = await LoadPool.start(2)
const results = new Map<string, Array<{ rss: number, cpu: number, idle: number }>>()
try {
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const k = await startKahets({
        buckets: {
          streamsConfigs: { file: { type: 'file', settings: { path: '{dir}/out', sizeRotate: '100MB', maxFiles: 3 } } },
          buckets: [{ id: 'bench', streams: ['file'], batch: 1000, batchTimeout: 50 }],
        },
        node: v.node,
        nodeFlags: v.flags,
        env: { MAXMEMORY: String(1024 * 1024 * 1024) },
      })
      try {
        const idle = peakRssBytes(k.pid) / 2 ** 20
        const load = await pool.prepare({ socket: k.socket, bucket: 'bench', size: 100, clients: 8, mode: 'paced', rate, durationMs: seconds * 1000 })
        resetPeakRss(k.pid)
        const cpu0 = cpuSeconds(k.pid)
        load.go()
        const sent = await load.done
        await waitAccounted(k, 'bench', sent.sent, 60_000)
        const cpu = ((cpuSeconds(k.pid) - cpu0) / sent.sent) * 1e6
        const rss = peakRssBytes(k.pid) / 2 ** 20
        results.set(v.name, [...(results.get(v.name) ?? []), { rss, cpu, idle }])
        console.log(`round ${r + 1} ${v.name}: ${Math.round(sent.sent / seconds)} msg/s, idle ${idle.toFixed(0)} MB, peak ${rss.toFixed(0)} MB, ${cpu.toFixed(2)} CPU s/1M`)
      } finally {
        await k.stop()
      }
    }
  }
} finally {
  await pool.close()
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
console.log(`\nmedians over ${rounds} rounds, ${rate} msg/s of 100 B for ${seconds} s, 8 clients, file stream:`)
for (const [name, xs] of results) {
  console.log(`  ${name.padEnd(28)} peak RSS ${median(xs.map((x) => x.rss)).toFixed(0).padStart(4)} MB   CPU ${median(xs.map((x) => x.cpu)).toFixed(2)} s/1M   idle ${median(xs.map((x) => x.idle)).toFixed(0)} MB`)
}
