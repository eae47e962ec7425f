// A seeded random number generator for tests that try many generated inputs: the same inputs
// on every run, so a failure can be replayed.

/** mulberry32: numbers in [0, 1) from a 32-bit seed. */
export function seededRandom (seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
