// What a Kafka error means for kahets (docs/configuration.md#kafka-settings, issues 10 and 12): read from the protocol error
// code the broker answered (kafkajs names it `code`, @platformatic/kafka `apiCode`), from the
// error code Node's TLS layer gives, or from the error class a client raises where it keeps no
// code (kafkajs's SASL failure), never from message text. kafka-batching.ts turns the result
// into a drop, a retry, a refusal of one topic (scope `destination`) or an outage of the whole
// stream (scope `stream`), which names its reason when it is a security one
// (docs/kafka-security.md lists them).
import { ErrorCodes, KahetsError } from '../errors.ts'

/** Kafka protocol error codes kahets acts on (Kafka's protocol guide, "Error Codes"). */
export const KafkaErrorCode = {
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  MESSAGE_TOO_LARGE: 10,
  INVALID_TOPIC_EXCEPTION: 17,
  RECORD_LIST_TOO_LARGE: 18,
  TOPIC_AUTHORIZATION_FAILED: 29,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  UNSUPPORTED_SASL_MECHANISM: 33,
  ILLEGAL_SASL_STATE: 34,
  SASL_AUTHENTICATION_FAILED: 58,
  INVALID_RECORD: 87,
} as const

type KafkaErrorName = keyof typeof KafkaErrorCode
const NAME_OF = new Map<number, KafkaErrorName>(Object.entries(KafkaErrorCode).map(([name, code]) => [code, name as KafkaErrorName]))

/** Broker errors that are about one topic, whichever request carried it. */
const TOPIC_REFUSED = new Set<number>([KafkaErrorCode.INVALID_TOPIC_EXCEPTION, KafkaErrorCode.TOPIC_AUTHORIZATION_FAILED])
/** About the size of what was sent: smaller requests may pass, a lone message will not. */
const TOO_LARGE = new Set<number>([KafkaErrorCode.MESSAGE_TOO_LARGE, KafkaErrorCode.RECORD_LIST_TOO_LARGE])
/** About some records (e.g. a null key on a compacted topic): isolated down to the message. */
const RECORD_REFUSED = new Set<number>([KafkaErrorCode.INVALID_RECORD])
/** A topic that does not exist yet, or has no leader yet: retried for a while, alone. */
const TOPIC_PENDING = new Set<number>([KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION, KafkaErrorCode.LEADER_NOT_AVAILABLE])
/** The broker refused who we are: every request of the stream will fail the same way. */
const AUTHENTICATION = new Set<number>([KafkaErrorCode.SASL_AUTHENTICATION_FAILED, KafkaErrorCode.UNSUPPORTED_SASL_MECHANISM, KafkaErrorCode.ILLEGAL_SASL_STATE])

// Node's TLS error codes (OpenSSL's X509_V_ERR_* names, and Node's own ERR_TLS_*).
const UNTRUSTED = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE', 'CERT_REJECTED', 'INVALID_CA'])
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID'])
const WRONG_HOST = 'ERR_TLS_CERT_ALTNAME_INVALID'

/** Why a stream cannot talk to Kafka at all, when that is about security; the rest is "not answering". */
export interface SecurityFailure {
  readonly kind: 'authentication' | 'authorization' | 'tls'
  /** The code it was read from: a Kafka error name, a Node TLS code, or a client's error class. */
  readonly code: string
  /** What it means and what to check, for the log and /healthz. */
  readonly reason: string
}

/**
 * @platformatic/kafka lists a produce response's record_errors (the broker's detail about which
 * record of a refused batch was wrong) as protocol errors of code -1 (UNKNOWN_SERVER_ERROR)
 * ahead of the partition's own error (INVALID_RECORD): they say nothing of their own.
 */
function recordDetail (e: unknown): boolean {
  const path = (e as { path?: unknown } | null)?.path
  return typeof path === 'string' && path.includes('/record_errors/')
}

export type Failure =
  | { kind: 'topic' | 'size' | 'record' | 'pending', type: string }
  | { kind: 'broker', security: SecurityFailure | null }

interface ErrorShape {
  type?: unknown
  code?: unknown
  apiCode?: unknown
  name?: unknown
  message?: unknown
  serverErrorMessage?: unknown
  cause?: unknown
  errors?: unknown
}

/**
 * The Kafka protocol error code an error carries: platformatic's ProtocolError `apiCode`,
 * kafkajs's KafkaJSProtocolError `code` (a number; other errors' codes are strings), or the
 * name in kahets's own TopicRefusal (`type`, src/errors.ts).
 */
function protocolCode (o: ErrorShape): number | null {
  if (typeof o.apiCode === 'number') return o.apiCode
  if (typeof o.code === 'number') return o.code
  if (o.name === 'TopicRefusal' && typeof o.type === 'string' && o.type in KafkaErrorCode) return KafkaErrorCode[o.type as KafkaErrorName]
  return null
}

