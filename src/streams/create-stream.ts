// Builds the stream a configuration describes.
import type { StreamConfig } from '../config/buckets.ts'
import type { Logger } from '../log.ts'
import { FileStream } from './file-stream.ts'
import type { Stream } from './stream.ts'

export type StreamFactory = (config: StreamConfig, log: Logger) => Stream

export const createStream: StreamFactory = (config) => {
  switch (config.type) {
    case 'file':
      return new FileStream(config.settings)
    case 'kafka':
      throw new Error('kafka streams are not available in this build yet')
    default: {
      const never: never = config
      throw new Error(`unknown stream type ${JSON.stringify(never)}`)
    }
  }
}
