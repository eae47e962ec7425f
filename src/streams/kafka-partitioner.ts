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
