// The shipped monitoring (docs/operations-health.md): deploy/prometheus-alerts.yml passes
// `promtool check rules` and its unit tests (deploy/prometheus-alerts.test.yml), every
// metric the alerts and deploy/grafana-dashboard.json query is one a real kahets exports,
// and the docs list every kahets metric.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT, startKahetsWithMetrics } from '../helpers/kahets.ts'

const run = promisify(execFile)
const ALERTS = join(ROOT, 'deploy/prometheus-alerts.yml')
const DASHBOARD = join(ROOT, 'deploy/grafana-dashboard.json')

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan'])

/**
 * The metric names a PromQL expression reads: identifiers left once strings, label matchers,
 * ranges, grouping clauses and Grafana variables are taken out, that are neither functions
 * (followed by "(") nor keywords.
 */
export function metricNames (expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ')
  const names = new Set<string>()
  for (const m of e.matchAll(/(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    if (KEYWORDS.has(m[0].toLowerCase())) continue
    if (e.slice(m.index + m[0].length).trimStart().startsWith('(')) continue
    names.add(m[0])
  }
  return [...names]
}

/** Every series name /metrics offers: each TYPE line's name, a histogram's _bucket, _sum and _count. */
function exported (text: string): Set<string> {
  const names = new Set<string>()
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string]
    names.add(name)
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s)
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s)
  }
  return names
}

async function alertExpressions (): Promise<Array<{ alert: string, expr: string }>> {
  const text = await readFile(ALERTS, 'utf8')
  const alerts = [...text.matchAll(/^\s+- alert: (\S+)$/gm)].map((m) => m[1]!)
  const exprs = [...text.matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]!)
  assert.equal(exprs.length, alerts.length, 'one single-line expr per alert')
  return alerts.map((alert, i) => ({ alert, expr: exprs[i]! }))
}

interface Panel { title: string, type: string, targets?: Array<{ expr: string }>, panels?: Panel[] }

async function dashboardExpressions (): Promise<Array<{ panel: string, expr: string }>> {
  const d = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Panel[], templating: { list: Array<{ name: string, definition?: string }> } }
  const out: Array<{ panel: string, expr: string }> = []
  const walk = (panels: Panel[]): void => {
    for (const p of panels) {
      if (p.type !== 'row') assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" queries something`)
      for (const t of p.targets ?? []) out.push({ panel: p.title, expr: t.expr })
      walk(p.panels ?? [])
    }
  }
  walk(d.panels)
  // Template variables: label_values(metric, label) reads metric.
  for (const v of d.templating.list) {
    const m = /^label_values\(([^,]+),/.exec(v.definition ?? '')
    if (m !== null) out.push({ panel: `variable ${v.name}`, expr: m[1]! })
  }
  return out
}

test('metricNames finds the metrics of an expression and nothing else', () => {
  assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le, stream) (rate(kahets_write_settled_seconds_bucket{instance=~"$instance"}[$__rate_interval])))'), ['kahets_write_settled_seconds_bucket'])
  assert.deepEqual(metricNames('sum by (bucket) (increase(kahets_dropped_total{reason!~"a|b"}[5m])) > 0 and on (instance) kahets_reads_paused == 1'), ['kahets_dropped_total', 'kahets_reads_paused'])
  assert.deepEqual(metricNames('a_sum / a_count > 1e9'), ['a_sum', 'a_count'])
})

test('deploy/prometheus-alerts.yml: promtool check rules and its unit tests pass; it covers drops, backed-up rate, paused reads, spool bytes and age, invalid frames', async () => {
  const checked = await run('promtool', ['check', 'rules', ALERTS]).catch((err: { stdout?: string, stderr?: string, message: string }) => {
    assert.fail(`promtool check rules failed (is the Debian package prometheus installed?): ${err.stdout ?? ''}${err.stderr ?? err.message}`)
  })
  assert.match(checked.stdout, /SUCCESS: \d+ rules found/)
  const tested = await run('promtool', ['test', 'rules', 'prometheus-alerts.test.yml'], { cwd: join(ROOT, 'deploy') }).catch((err: { stdout?: string, stderr?: string }) => {
    assert.fail(`promtool test rules failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`)
  })
  assert.match(tested.stdout, /SUCCESS/)
  const read = (await alertExpressions()).map((a) => metricNames(a.expr)).flat()
  for (const name of ['kahets_dropped_total', 'kahets_backed_up_total', 'kahets_reads_paused', 'kahets_spool_bytes', 'kahets_spool_oldest_age_seconds', 'kahets_invalid_frames_total']) {
    assert.ok(read.includes(name), `an alert reads ${name}`)
  }
})

test('every metric the alerts and the dashboard query is one a running kahets exports; the docs list them all', async () => {
  const k = await startKahetsWithMetrics({
    buckets: {
      streamsConfigs: { files: { type: 'file', settings: { path: '{dir}/files' }, backup: { type: 'file', settings: { path: '{dir}/backup' } } } },
      buckets: [{ id: 'a', streams: ['files'] }],
    },
  })
  const res = await fetch(`${k.metrics}/metrics`)
  const names = exported(await res.text())
  assert.ok(names.has('kahets_build_info') && names.has('process_cpu_seconds_total'), 'the scrape was parsed')
  const queries = [
    ...(await alertExpressions()).map((a) => ({ where: `alert ${a.alert}`, expr: a.expr })),
    ...(await dashboardExpressions()).map((d) => ({ where: `dashboard panel "${d.panel}"`, expr: d.expr })),
  ]
  assert.ok(queries.length >= 20, `${queries.length} queries`)
  const unknown: string[] = []
  for (const q of queries) {
    const read = metricNames(q.expr)
    assert.ok(read.length > 0, `${q.where} reads a metric: ${q.expr}`)
    for (const name of read) if (!names.has(name)) unknown.push(`${q.where}: ${name}`)
  }
  assert.deepEqual(unknown, [], 'metrics kahets does not export')
  // The dashboard shows what the issue asks for.
  const dashboard = (await dashboardExpressions()).map((d) => metricNames(d.expr)).flat()
  for (const name of ['kahets_received_total', 'kahets_delivered_total', 'kahets_write_settled_seconds_bucket', 'process_resident_memory_bytes', 'kahets_buffered_bytes', 'kahets_spool_bytes', 'kahets_dropped_total']) {
    assert.ok(dashboard.includes(name), `the dashboard shows ${name}`)
  }
  // And docs/operations-health.md lists every kahets metric.
  const docs = await readFile(join(ROOT, 'docs/operations-health.md'), 'utf8')
  const undocumented = [...names].filter((n) => n.startsWith('kahets_') && !/_(bucket|sum|count)$/.test(n) && !docs.includes(`\`${n}\``))
  assert.deepEqual(undocumented, [], 'kahets metrics missing from docs/operations-health.md')
  assert.equal(await k.stop(), 0)
})