function nameOf (code: number, o: ErrorShape): string {
  return NAME_OF.get(code) ?? (typeof o.type === 'string' ? o.type : `KAFKA_ERROR_${code}`)
}

/** Depth-first over the wrappers both clients use (`errors` of an AggregateError, `cause`). */
function * walk (err: unknown): Generator<ErrorShape> {
  const seen = new Set<unknown>()
  const stack: Array<{ e: unknown, depth: number }> = [{ e: err, depth: 0 }]
  while (stack.length > 0) {
    const { e, depth } = stack.pop()!
    if (e === null || typeof e !== 'object' || depth > 8 || seen.has(e)) continue
    seen.add(e)
    const o = e as ErrorShape
    yield o
    // Pushed in reverse so `errors` are visited in order, then `cause`.
    stack.push({ e: o.cause, depth: depth + 1 })
    if (Array.isArray(o.errors)) {
      for (let i = o.errors.length - 1; i >= 0; i--) if (!recordDetail(o.errors[i])) stack.push({ e: o.errors[i], depth: depth + 1 })
    }
  }
}

function tlsFailure (code: string, o: ErrorShape): SecurityFailure | null {
  const detail = typeof o.message === 'string' ? `: ${o.message}` : ''
  if (UNTRUSTED.has(code)) return { kind: 'tls', code, reason: `TLS: the broker's certificate is not trusted (${code}${detail}); ssl.ca.location must name the CA that signed it` }
  if (EXPIRED.has(code)) return { kind: 'tls', code, reason: `TLS: the broker's certificate is expired or not yet valid (${code})` }
  if (code === WRONG_HOST) return { kind: 'tls', code, reason: `TLS: the broker's certificate does not name the host connected to (${code}${detail}); connect by a name it was issued for, or set ssl.endpoint.identification.algorithm=none` }
  // An alert from the broker: it refused the handshake, usually our certificate (or its lack).
  if (code.startsWith('ERR_SSL_') && code.includes('_ALERT_')) return { kind: 'tls', code, reason: `TLS: the broker refused the handshake (${code}); its listener may require a client certificate it trusts (ssl.certificate.location, ssl.key.location)` }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return { kind: 'tls', code, reason: `TLS handshake failed (${code}${detail})` }
  return null
}

function securityFailure (o: ErrorShape, protocol: number | null): SecurityFailure | null {
  if (protocol !== null) {
    if (AUTHENTICATION.has(protocol)) {
      const name = nameOf(protocol, o)
      const said = typeof o.serverErrorMessage === 'string' && o.serverErrorMessage !== '' ? `: the broker said "${o.serverErrorMessage}"` : ''
      return { kind: 'authentication', code: name, reason: `SASL authentication failed (${name}${said}); check sasl.mechanisms, sasl.username and sasl.password` }
    }
    if (protocol === KafkaErrorCode.CLUSTER_AUTHORIZATION_FAILED) {
      return { kind: 'authorization', code: 'CLUSTER_AUTHORIZATION_FAILED', reason: 'the broker denies this principal the cluster-level operation kahets needs (CLUSTER_AUTHORIZATION_FAILED); check its ACLs' }
    }
    return null
  }
  // kafkajs keeps no protocol code for a failed SASL exchange, and platformatic none when the
  // exchange itself went wrong (a bad server signature): the error class, or platformatic's
  // stable error code, says what it was.
  if (o.name === 'KafkaJSSASLAuthenticationError' || o.code === 'PLT_KFK_AUTHENTICATION') {
    const said = typeof o.message === 'string' ? `: ${o.message}` : ''
    return { kind: 'authentication', code: 'SASL_AUTHENTICATION_FAILED', reason: `SASL authentication failed (SASL_AUTHENTICATION_FAILED${said}); check sasl.mechanisms, sasl.username and sasl.password` }
  }
  return typeof o.code === 'string' ? tlsFailure(o.code, o) : null
}

/**
 * Kafka errors arrive wrapped (kafkajs: retries exceeded, non-retriable, through `cause`;
 * @platformatic/kafka: MultipleErrors/ResponseError holding `errors`, a NetworkError whose
 * `cause` is the TLS or SASL failure). The first protocol code found decides what concerns a
 * topic; none at all (connection refused, timeout) means the broker is not answering, and a
 * security failure anywhere in the tree says why.
 */
