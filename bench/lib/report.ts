// Summaries (median with min and max over runs, latency percentiles) and the printed table.

export interface Spread {
  median: number
  min: number
  max: number
  n: number
}

export function spread (values: readonly number[]): Spread | null {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const mid = v.length >> 1
  const median = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length }
}

/** Nearest-rank percentile of an ascending array. */
export function percentile (sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

// ------------------------------------------------------------------ number formatting

/** 1234567 → "1.23M", 45678 → "45.7k": three significant digits are all that runs this noisy carry. */
export function count (x: number): string {
  if (!Number.isFinite(x)) return '—'
  const abs = Math.abs(x)
  if (abs >= 1e6) return `${(x / 1e6).toPrecision(3)}M`
  if (abs >= 1e3) return `${(x / 1e3).toPrecision(3)}k`
  return x.toPrecision(3)
}

export function fixed (x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits)
}

export function percent (x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : `${Math.round(x * 100)}%`
}

/** Columns padded to their widest cell; numbers right-aligned, text left-aligned. */
export function table (header: readonly string[], rows: ReadonlyArray<readonly string[]>, rightAligned: ReadonlySet<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' │ ').trimEnd()
  const rule = widths.map((w) => '─'.repeat(w)).join('─┼─')
  return [line(header), rule, ...rows.map((r) => (r.length === 0 ? rule : line(r)))].join('\n')
}
