// Summarises a V8 .cpuprofile (node --cpu-prof) by self time: which functions the samples
// were in, summed per function (name + file + line) and per area (kahets's src/, each package
// under node_modules, Node's internals, GC). Self time, not total time: it names the code that
// itself burns the CPU, which is where an optimisation has to happen.
//
// Usage: node --import tsx bench/cpuprofile-top.ts FILE.cpuprofile [--top N]
// run.ts --cpu-prof calls summariseProfile() on the profiles of the kahets processes it ran.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface ProfileLine {
  name: string
  where: string
  selfMs: number
  /** Share of the busy (non-idle) time. */
  share: number
}

export interface ProfileSummary {
  totalMs: number
  busyMs: number
  functions: ProfileLine[]
  areas: ProfileLine[]
}

const REPO = path.resolve(import.meta.dirname, '..')

function shortUrl (url: string): string {
  if (url === '') return ''
  let p = url.startsWith('file://') ? fileURLToPath(url) : url
  if (p.startsWith(REPO + path.sep)) p = p.slice(REPO.length + 1)
  return p
}

function area (url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native / V8 builtins)'
  const p = shortUrl(url)
  if (p.startsWith('node:')) return 'node: internals'
  const nm = p.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = p.slice(nm + 'node_modules/'.length).split('/')
    return `node_modules/${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`
  }
  return p
}

/** Several files (e.g. the profiles of two kahets processes of one scenario) are added up. */
export function summariseProfile (files: string | readonly string[], top = 20): ProfileSummary {
  const fns = new Map<string, { name: string, where: string, us: number }>()
  const areas = new Map<string, number>()
  let totalUs = 0
  let idleUs = 0
  for (const file of typeof files === 'string' ? [files] : files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
    const byId = new Map(profile.nodes.map((n) => [n.id, n]))
    const selfUs = new Map<number, number>()
    // timeDeltas[i] is the time between sample i-1 and sample i: the time up to the next
    // sample is what sample i stands for.
    for (let i = 0; i < profile.samples.length; i++) {
      const dt = profile.timeDeltas[i + 1] ?? 0
      const id = profile.samples[i]!
      selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt))
    }
    for (const [id, us] of selfUs) {
      const n = byId.get(id)
      if (n === undefined) continue
      const { functionName, url, lineNumber } = n.callFrame
      const name = functionName === '' ? '(anonymous)' : functionName
      totalUs += us
      if (name === '(idle)') {
        idleUs += us
        continue
      }
      const where = url === '' ? '' : `${shortUrl(url)}:${lineNumber + 1}`
      const key = `${name}@${where}`
      const f = fns.get(key) ?? { name, where, us: 0 }
      f.us += us
      fns.set(key, f)
      const a = area(url, name)
      areas.set(a, (areas.get(a) ?? 0) + us)
    }
  }
  const busyUs = Math.max(1, totalUs - idleUs)
  return {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    functions: [...fns.values()].sort((a, b) => b.us - a.us).slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: f.us / 1000, share: f.us / busyUs })),
    areas: [...areas].sort((a, b) => b[1] - a[1]).slice(0, top)
      .map(([name, us]) => ({ name, where: '', selfMs: us / 1000, share: us / busyUs })),
  }
}

export function formatSummary (s: ProfileSummary): string {
  const lines = [`busy ${(s.busyMs / 1000).toFixed(2)} s of ${(s.totalMs / 1000).toFixed(2)} s profiled (the rest idle)`, '', 'self time by function:']
  for (const f of s.functions) lines.push(`  ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}  ${f.where}`)
  lines.push('', 'self time by area:')
  for (const a of s.areas) lines.push(`  ${(a.share * 100).toFixed(1).padStart(5)}%  ${a.selfMs.toFixed(0).padStart(7)} ms  ${a.name}`)
  return lines.join('\n')
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  const topAt = args.indexOf('--top')
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 25
  const files = args.filter((a, i) => a !== '--top' && (topAt < 0 || i !== topAt + 1))
  if (files.length === 0) {
    process.stderr.write('usage: node --import tsx bench/cpuprofile-top.ts FILE.cpuprofile… [--top N]\n')
    process.exit(2)
  }
  process.stdout.write(`${files.join(', ')}\n${formatSummary(summariseProfile(files, top))}\n`)
}
