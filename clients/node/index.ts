// Public entry point of the Node client (docs/clients.md, docs/protocol.md).
import { KahetsClient, type KahetsClientOptions } from './client.ts'
import { AckClient, type AckClientOptions } from './ack-client.ts'

export { KahetsClient } from './client.ts'
export type { KahetsClientOptions } from './client.ts'
export { AckClient } from './ack-client.ts'
export type { AckClientOptions, Settlement } from './ack-client.ts'

/**
 * Connects to kahets' socket. Without `ack` (or with `ack: null`): a fire-and-forget
 * KahetsClient, byte-identical to kahego's clients. With `ack: 'accepted' | 'durable'`: an
 * AckClient, which needs a kahets with acknowledged mode (docs/protocol.md).
 */
export function connect (socketPath: string, opts: AckClientOptions): Promise<AckClient>
export function connect (socketPath: string, opts?: KahetsClientOptions & { ack?: null }): Promise<KahetsClient>
export function connect (socketPath: string, opts: (KahetsClientOptions & { ack?: null }) | AckClientOptions = {}): Promise<KahetsClient | AckClient> {
  if (opts.ack == null) {
    const { maxFrameBytes, highWaterMark } = opts as KahetsClientOptions
    return KahetsClient.connect(socketPath, { maxFrameBytes, highWaterMark })
  }
  return AckClient.connect(socketPath, opts as AckClientOptions)
}
