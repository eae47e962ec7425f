// The `kafka` stream's batching and error handling (docs/configuration.md#kafka-settings); the topic is the bucket name. It
// composes a Kafka client (kafka-client.ts: @platformatic/kafka in platformatic-client.ts, or
// kafkajs in kafkajs-client.ts, chosen with kahets.client) that connects, reads partitions,
// sends one partition batch per partition to its leader and closes; placement, batching and
// what a failure means are decided here, once for both.
//
// Neither client batches the way librdkafka does, so batching is done here, with librdkafka's knobs:
// messages wait per topic until the topic holds batch.num.messages of them, or BATCH_BYTES, or
// its oldest message has waited queue.buffering.max.ms. A request then also takes whatever the
// other idle topics hold (as Java's producer drains every partition of a node it is sending to
// anyway): a request that goes out regardless costs nothing more for carrying them.
//
//   write() ──▶ topic queue ──ready──▶ sendBatch (≤ maxInFlight, ≤ 1 per topic) ──▶ tickets settle
//                    ▲                        │ topic-level refusal: retried alone, split, or dropped
//                    ├────── requeued ◀───────┤ leader gone, cluster answers: retried (below)
//                    │                        │ cluster silent, or message.timeout.ms: every ticket rejects
//
// One request per topic at a time keeps each topic's messages in the order they were written
// even when the client retries a request internally or this layer retries it on a new leader
// (neither client is idempotent here): per-key order across a leader change rests on that.
//
// On a cluster (issue 12, docs/kafka.md) a failure that is not about one topic (NOT_LEADER_OR_FOLLOWER,
// a leader's connection lost or refused, NOT_ENOUGH_REPLICAS) is first taken as a leader change:
// the request's messages go back to the front of their topics, the stream asks the cluster for
// fresh metadata (its client's metadata(topics, true)) and, if any broker answers, sends them again to the leaders
// it names, with a growing pause, until the oldest of them has waited message.timeout.ms. Only
// then, or when no broker answers the metadata request at all (a real outage: detected as fast
// as before), does the stream fail over to its backup.
//
// A refusal that concerns one topic or one message (invalid or forbidden topic, message or
// batch too large) never fails the stream: those frames resolve as Rejections (counted as
// dropped, issue 3) and the other topics keep flowing. Anything else means Kafka itself is not
// answering; the write rejects with STREAM_UNAVAILABLE and the stream actor fails over.
import type { KafkaSettings } from '../config/buckets.ts'
import { ErrorCodes, KahetsError, TopicRefusal } from '../errors.ts'
import { RateLimitedLog, type Logger } from '../log.ts'
import type { Frame } from '../protocol/frame.ts'
import { refuseFrame } from '../receipts.ts'
import type { DropReason } from '../stats.ts'
import type { Rejections, Stream } from './stream.ts'
import { ItemQueue, type Items } from './item-queue.ts'
import { PartlyAcknowledged, type KafkaClient, type KafkaClientFactory, type PartitionBatch } from './kafka-client.ts'
import { classifyKafkaError, streamUnavailable, surelyUnwritten } from './kafka-errors.ts'
import { placeByPartition } from './kafka-partitioner.ts'
import { connectionTimeoutMs } from './kafka-security.ts'
import { kafkaStreamStats, type KafkaStreamStats } from './kafka-stream-stats.ts'
import { AnswerTimeout, DISCONNECT_TIMEOUT_MS, LEADER_RETRY_DELAYS_MS, PROBE_TIMEOUT_MS, withTimeout } from './kafka-timeouts.ts'

export { classifyKafkaError } from './kafka-errors.ts'
export { crc32 } from './kafka-partitioner.ts'
export { CONNECTION_TIMEOUT_MS, DISCONNECT_TIMEOUT_MS, KAFKAJS_RETRY, PROBE_TIMEOUT_MS, withTimeout } from './kafka-timeouts.ts'

