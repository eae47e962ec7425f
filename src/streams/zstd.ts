// zstd for both Kafka clients (Node 20's zlib has none), from @bokuweb/zstd-wasm. Its
// WebAssembly module (about 16 MB of memory once instantiated) is loaded on the first
// initZstd(), so a process that never configures zstd never pays for it.
type ZstdModule = typeof import('@bokuweb/zstd-wasm')

let zstd: ZstdModule | null = null
let ready: Promise<void> | null = null

/**
 * Loads zstd's WebAssembly once per process, for both Kafka clients: a second zstd.init()
 * replaces the module under the first, and compress() then returns zeros once memory grows.
 */
export function initZstd (): Promise<void> {
  return (ready ??= import('@bokuweb/zstd-wasm').then(async (mod) => {
    await mod.init()
    zstd = mod
  }))
}

function loaded (): ZstdModule {
  if (zstd === null) throw new Error('zstd used before initZstd() resolved')
  return zstd
}

/** zstd-wasm hands back a Uint8Array; Kafka clients expect a Buffer (same memory, no copy). */
function toBuffer (bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** zstd at level 3 (librdkafka's and Kafka's default), once initZstd() has resolved. */
export function zstdCompress (data: Buffer): Buffer {
  return toBuffer(loaded().compress(data, 3))
}
export function zstdDecompress (data: Buffer): Buffer {
  return toBuffer(loaded().decompress(data))
}
