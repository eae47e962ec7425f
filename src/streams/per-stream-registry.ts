// Objects kept per stream id for the life of the process (file-stream-stats.ts,
// kafka-stream-stats.ts): a stream rebuilt by a reload finds its counters again and keeps counting
// up, since Prometheus counters never go down; the metrics endpoint reads them all.
export interface PerStreamRegistry<T> {
  /** The stream's object, made on first use. */
  get (stream: string): T
  readonly all: ReadonlyMap<string, T>
}

export function perStreamRegistry<T> (make: () => T): PerStreamRegistry<T> {
  const byStream = new Map<string, T>()
  return {
    get (stream) {
      let s = byStream.get(stream)
      if (s === undefined) {
        s = make()
        byStream.set(stream, s)
      }
      return s
    },
    all: byStream,
  }
}
