// Compression codecs for kafkajs, which ships only gzip. Every codec here is pure JavaScript or
// WebAssembly shipped inside its npm package: nothing is compiled at install time and nothing
// is downloaded at run time, so `compression.codec` works on any machine npm can install on.
//
// kafkajs keeps codecs in one module-wide table; registering is idempotent and affects every
// kafkajs client in the process (including a test's consumer, which needs them to decompress).
import { createRequire } from 'node:module'
import { CompressionTypes } from 'kafkajs'
import * as zstd from '@bokuweb/zstd-wasm'

/** What kafkajs calls: `compress` receives its Encoder (the bytes are in `.buffer`). */
interface Codec {
  compress (encoder: { buffer: Buffer }): Promise<Buffer>
  decompress (buffer: Buffer): Promise<Buffer>
}

const require = createRequire(import.meta.url)
// Node's ESM view of kafkajs (a CommonJS module) does not list this export.
const { CompressionCodecs } = require('kafkajs') as typeof import('kafkajs')
// These packages publish no type declarations; their small surfaces are typed here.
const snappyCodec = require('kafkajs-snappy') as () => Codec
const lz4 = require('lz4js') as {
  compressBound (n: number): number
  compressBlock (src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, hashTable: Uint32Array): number
  decompress (src: Uint8Array): Uint8Array
}
const xxh32 = require('lz4js/xxh32.js') as { hash (seed: number, src: Uint8Array, index: number, len: number): number }

function toBuffer (u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength)
}

// LZ4 frame format (lz4_Frame_format.md), as Kafka's KafkaLZ4BlockInputStream reads it.
// lz4js's own compressFrame leaves the block-independence flag unset and lets matches reach
// into earlier blocks, which the frame spec forbids once that flag is set; Kafka's reader
// requires independent blocks, so the frame is assembled here, one fresh hash table per block.
const LZ4_MAGIC = 0x184d2204
const LZ4_FLG = 0x40 | 0x20 // version 01, block independence; no checksums, no content size
const LZ4_BD = 4 << 4 // 64 KiB blocks, the size Kafka's own producer writes
const LZ4_BLOCK = 64 * 1024
const LZ4_UNCOMPRESSED = 0x80000000

function lz4CompressFrame (src: Buffer): Buffer {
  const blocks = Math.max(1, Math.ceil(src.length / LZ4_BLOCK))
  const out = Buffer.allocUnsafe(7 + blocks * (4 + lz4.compressBound(LZ4_BLOCK)) + 4)
  let o = out.writeUInt32LE(LZ4_MAGIC, 0)
  out[o++] = LZ4_FLG
  out[o++] = LZ4_BD
  out[o] = (xxh32.hash(0, out, 4, 2) >>> 8) & 0xff
  o++
  const table = new Uint32Array(1 << 16)
  const block = new Uint8Array(lz4.compressBound(LZ4_BLOCK))
  for (let s = 0; s < src.length; s += LZ4_BLOCK) {
    const len = Math.min(LZ4_BLOCK, src.length - s)
    table.fill(0)
    const n = lz4.compressBlock(src, block, s, len, table)
    if (n === 0 || n >= len) {
      o = out.writeUInt32LE((LZ4_UNCOMPRESSED | len) >>> 0, o)
      o += src.copy(out, o, s, s + len)
    } else {
      o = out.writeUInt32LE(n, o)
      out.set(block.subarray(0, n), o)
      o += n
    }
  }
  o = out.writeUInt32LE(0, o) // end mark
  return out.subarray(0, o)
}

const lz4Codec = (): Codec => ({
  async compress (encoder) { return lz4CompressFrame(encoder.buffer) },
  async decompress (buffer) { return toBuffer(lz4.decompress(buffer)) },
})

let zstdReady: Promise<void> | null = null
const zstdCodec = (): Codec => ({
  async compress (encoder) {
    await (zstdReady ??= zstd.init())
    return toBuffer(zstd.compress(encoder.buffer, 3))
  },
  async decompress (buffer) {
    await (zstdReady ??= zstd.init())
    return toBuffer(zstd.decompress(buffer))
  },
})

let registered = false

/** Makes snappy, lz4 and zstd available to every kafkajs client in this process. */
export function registerCodecs (): void {
  if (registered) return
  registered = true
  CompressionCodecs[CompressionTypes.Snappy] = snappyCodec
  CompressionCodecs[CompressionTypes.LZ4] = lz4Codec
  CompressionCodecs[CompressionTypes.ZSTD] = zstdCodec
}

/** Exposed for unit tests of the frame layout. */
export const lz4Frame = { compress: lz4CompressFrame, decompress: (b: Buffer): Buffer => toBuffer(lz4.decompress(b)) }
