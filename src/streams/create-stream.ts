// Builds the stream a configuration describes.
import type { StreamConfig } from '../config/buckets.ts'
import type { Logger } from '../log.ts'
import { FileStream } from './file-stream.ts'
import { KafkaStream } from './kafka-stream.ts'
import { PlatformaticKafkaStream } from './platformatic-kafka-stream.ts'
import type { Stream } from './stream.ts'

export type StreamFactory = (config: StreamConfig, log: Logger) => Stream

export const createStream: StreamFactory = (config, log) => {
  switch (config.type) {
    case 'file':
      return new FileStream(config.settings)
    case 'kafka':
      return config.settings.client === 'platformatic'
        ? new PlatformaticKafkaStream(config.id, config.settings, log)
        : new KafkaStream(config.id, config.settings, log)
    default: {
      const never: never = config
      throw new Error(`unknown stream type ${JSON.stringify(never)}`)
    }
  }
}
