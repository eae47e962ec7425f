// A @platformatic/kafka Producer whose produce requests carry record batches that kahets
// encoded itself (record-batch.ts). Each message handed to send() is one whole batch for one
// topic partition (its `value`); the Producer still does everything else — metadata, the
// leader of each partition, connections, retries, stale-metadata handling — and only the
// request body is written here, in the same layout as platformatic's own Produce v7–v11, with
// the batch where platformatic would have encoded the records one by one.
//
// One thing is taken away from platformatic: it never sends a failed produce request again
// (see notRetried). Everything before the request (metadata, the leader's connection) it still
// retries, since nothing was written yet.
//
// Measured before this (bench, 100 B, acks=1, 8 clients, --cpu-prof): 26% of kahets's CPU in
// the garbage collector and a further ~35% in platformatic's per-record encoding.
import {
  MultipleErrors,
  Producer,
  Writer,
  kGetApi,
  produceV7,
  produceV8,
  produceV9,
  produceV10,
  produceV11,
  type Callback,
  type Connection,
} from '@platformatic/kafka'
import { groupBy } from '../group-by.ts'

/** What platformatic passes the Produce API for each message of a send(), after partitioning. */
interface Routed {
  readonly topic: string
  readonly partition: number
  readonly value: Buffer
}

type ParseResponse = typeof produceV11.parseResponse
type ApiFn = (connection: Connection, ...args: unknown[]) => void

/** Produce versions platformatic implements; v9 and later use the flexible (compact) encoding. */
const PRODUCE_VERSIONS = new Map<number, ParseResponse>([
  [7, produceV7.parseResponse as ParseResponse],
  [8, produceV8.parseResponse as ParseResponse],
  [9, produceV9.parseResponse as ParseResponse],
  [10, produceV10.parseResponse as ParseResponse],
  [11, produceV11.parseResponse],
])
const PRODUCE_API_KEY = 0
const FIRST_FLEXIBLE_VERSION = 9

/** The Produce request body: topics, their partitions, each partition's batches back to back. */
export function produceRequest (version: number, acks: number, timeoutMs: number, messages: readonly Routed[]): Writer {
  const compact = version >= FIRST_FLEXIBLE_VERSION
  const writer = Writer.create()
    .appendString(null, compact) // transactional_id
    .appendInt16(acks)
    .appendInt32(timeoutMs)
    .appendArray([...groupBy(messages, (m) => m.topic)], (w, [topic, ofTopic]) => {
      w.appendString(topic, compact).appendArray([...groupBy(ofTopic, (m) => m.partition)], (w, [partition, batches]) => {
        const bytes = batches.reduce((n, b) => n + b.value.length, 0)
        w.appendInt32(partition)
        if (compact) w.appendUnsignedVarInt(bytes + 1)
        else w.appendInt32(bytes)
        for (const b of batches) w.append(b.value)
      }, compact, compact) // tagged fields after each entry only in the flexible versions
    }, compact, compact)
  if (compact) writer.appendTaggedFields()
  // acks=0: the broker sends no response, and the connection must not wait for one.
  if (acks === 0) writer.context.noResponse = true
  return writer
}

/**
 * A failed produce request is marked canRetry: false, so platformatic's retry loop hands it to
 * kahets instead of sending it again. A request goes to one leader with the batches of several
 * partitions; when one of them fails (a leader moved, a new topic's partition not ready yet) the
 * broker has still appended the others, and sending the whole request again would write those
 * twice. kafka-batching.ts sends again only what was not acknowledged (platformatic-client.ts
 * reads each partition's result from the response kept inside this error).
 */
function notRetried (error: Error): Error {
  return new MultipleErrors('Produce request failed (kahets retries what was not acknowledged)', [error], { canRetry: false })
}

function preEncodedProduceApi (version: number): ApiFn {
  const parseResponse = PRODUCE_VERSIONS.get(version)
  if (parseResponse === undefined) throw new Error(`Produce v${version} is not one kahets can write`)
  const flexible = version >= FIRST_FLEXIBLE_VERSION
  return (connection, acks, timeout, messages, _options, callback) => {
    connection.send(
      PRODUCE_API_KEY,
      version,
      () => produceRequest(version, acks as number, timeout as number, messages as Routed[]),
      parseResponse,
      flexible,
      flexible,
      (error: Error | null, response: unknown) => {
        (callback as Callback<unknown>)(error === null || error === undefined ? null : notRetried(error), response)
      },
    )
  }
}

export class PreEncodedProducer extends Producer<Buffer, Buffer, Buffer, Buffer> {
  override [kGetApi]<RequestArguments extends Array<unknown>, ResponseType> (name: string, callback: Callback<never>): void {
    super[kGetApi]<RequestArguments, ResponseType>(name, (error, api) => {
      if (error !== null && error !== undefined) {
        callback(error, undefined as never)
        return
      }
      if (name !== 'Produce') {
        callback(null, api as never)
        return
      }
      let produce: ApiFn
      try {
        produce = preEncodedProduceApi((api as unknown as { version: number }).version)
      } catch (err) {
        callback(err as Error, undefined as never)
        return
      }
      callback(null, produce as never)
    })
  }
}
