// Sizes as kahego writes them (docs/configuration.md#sizes): "250MB", "10 KB", "1GB", bare bytes. 1024-based.
const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([KMG]?B)?\s*$/i

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
