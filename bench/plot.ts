// Redraws the plot of a results JSON (docs/benchmarks.md): `make bench` writes it with every
// run; this draws it again for an earlier run, or after the plot itself changed.
//
//   node --import tsx bench/plot.ts [RESULTS.json] [OUT.svg]
//   (defaults: bench/results/latest.json → bench/results/latest.svg)
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { plotSvg, plotTitle, type PlotResults } from './lib/plot.ts'

const resultsDir = path.join(import.meta.dirname, 'results')
const input = process.argv[2] ?? path.join(resultsDir, 'latest.json')
const output = process.argv[3] ?? input.replace(/\.json$/, '') + '.svg'
const results = JSON.parse(await readFile(input, 'utf8')) as PlotResults
await writeFile(output, plotSvg(results.scenarios, plotTitle(results)))
process.stderr.write(`wrote ${output}\n`)
