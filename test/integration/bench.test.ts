// `make bench` itself, as a smoke test: one short run of the file, sink and Kafka scenarios at
// 100 B / 1 client (--quick), through the same bench/run.ts, so the benchmark the README shows
// keeps working. It asserts what a reader of the bench checks — rows in the table, figures in
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
  ratios: Array<{ against: string, ratio: number }>
  runs: Array<{ messages: number }>
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

test('make bench: a quick run prints the table and writes every figure to its JSON', { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kahets-bench-test-'))
  try {
    const { code, out } = await runBench(['--quick', '--only', '^(file|sink|kafka/acks1/none)/100B/1c$', '--results-dir', dir], 280_000)
    assert.equal(code, 0, `bench exited ${code}:\n${out.slice(-4000)}`)
    for (const row of ['kahets socket → file', 'ceiling: raw socket sink', 'kahets socket → Kafka acks=1 none']) {
      assert.match(out, new RegExp(`^${row} +│ 100 B +│ 1 +│ +[0-9.]+[kM]? \\[`, 'm'), `table row "${row}"`)
    }
    const files = (await readdir(dir)).filter((f) => f.endsWith('-quick.json'))
    assert.equal(files.length, 1, `one JSON file in ${dir}: ${files.join(', ')}`)
    const json = JSON.parse(await readFile(path.join(dir, files[0]!), 'utf8')) as { partial: boolean, scenarios: Scenario[] }
    assert.equal(json.partial, true)
    const byId = new Map(json.scenarios.map((s) => [s.id, s]))
    assert.deepEqual([...byId.keys()].sort(), ['file/100B/1c', 'kafka/acks1/none/100B/1c', 'sink/100B/1c'])
    for (const s of json.scenarios) {
      assert.deepEqual(s.errors, [], `${s.id} ran without errors`)
      assert.ok(s.runs.length === 1 && s.runs[0]!.messages > 0, `${s.id} sent messages`)
      assert.ok((s.summary?.msgsPerSec?.median ?? 0) > 0, `${s.id} msgs/s`)
      assert.ok((s.summary?.cpuPer1M?.median ?? 0) > 0, `${s.id} CPU per 1M`)
      assert.ok((s.summary?.peakRssMB?.median ?? 0) > 0, `${s.id} peak RSS`)
    }
    assert.ok(byId.get('file/100B/1c')!.ratios.some((r) => r.against === 'sink' && r.ratio > 0), 'file throughput as a share of the sink ceiling')
    // The latency run read every message back from Kafka (plus the one that primed the topic).
    const half = byId.get('kafka/acks1/none/100B/1c')!.halfRateRuns
    assert.equal(half.length, 1)
    assert.equal(half[0]!.latency!.received, half[0]!.messages)
    assert.ok(half[0]!.latency!.measured > 0)
    assert.ok((byId.get('kafka/acks1/none/100B/1c')!.summary?.p99?.median ?? 0) > 0, 'p99 latency measured')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
