// `make bench` itself, as a smoke test: one short run of the file, sink and Kafka scenarios at
// 100 B / 1 client (--quick), of the Kafka ceilings (issue 12: ProducerPerformance as before and
// tuned, librdkafka through kcat), and of the acknowledged-mode file row (issue 11) with the
// fire-and-forget row it is compared with, through the same bench/run.ts, so the benchmark
// docs/benchmarks.md shows keeps working, plot included. It asserts what a reader of the bench checks — rows in the table, figures in
// the JSON, every message accounted for — and nothing about speed (benchmarks, not timed tests).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

interface Scenario {
  id: string
  summary: { msgsPerSec: { median: number } | null, cpuPer1M: { median: number } | null, peakRssMB: { median: number } | null, p99?: { median: number } | null } | undefined
  ratios: Array<{ against: string, ceilingId: string, ratio: number }>
  ack: string | null
  compareTo: string | null
  ackLatencyTargetMs?: number
  runs: Array<{ messages: number, notDelivered?: number, refused?: number }>
  halfRateRuns: Array<{ messages: number, latency?: { received: number, measured: number } }>
  errors: string[]
}

function runBench (args: string[], timeoutMs: number): Promise<{ code: number | null, out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'run.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGTERM') }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }) })
  })
}

test('make bench: a quick run prints the table and writes every figure to its JSON and its plot', { timeout: 420_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kahets-bench-test-'))
  try {
    // file/100B/8c/ack-durable brings file/100B/8c, its fire-and-forget comparison, along.
    const { code, out } = await runBench(['--quick', '--only', '^((file|sink|kafka/acks1/none)/100B/1c|file/100B/8c/ack-durable|(pp|pp-tuned|rdkafka)/acks1/none/100B)$', '--results-dir', dir], 400_000)
    assert.equal(code, 0, `bench exited ${code}:\n${out.slice(-4000)}`)
    for (const row of ['kahets socket → file', 'ceiling: raw socket sink', 'kahets socket → Kafka acks=1 none']) {
      assert.match(out, new RegExp(`^${row} +│ 100 B +│ 1 +│ +[0-9.]+[kM]? \\[`, 'm'), `table row "${row}"`)
    }
    for (const row of ['ceiling: ProducerPerformance acks=1 none', 'ceiling: ProducerPerformance tuned acks=1 none', 'ceiling: librdkafka \\(kcat\\) acks=1 none']) {
      assert.match(out, new RegExp(`^${row} +│ 100 B +│ — +│ +[0-9.]+[kM]? \\[`, 'm'), `table row "${row}"`)
    }
    const files = (await readdir(dir)).filter((f) => f.endsWith('-quick.json'))
    assert.equal(files.length, 1, `one JSON file in ${dir}: ${files.join(', ')}`)
    const json = JSON.parse(await readFile(path.join(dir, files[0]!), 'utf8')) as { partial: boolean, scenarios: Scenario[], targets: Array<{ target: string, met: boolean | null }> }
    assert.equal(json.partial, true)
    const byId = new Map(json.scenarios.map((s) => [s.id, s]))
    assert.deepEqual([...byId.keys()].sort(), ['file/100B/1c', 'file/100B/8c', 'file/100B/8c/ack-durable', 'kafka/acks1/none/100B/1c', 'pp-tuned/acks1/none/100B', 'pp/acks1/none/100B', 'rdkafka/acks1/none/100B', 'sink/100B/1c'])
    for (const s of json.scenarios) {
      assert.deepEqual(s.errors, [], `${s.id} ran without errors`)
      assert.ok(s.runs.length === 1 && s.runs[0]!.messages > 0, `${s.id} sent messages`)
      assert.ok((s.summary?.msgsPerSec?.median ?? 0) > 0, `${s.id} msgs/s`)
      assert.ok((s.summary?.cpuPer1M?.median ?? 0) > 0, `${s.id} CPU per 1M`)
      assert.ok((s.summary?.peakRssMB?.median ?? 0) > 0, `${s.id} peak RSS`)
    }
    assert.ok(byId.get('file/100B/1c')!.ratios.some((r) => r.against === 'sink' && r.ratio > 0), 'file throughput as a share of the sink ceiling')
    // Issue 12: kahets → Kafka as a share of the fastest of the three producers of the same run.
    const ceilings = ['pp', 'pp-tuned', 'rdkafka'].map((k) => byId.get(`${k}/acks1/none/100B`)!.summary!.msgsPerSec!.median)
    const best = byId.get('kafka/acks1/none/100B/1c')!.ratios.find((r) => r.against.startsWith('best ('))
    assert.ok(best !== undefined, 'ratio to the best ceiling')
    assert.equal(best.ceilingId.split('/')[0], ['pp', 'pp-tuned', 'rdkafka'][ceilings.indexOf(Math.max(...ceilings))], 'the best is the fastest ceiling')
    assert.match(out, /^kahets socket → Kafka acks=1 none +│ 100 B +│ 1 .*│ \d+% of best \((PP|PP tuned|librdkafka)\)/m, 'the table shows the ratio to the best')
    // The latency run read every message back from Kafka (plus the one that primed the topic).
    const half = byId.get('kafka/acks1/none/100B/1c')!.halfRateRuns
    assert.equal(half.length, 1)
    assert.equal(half[0]!.latency!.received, half[0]!.messages)
    assert.ok(half[0]!.latency!.measured > 0)
    assert.ok((byId.get('kafka/acks1/none/100B/1c')!.summary?.p99?.median ?? 0) > 0, 'p99 latency measured')

    // Acknowledged mode: every frame settled and none refused or lost, msg/s as a share of the
    // same run's fire-and-forget row, write → ACK latency of every message of the half-rate run
    // (less the warm-up), and both targets judged.
    const ack = byId.get('file/100B/8c/ack-durable')!
    assert.equal(ack.ack, 'durable')
    assert.equal(ack.compareTo, 'file/100B/8c')
    assert.ok(ack.runs.every((r) => r.notDelivered === undefined && r.refused === undefined), 'nothing lost or refused')
    assert.ok(ack.ratios.some((r) => r.against === 'fire-and-forget' && r.ratio > 0), 'ratio to fire-and-forget')
    assert.match(out, /^kahets socket → file, ack=durable +│ 100 B +│ 8 +│ +[0-9.]+[kM]? \[.*│ +[0-9.]+\/[0-9.]+ │ \d+% of fire-and-forget$/m, 'table row with p50/p99 and the ratio')
    assert.equal(ack.halfRateRuns.length, 1)
    assert.equal(ack.halfRateRuns[0]!.latency!.received, ack.halfRateRuns[0]!.messages, 'every message of the half-rate run settled')
    assert.ok(ack.halfRateRuns[0]!.latency!.measured > 0)
    assert.ok((ack.summary?.p99?.median ?? 0) > 0, 'p99 write → ACK measured')
    assert.equal(ack.ackLatencyTargetMs, 100, 'batchTimeout 50 + 50 ms (a file stream has no linger)')
    const ackTargets = json.targets.filter((t) => t.target.includes('ack=durable'))
    assert.equal(ackTargets.length, 2, 'ratio and latency targets')
    assert.ok(ackTargets.every((t) => t.met !== null), 'both judged')
    assert.match(out, /^ {2}(MET {3}|MISSED) {2}socket → file, 100 B, 8 clients, ack=durable: p99 write → ACK ≤ batchTimeout 50 \+ 50 = 100 ms/m)

    // The plot beside the JSON: a row (a bar with its figure in a tooltip) per scenario.
    const svg = await readFile(path.join(dir, files[0]!.replace(/\.json$/, '.svg')), 'utf8')
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
    assert.match(svg, /<\/svg>\n$/)
    for (const s of json.scenarios) assert.ok(svg.includes(`<title>${s.id}: ${Math.round(s.summary!.msgsPerSec!.median)} msg/s`), `${s.id} in the plot`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
