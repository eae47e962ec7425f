// The unit a bucket hands a stream: one bucket's frames from one flush, the flow they are
// accounted to, and the memory they hold.
import type { MemoryBudget } from '../memory-budget.ts'
import type { Frame } from '../protocol/frame.ts'
import type { FlowStats } from '../stats.ts'
import type { Receipt } from '../receipts.ts'

export const NO_RECEIPTS: readonly Receipt[] = Object.freeze([])

/**
 * Memory held by one flushed batch, shared by every stream the batch fans out to; the bytes
 * go back to the budget when the last stream is done with them, however it ended
 * (delivered, backed up, dropped).
 */
export class Charge {
  readonly #budget: MemoryBudget | null
  readonly bytes: number
  #refs: number
  // Durable acknowledged frames in the batch (receipts.ts): settled when the last stream is done.
  readonly #receipts: readonly Receipt[]

  constructor (budget: MemoryBudget | null, bytes: number, refs: number, receipts: readonly Receipt[] = NO_RECEIPTS) {
    this.#budget = budget
    this.bytes = bytes
    this.#refs = refs
    this.#receipts = receipts
    for (const r of receipts) r.hold()
    if (refs === 0) this.#release()
  }

  /** For frames read back from a file: they hold no MAXMEMORY charge. */
  static none (): Charge { return new Charge(null, 0, 1) }

  done (): void {
    if (this.#refs <= 0) throw new Error('charge released twice')
    if (--this.#refs === 0) this.#release()
  }

  #release (): void {
    this.#budget?.release(this.bytes)
    for (const r of this.#receipts) r.release()
  }
}

export interface Delivery {
  readonly bucket: string
  readonly frames: readonly Frame[]
  /** Wire bytes of `frames`. */
  readonly bytes: number
  readonly flow: FlowStats
  readonly charge: Charge
  /**
   * Frames a replay read back and writes to the backup again (their destination refused them
   * for now): already counted as backed up, so neither counted again nor in flight.
   */
  readonly respooled?: boolean
}
