// The bench's plot (docs/benchmarks.md): one SVG with a row per scenario, msgs/s on the left
// (median bar, min–max whisker, log scale: the rows span 20k to 30M msg/s) and p99 latency on
// the right (linear, only rows that measured one). Written by hand, as text: a plotting
// library would be a dependency for two bar charts, and the output must be stable enough to
// review in a diff. Input is the `scenarios` of a results JSON, so `bench/plot.ts` can redraw
// any earlier run.

export interface PlotSpread {
  median: number
  min: number
  max: number
}

/** The fields of one results-JSON scenario the plot reads. */
export interface PlotScenario {
  id: string
  kind: string
  label: string
  size: number
  clients: number | null
  summary?: { msgsPerSec: PlotSpread | null, p99: PlotSpread | null } | null
}

const ROW = 18
const TOP = 58
const LABEL_W = 390
const BAR_W = 380
const GAP = 40
const LAT_W = 220
const WIDTH = LABEL_W + BAR_W + GAP + LAT_W + 20
const GROUP_GAP = 8
const KAHETS = '#2f6db5'
const CEILING = '#9a9a9a'

export function escapeXml (s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!)
}

const sizeLabel = (s: number): string => (s >= 1024 ? `${s / 1024} KiB` : `${s} B`)

/** 1234567 → "1.2M": axis and bar labels. */
function short (x: number): string {
  if (x >= 1e6) return `${+(x / 1e6).toPrecision(2)}M`
  if (x >= 1e3) return `${+(x / 1e3).toPrecision(2)}k`
  return `${+x.toPrecision(2)}`
}

/**
 * Rows that belong together (a kahets scenario and its ceilings) share a key: the id less its
 * client count and acknowledged level, with the ceilings' kinds folded into the row they bound.
 */
export function groupKey (id: string): string {
  const parts = id.split('/')
  const family: Record<string, string> = { sink: 'file', pp: 'kafka', 'pp-tuned': 'kafka', kafkajs: 'kafka', rdkafka: 'kafka' }
  const head = family[parts[0]!] ?? parts[0]!
  if (head === 'php') return 'php'
  // schema/on/100B/8c and schema/none/100B/8c are compared with each other.
  if (head === 'schema') return `schema/${parts[2]}`
  return [head, ...parts.slice(1).filter((p) => !/^\d+c$/.test(p) && !p.startsWith('ack-'))].join('/')
}

const isCeiling = (kind: string): boolean => kind === 'sink' || kind === 'pp' || kind === 'kafkajs' || kind === 'rdkafka'