// Kafka's per-partition batch limit is the broker's message.max.bytes (about 1 MB by default);
// staying under both it and ours means a full batch is never refused for its size.
const BATCH_BYTES = 1024 * 1024
// Far below the broker's socket.request.max.bytes (100 MB), so several topics fit in one request.
const REQUEST_BYTES = 16 * 1024 * 1024
// Per-record framing in a v2 record batch (length, attributes, deltas, key/value lengths, headers).
const RECORD_OVERHEAD = 32
// A broker that answers but has not yet created or elected a leader for a new topic: kafkajs's
// own retries (≈1 s, see KAFKAJS_RETRY) can be too short for auto-creation on a busy broker.
const TOPIC_RETRY_DELAYS_MS = [250, 500, 1000, 2000]

/** One write() call: resolves when all its queued messages are settled. */
export interface Ticket {
  /** performance.now() when written: the linger clock of its messages. */
  readonly at: number
  remaining: number
  rejections: Map<DropReason, number> | null
  done: boolean
  resolve: (r: Rejections | undefined) => void
  reject: (e: unknown) => void
}

/** What a message adds to a record batch. */
function recordBytes (frame: Frame): number {
  return Math.max(0, frame.keyLength) + frame.payloadLength + RECORD_OVERHEAD
}

export interface TopicQueue {
  readonly topic: string
  pending: ItemQueue
  bytes: number
  /** A request carrying this topic is in flight (or waiting to be retried). */
  busy: boolean
  /** Not before this time (performance.now()): backoff of a topic Kafka has not created yet. */
  retryAt: number
  attempts: number
  /** Retries on a new leader since this topic's last successful request (the pause grows with it). */
  leaderRetries: number
  /** After a size refusal: how many messages the next request may carry (halved per refusal). */
  limit: number
  /** After a failure in a request shared with other topics: send it on its own next time. */
  solo: boolean
  /**
   * Kafka refused this topic or its size once: from then on it never shares a request, since
   * kafkajs reports a produce response all-or-nothing and the topics the broker did accept in a
   * shared request would be sent twice when the others are retried (platformatic says which
   * partitions were taken: PartlyAcknowledged).
   */
  isolated: boolean
}

/** Messages of one topic taken for a request: frames[i] was written with tickets[i]. */
export interface Chunk extends Items {
  readonly queue: TopicQueue
  readonly bytes: number
}

/**
 * The client's PartlyAcknowledged (kafka-client.ts) in terms of queued frames: a produce request
 * that reached several leaders and failed on some. Kafka acknowledged the `delivered` frames
 * (their partitions' leaders answered), the rest failed with `cause`. Only the rest is retried,
 * so a leader change on one broker duplicates nothing the others took.
 */
class PartlyProduced extends Error {
  readonly delivered: ReadonlySet<Frame>
  constructor (delivered: ReadonlySet<Frame>, cause: unknown) {
    super('produce request partly acknowledged', { cause })
    this.delivered = delivered
  }
}

function addRejection (t: Ticket, reason: DropReason, n: number): void {
  t.rejections ??= new Map()
  t.rejections.set(reason, (t.rejections.get(reason) ?? 0) + n)
}

/** One message settled: delivered (reason null) or dropped for `reason`. */
function settleItem (frame: Frame, t: Ticket, reason: DropReason | null): void {
  if (t.done) return
  if (reason !== null) {
    addRejection(t, reason, 1)
    refuseFrame(frame, reason)
  }
  if (--t.remaining === 0) {
    t.done = true
    t.resolve(t.rejections ?? undefined)
  }
}

function failTicket (t: Ticket, error: KahetsError): void {
  if (t.done) return
  t.done = true
  t.reject(error)
}

export function unavailable (message: string, cause?: unknown): KahetsError {
  const detail = cause instanceof Error ? `: ${cause.message}` : ''
  return new KahetsError(ErrorCodes.STREAM_UNAVAILABLE, `${message}${detail}`, { cause, retriable: true })
}

export class BatchingKafkaStream implements Stream {
  readonly type = 'kafka' as const
  readonly id: string
  private readonly settings: KafkaSettings
  private readonly log: Logger
  private readonly rateLimited = new RateLimitedLog()
  readonly #newClient: KafkaClientFactory
  #client: KafkaClient
  readonly #batchBytes: number
  readonly #topics = new Map<string, TopicQueue>()
  /** Bumped by reset(): results of requests sent by an older client change nothing. */
  #generation = 0
  /** Set by a broker-level failure; every write rejects with it until reset(). */
  #broken: KahetsError | null = null
  #closed = false
  #flushing = false
  #inFlight = 0
  #pendingCount = 0
  private produceRequestCount = 0
  #timer: NodeJS.Timeout | null = null
  #timerAt = Infinity
  #idleWaiters: Array<() => void> = []
  /** A metadata refresh after a leader-level failure: no request goes out until it settles. */
  #refreshing = false
  readonly #kafkaStats: KafkaStreamStats

