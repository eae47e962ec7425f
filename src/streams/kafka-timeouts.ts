// How long kahets waits on Kafka: outage detection, probes and disconnects (docs/configuration.md#kafka-settings).
export const PROBE_TIMEOUT_MS = 2000
export const DISCONNECT_TIMEOUT_MS = 2000

// Outage detection in about a second: a refused connection fails at once and kafkajs retries
// twice (≈100 + 200 ms, jittered), a silent host fails after connectionTimeout per attempt. The
// stream actor then fails over and probes; kafkajs's defaults (5 retries up to 30 s, 30 s
// request timeout) would hold every bucket's writes for half a minute first.
export const CONNECTION_TIMEOUT_MS = 1000
export const KAFKAJS_RETRY = { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 }

// Pauses before a request is sent again on a new leader (issue 12, kafka-batching.ts): the first
// soon (a leader already moved), then growing to a second while an election is still under way
// (a dead broker keeps its partitions until broker.session.timeout.ms, 9 s by default). The
// whole is bounded by message.timeout.ms.
export const LEADER_RETRY_DELAYS_MS = [100, 200, 400, 800, 1000]

/** A request that got no answer in its bound: the client may still complete it later. */
export class AnswerTimeout extends Error {}

export function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new AnswerTimeout(`${what} took longer than ${ms} ms`)), ms)
  })
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer))
}