/** The SVG text of a plot of `scenarios` (those without a msgs/s median are left out). */
export function plotSvg (scenarios: readonly PlotScenario[], title: string): string {
  const rows = scenarios.filter((s) => s.summary?.msgsPerSec != null && s.summary.msgsPerSec.median > 0)
  const rates = rows.flatMap((s) => [s.summary!.msgsPerSec!.min, s.summary!.msgsPerSec!.max]).filter((x) => x > 0)
  const lo = rates.length === 0 ? 1 : 10 ** Math.floor(Math.log10(Math.min(...rates)))
  const hi = rates.length === 0 ? 10 : 10 ** Math.ceil(Math.log10(Math.max(...rates)))
  const x = (v: number): number => LABEL_W + (BAR_W * (Math.log10(Math.max(v, lo)) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo))
  const p99s = rows.filter((s) => !isCeiling(s.kind)).map((s) => s.summary!.p99?.median).filter((v): v is number => typeof v === 'number' && v > 0)
  const latMax = p99s.length === 0 ? 1 : niceCeil(Math.max(...p99s))
  const latX0 = LABEL_W + BAR_W + GAP
  const lx = (v: number): number => latX0 + (LAT_W * Math.min(v, latMax)) / latMax

  const body: string[] = []
  let y = TOP
  let key: string | null = null
  for (const s of rows) {
    const k = groupKey(s.id)
    if (key !== null && k !== key) y += GROUP_GAP
    key = k
    const m = s.summary!.msgsPerSec!
    const colour = isCeiling(s.kind) ? CEILING : KAHETS
    const label = `${s.label}, ${sizeLabel(s.size)}${s.clients === null ? '' : `, ${s.clients}c`}`
    const mid = y + ROW / 2
    body.push(`<g><title>${escapeXml(`${s.id}: ${Math.round(m.median)} msg/s (${Math.round(m.min)}–${Math.round(m.max)})`)}</title>`,
      `<text x="${LABEL_W - 6}" y="${mid + 4}" text-anchor="end">${escapeXml(label)}</text>`,
      `<rect x="${LABEL_W}" y="${y + 3}" width="${r(x(m.median) - LABEL_W)}" height="${ROW - 6}" fill="${colour}"/>`,
      `<line x1="${r(x(m.min))}" y1="${mid}" x2="${r(x(m.max))}" y2="${mid}" stroke="#222"/>`,
      `<text x="${r(x(m.max) + 4)}" y="${mid + 4}">${short(m.median)}</text></g>`)
    // A ceiling's latency (ProducerPerformance's own, at full speed) is not a half-rate figure.
    const p99 = isCeiling(s.kind) ? null : s.summary!.p99
    if (p99 != null && p99.median > 0) {
      body.push(`<g><title>${escapeXml(`${s.id}: p99 ${p99.median.toFixed(1)} ms (${p99.min.toFixed(1)}–${p99.max.toFixed(1)})`)}</title>`,
        `<rect x="${latX0}" y="${y + 3}" width="${r(lx(p99.median) - latX0)}" height="${ROW - 6}" fill="${colour}"/>`,
        `<line x1="${r(lx(p99.min))}" y1="${mid}" x2="${r(lx(p99.max))}" y2="${mid}" stroke="#222"/>`,
        `<text x="${r(lx(p99.max) + 4)}" y="${mid + 4}">${p99.median.toFixed(0)}</text></g>`)
    }
    y += ROW
  }
  const bottom = y + 6
  const axes: string[] = []
  for (let v = lo; v <= hi * 1.0001; v *= 10) {
    axes.push(`<line x1="${r(x(v))}" y1="${TOP - 4}" x2="${r(x(v))}" y2="${bottom}" stroke="#ddd"/>`,
      `<text x="${r(x(v))}" y="${TOP - 8}" text-anchor="middle">${short(v)}</text>`)
  }
  for (let i = 0; i <= 4; i++) {
    const v = (latMax * i) / 4
    axes.push(`<line x1="${r(lx(v))}" y1="${TOP - 4}" x2="${r(lx(v))}" y2="${bottom}" stroke="#ddd"/>`,
      `<text x="${r(lx(v))}" y="${TOP - 8}" text-anchor="middle">${short(v)}</text>`)
  }
  const height = bottom + 28
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="18" font-size="13" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="${LABEL_W}" y="36">msgs/s (median bar, min–max line; log scale)</text>`,
    `<text x="${latX0}" y="36">p99 ms at half rate</text>`,
    ...axes,
    ...body,
    `<rect x="10" y="${bottom + 10}" width="10" height="10" fill="${KAHETS}"/><text x="24" y="${bottom + 19}">kahets</text>`,
    `<rect x="80" y="${bottom + 10}" width="10" height="10" fill="${CEILING}"/><text x="94" y="${bottom + 19}">ceiling (what kahets is compared with)</text>`,
    '</svg>',
    '',
  ].join('\n')
}

/** 1, 2 or 5 times a power of ten, at least `v`: a latency axis that reads well. */
function niceCeil (v: number): number {
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

const r = (v: number): string => v.toFixed(1)

/** The fields of a results JSON the plot and its title read. */
export interface PlotResults {
  startedAt: string
  quick: boolean
  partial: boolean
  host: { cpus: number, node: string }
  code: { atStart: { commit: string } }
  scenarios: PlotScenario[]
}

export function plotTitle (j: PlotResults): string {
  const kind = j.quick ? ' (quick run: a smoke test, not figures)' : j.partial ? ' (partial run)' : ''
  return `kahets make bench, ${j.startedAt.slice(0, 16)}Z, commit ${j.code.atStart.commit}, ${j.host.cpus} CPUs, Node ${j.host.node}${kind}`
}
