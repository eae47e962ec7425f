// @platformatic/kafka 2.x targets Node >= 22.22 (its `engines`); on Node 20, the only thing it
// uses that Node 20 lacks is Promise.withResolvers (ES2024), called by every promise-returning
// method, so nothing works without it. kahets ships and runs on its pinned Node 26
// (docs/kafka-clients.md); this keeps `kahets.client: platformatic` working where kahets runs
// on Node 20 (CI's unit tests, a development machine). It fills the gap only where it exists,
// as the spec defines it, and does nothing on Node 22 and later.
if (!('withResolvers' in Promise)) {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T> (this: PromiseConstructor) {
      let resolve!: (value: T | PromiseLike<T>) => void
      let reject!: (reason?: unknown) => void
      const promise = new this<T>((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    },
  })
}
