// sliceBy: "key" (docs/configuration.md#slices-by-key): whether a key is in a stream's slice. The decision is
// the key's IEEE CRC-32 (zlib's crc32, the hash kahets already uses to pick Kafka partitions)
// as a fraction of 2^32, compared with the slice: the same key gives the same answer on every
// host and after every restart, and a larger slice keeps every key a smaller one kept.
// Reproduce it elsewhere with `zlib.crc32(key) / 2 ** 32 < slice`.
import { crc32 } from '../streams/kafka-partitioner.ts'

const TWO_TO_32 = 2 ** 32

export function keyInSlice (key: Uint8Array, slice: number): boolean {
  return crc32(key) / TWO_TO_32 < slice
}
