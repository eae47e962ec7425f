// Counters of what file streams handled themselves (issue 10): files recreated because their
// path no longer led to them, writes cut back after failing part-way, descriptor pressure.
// Kept per stream id for the life of the process, so that a stream rebuilt by a reload keeps
// counting up (Prometheus counters never go down); the metrics endpoint reads them.
import { perStreamRegistry } from './per-stream-registry.ts'
import type { OpenFiles } from './open-files.ts'

export class FileStreamStats {
  /** By reason: `unlinked` (nothing at the path any more), `replaced` (another file or a symlink there). */
  readonly reopened = new Map<string, number>()
  writesUndone = 0
  bytesUndone = 0
  /** Times the system refused a descriptor (EMFILE/ENFILE) and idle files were closed. */
  pressureEvents = 0
  /** The bound of the stream's current incarnation: open files now, and the bound in force. */
  openFiles: OpenFiles | null = null
}

const registry = perStreamRegistry(() => new FileStreamStats())

export function fileStreamStats (stream: string): FileStreamStats {
  return registry.get(stream)
}

export function allFileStreamStats (): ReadonlyMap<string, FileStreamStats> {
  return registry.all
}
