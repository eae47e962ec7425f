// Builds the stream a configuration describes. The Kafka clients are loaded only when a
// configuration names them: importing @platformatic/kafka costs about 45 MB of RSS and kafkajs
// about 13 MB, which a process that uses one client (or only files) should not carry.
import type { BucketsConfig, KafkaSettings, StreamConfig } from '../config/buckets.ts'
import type { Logger } from '../log.ts'
import { FileStream } from './file-stream.ts'
import { BatchingKafkaStream } from './kafka-batching.ts'
import type { KafkaClientFactory } from './kafka-client.ts'
import type { Stream } from './stream.ts'

/** `role`: a backup's files are only read back by kahets, so they are written as a checksummed spool. */
export type StreamFactory = (config: StreamConfig, log: Logger, role?: 'primary' | 'backup') => Stream

type KafkaClientName = KafkaSettings['client']

const kafkaClients = new Map<KafkaClientName, KafkaClientFactory>()

async function loadKafkaClient (client: KafkaClientName): Promise<void> {
  if (kafkaClients.has(client)) return
  const factory = client === 'platformatic'
    ? (await import('./platformatic-client.ts')).createPlatformaticClient
    : (await import('./kafkajs-client.ts')).createKafkajsClient
  kafkaClients.set(client, factory)
}

function* withBackups (config: StreamConfig | null): Generator<StreamConfig> {
  for (let c = config; c !== null; c = c.backup) yield c
}

/** Loads the code of every stream kind `config` names (backups included); createStream needs it. */
export async function loadStreamModules (config: BucketsConfig): Promise<void> {
  for (const top of config.streams.values()) {
    for (const c of withBackups(top)) {
      if (c.type === 'kafka') await loadKafkaClient(c.settings.client)
    }
  }
}

export const createStream: StreamFactory = (config, log, role = 'primary') => {
  switch (config.type) {
    case 'file':
      return new FileStream(config.settings, { id: config.id, log, format: role === 'backup' ? 'spool' : 'frames' })
    case 'kafka': {
      const newClient = kafkaClients.get(config.settings.client)
      if (newClient === undefined) throw new Error(`Kafka client ${config.settings.client} not loaded: call loadStreamModules() first`)
      return new BatchingKafkaStream(config.id, config.settings, log, newClient)
    }
    default: {
      const never: never = config
      throw new Error(`unknown stream type ${JSON.stringify(never)}`)
    }
  }
}
