// How long kahets waits on Kafka: outage detection, probes and disconnects (docs/configuration.md#kafka-settings).
export const PROBE_TIMEOUT_MS = 2000
export const DISCONNECT_TIMEOUT_MS = 2000

// Outage detection in about a second: a refused connection fails at once and kafkajs retries
// twice (≈100 + 200 ms, jittered), a silent host fails after connectionTimeout per attempt. The
// stream actor then fails over and probes; kafkajs's defaults (5 retries up to 30 s, 30 s
// request timeout) would hold every bucket's writes for half a minute first.
export const CONNECTION_TIMEOUT_MS = 1000
export const KAFKAJS_RETRY = { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 }

export function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)
  })
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer))
}
