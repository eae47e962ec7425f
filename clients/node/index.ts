// Public entry point of the Node client (SPEC §6).
export { KahetsClient } from './client.ts'
export type { KahetsClientOptions } from './client.ts'