  constructor (id: string, settings: KafkaSettings, log: Logger, newClient: KafkaClientFactory) {
    this.id = id
    this.settings = settings
    this.log = log.child({ stream: id })
    this.#batchBytes = Math.min(BATCH_BYTES, settings.messageMaxBytes)
    this.#newClient = newClient
    this.#client = newClient(settings, this.log, 'stream')
    this.#kafkaStats = kafkaStreamStats(id)
  }

  /** Produce requests sent so far: one per client produce() call (for metrics and batching tests). */
  get produceRequests (): number { return this.produceRequestCount }

  /** A metadata request of no topic, from a throwaway client: the cluster answers, or it does not. */
  async probe (): Promise<boolean> {
    if (this.#closed) return false
    const client = this.#newClient(this.settings, this.log, 'probe')
    const attempt = (async () => {
      await client.connect()
      await client.metadata([])
      // The stream's own client must connect too, or the first write fails again at once.
      await this.#client.connect()
    })()
    return await this.probeWith(attempt, () => client.close(true))
  }

  /**
   * A new client starts from the bootstrap servers (kafkajs does not always recover a producer
   * whose broker went away); requests of the old one no longer count.
   */
  async reset (): Promise<void> {
    const old = this.#client
    this.newGeneration()
    this.#client = this.#newClient(this.settings, this.log, 'stream')
    await withTimeout(old.close(true), DISCONNECT_TIMEOUT_MS, 'disconnect').catch(() => {})
  }

  /**
   * One produce call carrying these chunks (one topic each), resolving once every partition
   * leader acknowledged. A reset() in between the steps means: do not send.
   */
  private async produce (chunks: Chunk[], generation: number): Promise<void> {
    const client = this.#client
    const replaced = (): Error => new Error('producer replaced before the request was sent')
    await this.answered(client.connect(), 'connection')
    if (!this.isCurrent(generation)) throw replaced()
    // From the client's metadata cache; fetched (and the topics auto-created) when a topic is new.
    const metadata = await this.answered(client.metadata(chunks.map((c) => c.queue.topic)), 'metadata request')
    if (!this.isCurrent(generation)) throw replaced()
    const batches: PartitionBatch[] = []
    for (const c of chunks) {
      const topic = c.queue.topic
      const partitions = metadata.get(topic)
      // Known but without partitions: still being created. Retried as LEADER_NOT_AVAILABLE,
      // then failed over (never dropped, as a topic Kafka says does not exist would be).
      if (partitions === undefined || partitions.count < 1) throw new TopicRefusal('LEADER_NOT_AVAILABLE', `no partitions yet for topic ${topic}`)
      for (const [partition, frames] of placeByPartition(c.frames, (f) => f.key, partitions.count, partitions.led)) {
        batches.push({ topic, partition, frames })
      }
    }
    this.produceRequestCount++
    try {
      await this.answered(client.produce(batches), 'produce request')
    } catch (err) {
      if (!(err instanceof PartlyAcknowledged)) throw err
      const delivered = new Set<Frame>()
      for (const batch of err.acknowledged) for (const frame of batch.frames) delivered.add(frame)
      throw new PartlyProduced(delivered, err.cause)
    }
  }

  private isCurrent (generation: number): boolean { return generation === this.#generation }

  /**
   * A request to Kafka, bounded: one that gets no answer within request.timeout.ms (plus a
   * connection timeout) is an outage, and the stream fails over (at-least-once: whatever the
   * client still delivers later is a duplicate of what the backup gets).
   */
  private answered<T> (request: Promise<T>, what: string): Promise<T> {
    return withTimeout(request, this.settings.requestTimeoutMs + connectionTimeoutMs(this.settings), what)
  }

  /**
   * probe() for either client: true when `attempt` succeeds within PROBE_TIMEOUT_MS. `release`
   * frees what the attempt used once it has settled, even after a timeout, so no probe
   * connection is left behind.
   */
  private async probeWith (attempt: Promise<unknown>, release: () => Promise<void>): Promise<boolean> {
    try {
      // A TLS/SASL handshake may take longer than a plain probe's bound (kafka-security.ts).
      await withTimeout(attempt, Math.max(PROBE_TIMEOUT_MS, connectionTimeoutMs(this.settings) + 1000), 'probe')
      return true
    } catch (err) {
      this.log.debug({ err }, 'kafka probe failed')
      return false
    } finally {
      attempt.catch(() => {}).finally(() => { release().catch(() => {}) })
    }
  }

  /** For reset(): requests of the old client no longer count, and writes are taken again. */
  private newGeneration (): void {
    this.#generation++
    this.#broken = null
    this.#refreshing = false
  }

  write (bucket: string, frames: readonly Frame[]): Promise<Rejections | undefined> {
    if (this.#closed) return Promise.reject(unavailable(`kafka stream ${this.id} is closed`))
    if (this.#broken !== null) return Promise.reject(this.#broken)
    if (frames.length === 0) return Promise.resolve(undefined)
    return new Promise((resolve, reject) => {
      const ticket: Ticket = { at: performance.now(), remaining: 0, rejections: null, done: false, resolve, reject }
      const q = this.#queue(bucket)
      const max = this.settings.messageMaxBytes + RECORD_OVERHEAD
      let tooLarge = 0
      for (const f of frames) {
        const bytes = recordBytes(f)
        if (bytes > max) {
          tooLarge++
          continue
        }
        q.pending.push(f, ticket)
        q.bytes += bytes
        ticket.remaining++
      }
      this.#pendingCount += ticket.remaining
      if (tooLarge > 0) {
        addRejection(ticket, 'message_too_large', tooLarge)
        this.rateLimited.warn(this.log, `message_too_large:${bucket}`, { bucket, messages: tooLarge, messageMaxBytes: this.settings.messageMaxBytes }, 'messages larger than message.max.bytes dropped')
      }
      if (ticket.remaining === 0) {
        ticket.done = true
        resolve(ticket.rejections ?? undefined)
        return
      }
      this.#dispatch()
    })
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#flushing = true
    this.#dispatch()
    await this.#idle()
    this.#closed = true
    this.#clearTimer()
    await withTimeout(this.#client.close(false), DISCONNECT_TIMEOUT_MS, 'disconnect').catch(() => {})
  }

  #queue (topic: string): TopicQueue {
    let q = this.#topics.get(topic)
    if (q === undefined) {
      q = { topic, pending: new ItemQueue(), bytes: 0, busy: false, retryAt: 0, attempts: 0, leaderRetries: 0, limit: Infinity, solo: false, isolated: false }
      this.#topics.set(topic, q)
    }
    return q
  }

  #sendable (q: TopicQueue, now: number): boolean {
    return !q.busy && q.pending.length > 0 && now >= q.retryAt
  }

  #ready (q: TopicQueue, now: number): boolean {
    return this.#flushing ||
      q.solo ||
      q.pending.length >= Math.min(this.settings.batchNumMessages, q.limit) ||
      q.bytes >= this.#batchBytes ||
      now - q.pending.ticketAt(0)!.at >= this.settings.lingerMs ||
      this.#pendingCount >= this.settings.queueMaxMessages
  }

  #dispatch (): void {
    if (this.#broken !== null || this.#refreshing) return
    const now = performance.now()
    while (this.#inFlight < this.settings.maxInFlight) {
      let anyReady = false
      for (const q of this.#topics.values()) {
        if (this.#sendable(q, now) && this.#ready(q, now)) {
          anyReady = true
          break
        }
      }
      if (!anyReady) break
      const chunks: Chunk[] = []
      let bytes = 0
      // Snapshot: taken topics move to the end of the map so the next request starts elsewhere.
      for (const q of [...this.#topics.values()]) {
        if (!this.#sendable(q, now)) continue
        const alone = q.solo || q.isolated
        if (alone && chunks.length > 0) continue
        const chunk = this.#take(q)
        chunks.push(chunk)
        bytes += chunk.bytes
        this.#topics.delete(q.topic)
        this.#topics.set(q.topic, q)
        if (alone || bytes >= REQUEST_BYTES) break
      }
      this.#send(chunks)
    }
    this.#armTimer(now)
  }

  #take (q: TopicQueue): Chunk {
    const max = Math.min(this.settings.batchNumMessages, q.limit)
    let n = 0
    let bytes = 0
    while (n < q.pending.length && n < max) {
      const b = recordBytes(q.pending.frameAt(n)!)
      if (n > 0 && bytes + b > this.#batchBytes) break
      bytes += b
      n++
    }
    const { frames, tickets } = q.pending.take(n)
    q.bytes -= bytes
    this.#pendingCount -= n
    q.busy = true
    return { queue: q, frames, tickets, bytes }
  }

  /** Puts a chunk's messages back at the front of its topic, ahead of newer ones. */
  #requeue (chunk: Chunk): void {
    const q = chunk.queue
    q.pending.putBack(chunk)
    q.bytes += chunk.bytes
    this.#pendingCount += chunk.frames.length
    q.busy = false
  }

  #send (chunks: Chunk[]): void {
    const generation = this.#generation
    this.#inFlight++
    this.produce(chunks, generation).then(
      () => this.#sent(chunks),
      (err: unknown) => this.#failed(chunks, err, generation),
    ).finally(() => {
      this.#inFlight--
      this.#dispatch()
      this.#checkIdle()
    })
  }

  #sent (chunks: Chunk[]): void {
    for (const c of chunks) {
      const q = c.queue
      q.busy = false
      q.solo = false
      q.attempts = 0
      q.leaderRetries = 0
      if (q.limit !== Infinity) q.limit = q.limit * 2 >= this.settings.batchNumMessages ? Infinity : q.limit * 2
      const { frames, tickets } = c
      for (let i = 0; i < frames.length; i++) settleItem(frames[i]!, tickets[i]!, null)
    }
  }

  #failed (failedChunks: Chunk[], err: unknown, generation: number): void {
    const chunks = err instanceof PartlyProduced ? this.#settleDelivered(failedChunks, err.delivered) : failedChunks
    if (chunks.length === 0) return
    const failure = classifyKafkaError(err)
    if (generation !== this.#generation || this.#broken !== null) {
      // Sent by a producer reset() has replaced, or by one already given up on: nothing may be
      // queued behind it again, so the writer (the stream actor) decides where these go.
      const error = this.#broken ?? unavailable(`kafka stream ${this.id}: request of a replaced producer failed`, err)
      for (const c of chunks) {
        c.queue.busy = false
        for (const t of c.tickets) failTicket(t, error)
      }
      return
    }
    if (failure.kind === 'broker') {
      this.#retryOnLeader(chunks, err)
      return
    }
    if (chunks.length > 1) {
      // The error is not read for which topic it was about: each goes again on its own.
      // A refusal at the metadata stage (invalid or forbidden topic) sent nothing, but one in
      // the produce response may follow partitions the broker appended: those are sent twice
      // (at-least-once), once per topic at most, since the refused topic is isolated after.
      for (const c of chunks) {
        this.#requeue(c)
        c.queue.solo = true
      }
      return
    }
    const chunk = chunks[0]!
    const q = chunk.queue
    if (failure.kind !== 'pending') q.isolated = true
    switch (failure.kind) {
      case 'topic':
        q.busy = false
        this.#drop(chunk, 'topic_rejected', failure.type, err)
        return
      case 'size':
      case 'record':
        if (chunk.frames.length > 1) {
          // Halve until the request passes or one message is left: only that one is dropped.
          this.#requeue(chunk)
          q.solo = true
          q.limit = Math.ceil(chunk.frames.length / 2)
          return
        }
        q.busy = false
        this.#drop(chunk, failure.kind === 'size' ? 'message_too_large' : 'topic_rejected', failure.type, err)
        return
      case 'pending': {
        // A partition with no leader yet (an election after a broker died) is what
        // message.timeout.ms is for (docs/kafka.md): retried with fresh metadata until the oldest
        // message has waited that long. A topic the broker keeps calling unknown is refused after
        // the short schedule (auto-creation is off).
        const now = performance.now()
        const electing = failure.type === 'LEADER_NOT_AVAILABLE' && now - (chunk.tickets[0]?.at ?? now) < this.settings.messageTimeoutMs
        if (q.attempts < TOPIC_RETRY_DELAYS_MS.length || electing) {
          this.#requeue(chunk)
          q.solo = true
          q.retryAt = now + TOPIC_RETRY_DELAYS_MS[Math.min(q.attempts, TOPIC_RETRY_DELAYS_MS.length - 1)]!
          q.attempts++
          if (failure.type === 'LEADER_NOT_AVAILABLE') this.#refresh([q.topic], err)
          return
        }
        if (failure.type === 'UNKNOWN_TOPIC_OR_PARTITION') {
          // The broker answers and keeps saying the topic does not exist: auto-creation is off.
          q.busy = false
          q.attempts = 0
          this.#drop(chunk, 'topic_rejected', failure.type, err)
          return
        }
        // The broker answers but this topic still has no leader (or, in platformatic's metadata,
        // no partitions): that topic's problem, not the stream's. Its writes fail with a
        // destination fault the stream actor sends to the backup and retries later (issue 10).
        this.#refuseTopic(chunk, failure.type, err)
        return
      }
      default: {
        const never: never = failure
        throw new Error(`unknown failure ${JSON.stringify(never)}`)
      }
    }
  }

