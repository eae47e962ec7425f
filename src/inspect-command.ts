// `kahets inspect [--dump] FILE...` (docs/operations.md#commands): what a backup or frame file holds,
// without sending anything: its format, records, buckets with counts, bytes, the oldest and
// newest record time (the spool keeps each record's receive time; plain frames have none),
// and the byte ranges that failed their check. --dump writes every verified frame as a JSON
// line. The caller exits 1 when any file was damaged.
import { isUtf8 } from 'node:buffer'
import { readFrameFile, type FrameFileResult } from './streams/frame-file.ts'

export interface InspectReport extends FrameFileResult {
  file: string
  buckets: Map<string, number>
  /** Milliseconds since the epoch; null for plain frames or no records. */
  oldest: number | null
  newest: number | null
}

/** A key or payload as JSON: UTF-8 text when it is valid UTF-8, else base64. */
function encode (bytes: Buffer): { text: string, encoding: 'utf8' | 'base64' } {
  return isUtf8(bytes) ? { text: bytes.toString('utf8'), encoding: 'utf8' } : { text: bytes.toString('base64'), encoding: 'base64' }
}

export async function inspectFile (file: string, dump: ((line: string) => void) | null): Promise<InspectReport> {
  const buckets = new Map<string, number>()
  let oldest: number | null = null
  let newest: number | null = null
  let spool = false
  const result = await readFrameFile(file, async (frames) => {
    for (const f of frames) {
      buckets.set(f.bucket, (buckets.get(f.bucket) ?? 0) + 1)
      if (spool) {
        if (oldest === null || f.receivedAt < oldest) oldest = f.receivedAt
        if (newest === null || f.receivedAt > newest) newest = f.receivedAt
      }
      if (dump !== null) {
        const key = f.key === null ? null : encode(f.key)
        const payload = encode(f.payload)
        dump(JSON.stringify({
          bucket: f.bucket,
          key: key?.text ?? null,
          ...(key !== null && key.encoding !== 'utf8' ? { keyEncoding: key.encoding } : {}),
          payload: payload.text,
          payloadEncoding: payload.encoding,
          ...(spool ? { time: new Date(f.receivedAt).toISOString() } : {}),
        }))
      }
    }
  }, { onFormat: (format) => { spool = format === 'spool' } })
  return { file, ...result, buckets, oldest, newest }
}

export function describeInspect (r: InspectReport): string {
  const lines = [`${r.file}`, `  format: ${r.format === 'spool' ? 'spool (checksummed records)' : 'plain frames (no checksums)'}`, `  bytes: ${r.bytes}`, `  records: ${r.frames}`]
  const buckets = [...r.buckets].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
  lines.push(`  buckets: ${buckets.length === 0 ? '(none)' : buckets.map(([b, n]) => `${b} ${n}`).join(', ')}`)
  if (r.format === 'spool') {
    lines.push(`  oldest: ${r.oldest === null ? '-' : new Date(r.oldest).toISOString()}`, `  newest: ${r.newest === null ? '-' : new Date(r.newest).toISOString()}`)
  }
  if (r.tornBytes > 0) lines.push(`  torn tail: ${r.tornBytes} bytes (a write cut short, as by a crash)`)
  if (r.unreadable !== null) lines.push(`  UNREADABLE: ${r.unreadable}`)
  if (r.damaged.length === 0) lines.push('  damaged: none')
  else {
    lines.push(`  DAMAGED: ${r.damaged.length} range${r.damaged.length === 1 ? '' : 's'}, ${r.corruptBytes} bytes`)
    for (const d of r.damaged) lines.push(`    bytes ${d.start}-${d.end} (${d.end - d.start})`)
  }
  return lines.join('\n')
}
