// One catalogue of error codes. Decisions (close a connection, fail over to the backup,
// retry) read `code` and `retriable`; nothing in kahets parses an error message.

export const ErrorCodes = {
  FRAME_TOO_LARGE: 'KAHETS_FRAME_TOO_LARGE',
  CONFIG_INVALID: 'KAHETS_CONFIG_INVALID',
  SOCKET_IN_USE: 'KAHETS_SOCKET_IN_USE',
  PATH_ESCAPE: 'KAHETS_PATH_ESCAPE',
  STREAM_WRITE_FAILED: 'KAHETS_STREAM_WRITE_FAILED',
  STREAM_UNAVAILABLE: 'KAHETS_STREAM_UNAVAILABLE',
  MESSAGE_TOO_LARGE: 'KAHETS_MESSAGE_TOO_LARGE',
  TOPIC_REJECTED: 'KAHETS_TOPIC_REJECTED',
  ACTOR_STOPPED: 'KAHETS_ACTOR_STOPPED',
  /** One destination (a topic, a file name or subfolder) refused; the stream itself is fine. */
  DESTINATION_REJECTED: 'KAHETS_DESTINATION_REJECTED',
  /** Out of file descriptors (EMFILE/ENFILE): pressure to close files, not a stream failure. */
  FILES_EXHAUSTED: 'KAHETS_FILES_EXHAUSTED',
  /** A spool (backup) file record failed its checksum or framing. */
  SPOOL_CORRUPT: 'KAHETS_SPOOL_CORRUPT',
  /** A control frame (bucketLen 0, docs/protocol.md) that cannot be read: skipped, the connection stays. */
  CONTROL_FRAME_INVALID: 'KAHETS_CONTROL_FRAME_INVALID',
  /** Kafka refused the stream's SASL credentials or mechanism (docs/kafka-security.md). */
  KAFKA_AUTHENTICATION_FAILED: 'KAHETS_KAFKA_AUTHENTICATION_FAILED',
  /** Kafka denies the stream's principal a cluster-level operation. */
  KAFKA_AUTHORIZATION_FAILED: 'KAHETS_KAFKA_AUTHORIZATION_FAILED',
  /** The TLS handshake with Kafka failed: an untrusted or misnamed certificate, or ours refused. */
  KAFKA_TLS_FAILED: 'KAHETS_KAFKA_TLS_FAILED',
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/**
 * What a failure is about. `stream`: the stream as a whole cannot take writes (broker
 * unreachable, timeouts, disk full or EIO in the stream's folder): every bucket on it is
 * affected. `destination`: one bucket's destination (a topic Kafka refuses, a file name or
 * subfolder the filesystem refuses): only that bucket's messages are; the others never notice.
 */
export type FaultScope = 'stream' | 'destination'

export interface KahetsErrorOptions {
  cause?: unknown
  retriable?: boolean
  /** Default `stream`. */
  scope?: FaultScope
}

export class KahetsError extends Error {
  readonly code: ErrorCode
  readonly retriable: boolean
  readonly scope: FaultScope

  constructor (code: ErrorCode, message: string, options: KahetsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'KahetsError'
    this.code = code
    this.retriable = options.retriable ?? false
    this.scope = options.scope ?? 'stream'
  }
}

/** The scope of any error: a KahetsError says; anything else is taken as the whole stream's. */
export function faultScope (err: unknown): FaultScope {
  return err instanceof KahetsError ? err.scope : 'stream'
}

/** The byte stream of a connection can no longer be trusted (docs/protocol.md#what-happens-to-bad-input): the connection is closed. */
export class ProtocolError extends KahetsError {
  constructor (code: ErrorCode, message: string) {
    super(code, message)
    this.name = 'ProtocolError'
  }
}

/** One entry per problem, each naming where in the configuration it was found. */
export interface ConfigProblem {
  path: string
  message: string
}

export class ConfigError extends KahetsError {
  readonly problems: readonly ConfigProblem[]

  constructor (problems: ConfigProblem[]) {
    super(ErrorCodes.CONFIG_INVALID, problems.map((p) => `${p.path}: ${p.message}`).join('\n'))
    this.name = 'ConfigError'
    this.problems = Object.freeze(problems.slice())
  }
}

/**
 * A stream write failed as a whole stream (scope `stream`): thrown by the stream actor to its
 * supervisor, which applies the directive (failover, restart) that decideFault chose
 * (src/actors/fault-policy.ts). What the write did not deliver stays with the actor.
 */
export class StreamFailure extends KahetsError {
  constructor (cause: unknown) {
    const known = cause instanceof KahetsError ? cause : null
    super(known?.code ?? ErrorCodes.STREAM_WRITE_FAILED, `stream write failed: ${(cause as Error)?.message ?? String(cause)}`,
      { cause, retriable: known?.retriable ?? true, scope: 'stream' })
    this.name = 'StreamFailure'
  }
}

/**
 * A Kafka refusal in kafkajs's shape (`type`: the protocol error name), for what a client
 * reports without its protocol code, or what kahets knows the broker would answer.
 * classifyKafkaError (src/streams/kafka-errors.ts) reads `type`.
 */
export class TopicRefusal extends Error {
  readonly type: string
  constructor (type: string, message: string, cause?: unknown) {
    super(message, { cause })
    this.name = 'TopicRefusal'
    this.type = type
  }
}
