// Sizes as kahego writes them (docs/configuration.md#sizes): "250MB", "10 KB", "1GB", bare bytes, and the IEC
// spellings "64KiB", "1 GiB". All 1024-based: KB means 1024 bytes, as it always has in
// kahego's and kahets's configuration, so KB and KiB are the same size
// (docs/configuration.md#sizes).
const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3 }
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$/i

/** The units a size may be written in, for messages. */
export const SIZE_UNITS = 'B, KB, MB, GB, KiB, MiB, GiB; all 1024-based'

/** Bytes, or null when `value` is not a size. */
export function parseSize (value: string | number): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null
  const m = SIZE.exec(value)
  if (m === null) return null
  const bytes = Math.floor(Number(m[1]) * UNITS[(m[2] ?? 'B').toUpperCase()]!)
  return Number.isSafeInteger(bytes) ? bytes : null
}

/** A whole number ≥ min given as a number or a numeric string (kahego writes "10"), else null. */
export function parseInteger (value: string | number, min = 0): number | null {
  const n = typeof value === 'number' ? value : /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN
  return Number.isSafeInteger(n) && n >= min ? n : null
}
