// What a Kafka error means for kahets (docs/configuration.md#kafka-settings, issue 10): read from the protocol error type
// the broker answered (kafkajs names it `type`, @platformatic/kafka `apiId`), never from message
// text. kafka-batching.ts turns the result into a drop, a retry, a refusal of one topic
// (scope `destination`) or an outage of the whole stream (scope `stream`).
/** Broker error types that are about one topic, whichever request carried it. */
const TOPIC_REFUSED = new Set(['INVALID_TOPIC_EXCEPTION', 'TOPIC_AUTHORIZATION_FAILED'])
/** About the size of what was sent: smaller requests may pass, a lone message will not. */
const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE'])
/** About some records (e.g. a null key on a compacted topic): isolated down to the message. */
const RECORD_REFUSED = new Set(['INVALID_RECORD'])
/** A topic that does not exist yet, or has no leader yet: retried for a while, alone. */
const TOPIC_PENDING = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE'])

/**
 * @platformatic/kafka lists a produce response's record_errors (the broker's detail about which
 * record of a refused batch was wrong) as protocol errors of code -1 (UNKNOWN_SERVER_ERROR)
 * ahead of the partition's own error (INVALID_RECORD): they say nothing of their own.
 */
function recordDetail (e: unknown): boolean {
  const path = (e as { path?: unknown } | null)?.path
  return typeof path === 'string' && path.includes('/record_errors/')
}

type Failure =
  | { kind: 'topic' | 'size' | 'record' | 'pending', type: string }
  | { kind: 'broker' }

/**
 * Kafka errors arrive wrapped (kafkajs: retries exceeded, non-retriable, through `cause`;
 * @platformatic/kafka: MultipleErrors/ResponseError holding `errors`); the protocol error type
 * is inside (kafkajs names it `type`, platformatic `apiId`). The first protocol type found
 * decides; none at all (connection refused, timeout) means the broker is not answering.
 */
export function classifyKafkaError (err: unknown): Failure {
  const seen = new Set<unknown>()
  const visit = (e: unknown, depth: number): Failure | null => {
    if (e === null || typeof e !== 'object' || depth > 8 || seen.has(e)) return null
    seen.add(e)
    const o = e as { type?: unknown, apiId?: unknown, name?: unknown, cause?: unknown, errors?: unknown }
    const type = typeof o.type === 'string' ? o.type : typeof o.apiId === 'string' ? o.apiId : null
    if (type !== null) {
      if (TOPIC_REFUSED.has(type)) return { kind: 'topic', type }
      if (TOO_LARGE.has(type)) return { kind: 'size', type }
      if (RECORD_REFUSED.has(type)) return { kind: 'record', type }
      if (TOPIC_PENDING.has(type)) return { kind: 'pending', type }
      return { kind: 'broker' }
    }
    // kafkajs found no partitions for the topic: the metadata of a topic still being created.
    if (o.name === 'KafkaJSMetadataNotLoaded') return { kind: 'pending', type: 'METADATA_NOT_LOADED' }
    if (Array.isArray(o.errors)) {
      for (const inner of o.errors) {
        if (recordDetail(inner)) continue
        const found = visit(inner, depth + 1)
        if (found !== null) return found
      }
    }
    return visit(o.cause, depth + 1)
  }
  return visit(err, 0) ?? { kind: 'broker' }
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
