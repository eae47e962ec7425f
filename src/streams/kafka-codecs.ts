// Compression codecs for kafkajs, which ships only gzip (zstd itself is in zstd.ts). Every
// codec here is pure JavaScript, WebAssembly, or a prebuilt binary shipped inside its npm
// package: nothing is compiled at install time and nothing is downloaded at run time, so
// `compression.codec` works on any machine npm can install on.
//
// kafkajs keeps codecs in one module-wide table; registering is idempotent and affects every
// kafkajs client in the process (including a test's consumer, which needs them to decompress).
import { createRequire } from 'node:module'
import { CompressionTypes } from 'kafkajs'
import { initZstd, zstdCompress, zstdDecompress } from './zstd.ts'

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
// LZ4 frames from lz4-napi (lz4_flex behind N-API, prebuilt for the platform and shipped in
// its npm package: nothing is compiled at install). Its frames use independent blocks, as
// Kafka's Lz4BlockInputStream requires. lz4js was tried first: its frames decode with the
// lz4 CLI but Kafka's decoder rejects multi-block frames from it (batches above ~64 KiB).
const lz4 = require('lz4-napi') as {
  compressFrame (data: Buffer): Promise<Buffer>
  decompressFrame (data: Buffer): Promise<Buffer>
}

const lz4Codec = (): Codec => ({
  async compress (encoder) { return await lz4.compressFrame(encoder.buffer) },
  async decompress (buffer) { return await lz4.decompressFrame(buffer) },
})

const zstdCodec = (): Codec => ({
  async compress (encoder) {
    await initZstd()
    return zstdCompress(encoder.buffer)
  },
  async decompress (buffer) {
    await initZstd()
    return zstdDecompress(buffer)
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