export function classifyKafkaError (err: unknown): Failure {
  let security: SecurityFailure | null = null
  let fromProtocol = false
  for (const o of walk(err)) {
    const code = protocolCode(o)
    // The broker's own code (with its message) says more than a wrapper's class around it.
    if (security === null || (!fromProtocol && code !== null)) {
      const found = securityFailure(o, code)
      if (found !== null) {
        security = found
        fromProtocol = code !== null
      }
    }
    if (code !== null) {
      const type = nameOf(code, o)
      if (TOPIC_REFUSED.has(code)) return { kind: 'topic', type }
      if (TOO_LARGE.has(code)) return { kind: 'size', type }
      if (RECORD_REFUSED.has(code)) return { kind: 'record', type }
      if (TOPIC_PENDING.has(code)) return { kind: 'pending', type }
      if (security === null) return { kind: 'broker', security: null }
    }
    // kafkajs found no partitions for the topic: the metadata of a topic still being created.
    if (o.name === 'KafkaJSMetadataNotLoaded') return { kind: 'pending', type: 'METADATA_NOT_LOADED' }
  }
  return { kind: 'broker', security }
}

const SECURITY_CODES = {
  authentication: ErrorCodes.KAFKA_AUTHENTICATION_FAILED,
  authorization: ErrorCodes.KAFKA_AUTHORIZATION_FAILED,
  tls: ErrorCodes.KAFKA_TLS_FAILED,
} as const

/**
 * The error a kafka stream fails with when Kafka cannot be used at all: named for the stream
 * and, when it is a security failure, for its reason ("metadata failed 3 times" says neither).
 * Retriable: the stream goes to its backup and probes, and a fixed configuration (SIGHUP)
 * brings it back.
 */
export function streamUnavailable (streamId: string, err: unknown, why?: string): KahetsError {
  const failure = classifyKafkaError(err)
  const security = failure.kind === 'broker' ? failure.security : null
  if (security !== null) {
    return new KahetsError(SECURITY_CODES[security.kind], `kafka stream ${streamId}: ${security.reason}`, { cause: err, retriable: true })
  }
  const detail = err instanceof Error ? `: ${err.message}` : ''
  const because = why === undefined ? '' : ` (${why})`
  return new KahetsError(ErrorCodes.STREAM_UNAVAILABLE, `kafka stream ${streamId} unavailable${because}${detail}`, { cause: err, retriable: true })
}

/**
 * Broker answers that come before anything is appended (the partition has another leader, too
 * few in-sync replicas to start the write, no leader yet): a retry of that request cannot
 * duplicate. NOT_ENOUGH_REPLICAS_AFTER_APPEND, a timeout or a connection lost mid-request can.
 */
const REFUSED_BEFORE_APPEND = new Set([
  'NOT_LEADER_OR_FOLLOWER', 'NOT_LEADER_FOR_PARTITION', 'NOT_ENOUGH_REPLICAS', 'LEADER_NOT_AVAILABLE', 'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH', 'BROKER_NOT_AVAILABLE', 'UNKNOWN_TOPIC_OR_PARTITION',
])

/**
 * With acks=all the broker also answers NOT_LEADER_OR_FOLLOWER for a request it had appended
 * and was holding until the in-sync replicas caught up, when leadership moved meanwhile (a
 * controlled shutdown, a rolling restart): the new leader may already hold those records.
 */
const AFTER_APPEND_WITH_ACKS_ALL = new Set(['NOT_LEADER_OR_FOLLOWER', 'NOT_LEADER_FOR_PARTITION'])

/**
 * True when a failed produce request surely wrote nothing (issue 12): every failure inside it
 * is a connection that was refused (errno ECONNREFUSED: the request never left) or a broker
 * answer from REFUSED_BEFORE_APPEND (for `acks` -1, less AFTER_APPEND_WITH_ACKS_ALL). Anything
 * else (or nothing recognisable) is false, so a retry of it is counted as a possible duplicate.
 */
export function surelyUnwritten (err: unknown, acks: -1 | 0 | 1): boolean {
  const seen = new Set<unknown>()
  const visit = (e: unknown, depth: number): boolean => {
    if (e === null || typeof e !== 'object' || depth > 8 || seen.has(e)) return false
    seen.add(e)
    const o = e as { type?: unknown, apiId?: unknown, code?: unknown, cause?: unknown, errors?: unknown }
    if (o.code === 'ECONNREFUSED') return true
    const type = typeof o.type === 'string' ? o.type : typeof o.apiId === 'string' ? o.apiId : null
    if (type !== null) return REFUSED_BEFORE_APPEND.has(type) && !(acks === -1 && AFTER_APPEND_WITH_ACKS_ALL.has(type))
    const inner = Array.isArray(o.errors) ? o.errors.filter((e) => !recordDetail(e)) : []
    if (inner.length > 0) return inner.every((e) => visit(e, depth + 1))
    return visit(o.cause, depth + 1)
  }
  return visit(err, 0)
}