  /** Settles what Kafka acknowledged; returns chunks of what it did not (none: nothing to handle). */
  #settleDelivered (chunks: Chunk[], delivered: ReadonlySet<Frame>): Chunk[] {
    const rest: Chunk[] = []
    for (const c of chunks) {
      const frames: Frame[] = []
      const tickets: Ticket[] = []
      let bytes = 0
      for (let i = 0; i < c.frames.length; i++) {
        const frame = c.frames[i]!
        if (delivered.has(frame)) {
          settleItem(frame, c.tickets[i]!, null)
        } else {
          frames.push(frame)
          tickets.push(c.tickets[i]!)
          bytes += recordBytes(frame)
        }
      }
      if (frames.length > 0) rest.push({ queue: c.queue, frames, tickets, bytes })
      else c.queue.busy = false
    }
    return rest
  }

  #drop (chunk: Chunk, reason: DropReason, type: string, err: unknown): void {
    const bucket = chunk.queue.topic
    this.rateLimited.error(this.log, `${reason}:${bucket}`, { bucket, topic: bucket, reason, kafkaError: type, messages: chunk.frames.length, err },
      'Kafka refused messages for good; dropped')
    const { frames, tickets } = chunk
    for (let i = 0; i < frames.length; i++) settleItem(frames[i]!, tickets[i]!, reason)
  }

  /** One topic cannot take writes for now: its queued writes fail, the other topics go on. */
  #refuseTopic (chunk: Chunk, type: string, err: unknown): void {
    const q = chunk.queue
    const error = new KahetsError(ErrorCodes.DESTINATION_REJECTED, `kafka stream ${this.id}: topic ${q.topic} not available (${type})`, { cause: err, retriable: true, scope: 'destination' })
    this.rateLimited.error(this.log, `unavailable:${q.topic}`, { topic: q.topic, kafkaError: type, err }, 'Kafka topic not available; its messages go to the backup')
    q.busy = false
    q.attempts = 0
    q.retryAt = 0
    q.solo = false
    q.isolated = false
    for (const t of chunk.tickets) failTicket(t, error)
    const waiting = q.pending.takeAll()
    for (const t of waiting.tickets) failTicket(t, error)
    this.#pendingCount -= waiting.tickets.length
    q.bytes = 0
  }

  /**
   * A failure not about one topic: a leader gone or changed, its connection lost, too few
   * in-sync replicas. While the cluster answers and the oldest message is younger than
   * message.timeout.ms, the messages go back to the front of their topics and are sent again
   * once fresh metadata names the leaders; the stream fails over otherwise.
   */
  #retryOnLeader (chunks: Chunk[], err: unknown): void {
    const now = performance.now()
    let oldest = Infinity
    for (const c of chunks) oldest = Math.min(oldest, c.tickets[0]?.at ?? Infinity)
    // The client may still deliver a request that outlived its bound (answered()): sending it
    // again would put two requests of one topic in flight, so that one fails over as before.
    if (err instanceof AnswerTimeout || now - oldest >= this.settings.messageTimeoutMs) {
      this.#breakDown(chunks, err, err instanceof AnswerTimeout ? 'unanswered' : 'message.timeout.ms')
      return
    }
    const unknownOutcome = !surelyUnwritten(err, this.settings.acks)
    let messages = 0
    for (const c of chunks) {
      const q = c.queue
      this.#requeue(c)
      messages += c.frames.length
      const delay = LEADER_RETRY_DELAYS_MS[Math.min(q.leaderRetries, LEADER_RETRY_DELAYS_MS.length - 1)]!
      q.leaderRetries++
      q.retryAt = now + delay
      // The error does not say which topic of a shared request it was about.
      if (chunks.length > 1) q.solo = true
      this.#kafkaStats.retries++
      if (unknownOutcome) this.#kafkaStats.resentUnknown += c.frames.length
    }
    this.rateLimited.warn(this.log, 'leader', { err, topics: chunks.map((c) => c.queue.topic), messages, unknownOutcome },
      'Kafka produce failed while the cluster may still answer; refreshing metadata to send to the current leaders')
    this.#refresh(chunks.map((c) => c.queue.topic), err)
  }

  /** One metadata refresh at a time; none of the stream's requests go out meanwhile. */
  #refresh (topics: string[], cause: unknown): void {
    if (this.#refreshing) return
    this.#refreshing = true
    this.#clearTimer()
    const generation = this.#generation
    withTimeout(this.#client.metadata(topics, true), this.settings.requestTimeoutMs + connectionTimeoutMs(this.settings), 'metadata refresh').then(
      () => {
        this.#refreshing = false
        if (generation === this.#generation) this.#dispatch()
      },
      (err: unknown) => {
        this.#refreshing = false
        if (generation !== this.#generation || this.#broken !== null) return
        if (classifyKafkaError(err).kind !== 'broker') {
          // A broker answered, about a topic (no leader yet, refused): the cluster is there, and
          // the next request meets that answer as a topic's own failure.
          this.#dispatch()
          return
        }
        // No broker answers: the outage the backup is for, found as fast as before issue 12.
        this.log.debug({ err }, 'metadata refresh failed')
        this.#breakDown([], cause, 'cluster not answering')
        this.#checkIdle()
      },
    )
  }

  /** Kafka itself is not answering: nothing queued can be delivered by this producer. */
  #breakDown (chunks: Chunk[], err: unknown, why = 'request failed'): void {
    // Named for its reason when Kafka refused who we are (kafka-errors.ts, docs/kafka-security.md).
    const error = streamUnavailable(this.id, err, why)
    this.#broken = error
    this.rateLimited.error(this.log, 'unavailable', { err: error, code: error.code, brokers: this.settings.brokers }, 'Kafka unavailable; failing queued writes')
    for (const c of chunks) {
      c.queue.busy = false
      for (const t of c.tickets) failTicket(t, error)
    }
    for (const q of this.#topics.values()) {
      const waiting = q.pending.takeAll()
      for (const t of waiting.tickets) failTicket(t, error)
      this.#pendingCount -= waiting.tickets.length
      q.bytes = 0
      q.solo = false
      q.limit = Infinity
      q.attempts = 0
      q.leaderRetries = 0
      q.retryAt = 0
    }
    this.#clearTimer()
  }

  #armTimer (now: number): void {
    let at = Infinity
    for (const q of this.#topics.values()) {
      if (q.busy || q.pending.length === 0) continue
      const due = Math.max(q.retryAt, q.pending.ticketAt(0)!.at + this.settings.lingerMs)
      // Due already but blocked by maxInFlight: a completing request dispatches it.
      if (due > now && due < at) at = due
    }
    if (at === this.#timerAt) return
    this.#clearTimer()
    if (at === Infinity) return
    this.#timerAt = at
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#timerAt = Infinity
      this.#dispatch()
    }, Math.max(0, Math.ceil(at - now)))
  }

  #clearTimer (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#timerAt = Infinity
  }

  #idle (): Promise<void> {
    if (this.#inFlight === 0 && this.#pendingCount === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  #checkIdle (): void {
    if (this.#inFlight !== 0 || this.#pendingCount !== 0) return
    const waiters = this.#idleWaiters
    this.#idleWaiters = []
    for (const w of waiters) w()
  }

}
