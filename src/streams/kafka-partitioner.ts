// librdkafka's default partitioner (consistent_random), which kahego used: the same key lands
// in the same partition before and after swapping kahego for kahets, so per-key order holds
// across the swap. kafkajs's and platformatic's defaults hash with murmur2 (Java's), which
// would not.
const CRC_TABLE = new Int32Array(256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  CRC_TABLE[n] = c
}
export function crc32 (buf: Uint8Array): number {
  let c = -1
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

/**
 * The frames of one topic by partition, as librdkafka's consistent_random partitioner places
 * them: a key goes to crc32(key) mod partitions (where kahego put it); frames without a key go
 * to one random partition that has a leader, per request, so they still travel as one batch.
 */
export function placeByPartition<T> (items: readonly T[], keyOf: (item: T) => Buffer | null, partitions: number, led: readonly number[]): Map<number, readonly T[]> {
  if (partitions === 1) return new Map([[0, items]])
  const random = led.length > 0 ? led[Math.floor(Math.random() * led.length)]! : Math.floor(Math.random() * partitions)
  const groups = new Map<number, T[]>()
  for (const item of items) {
    const key = keyOf(item)
    const p = key === null ? random : crc32(key) % partitions
    const g = groups.get(p)
    if (g === undefined) groups.set(p, [item])
    else g.push(item)
  }
  return groups
}
