// The bench's SVG writer (bench/lib/plot.ts, docs/benchmarks.md): a row per scenario with a
// msgs/s figure, bars that keep the figures' order on a log scale, p99 only where measured and
// never a ceiling's, text escaped, and an empty run still a valid picture.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { escapeXml, groupKey, plotSvg, type PlotScenario } from '../../bench/lib/plot.ts'

const spread = (median: number, min = median, max = median): { median: number, min: number, max: number } => ({ median, min, max })

function scenario (id: string, kind: string, msgs: number | null, p99: number | null = null): PlotScenario {
  return { id, kind, label: `row ${id}`, size: 100, clients: kind === 'pp' ? null : 8, summary: { msgsPerSec: msgs === null ? null : spread(msgs, msgs * 0.8, msgs * 1.1), p99: p99 === null ? null : spread(p99) } }
}

/** Width of the msgs/s bar of the row whose tooltip names `id`. */
function barWidth (svg: string, id: string): number {
  const at = svg.indexOf(`<title>${id}: `)
  assert.ok(at >= 0, `${id} has a row`)
  const m = /<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)"/.exec(svg.slice(at))
  return Number(m![1])
}

test('plot: one row per scenario with a rate, widths in the order of the rates, p99 bars for kahets rows only', () => {
  const svg = plotSvg([
    scenario('kafka/acks1/none/100B/8c', 'kafka', 600_000, 40),
    scenario('pp/acks1/none/100B', 'pp', 300_000, 400),
    scenario('rdkafka/acks1/none/100B', 'rdkafka', 800_000),
    scenario('php/persistent', 'php', 20_000),
    scenario('file/8KiB/64c', 'file', null),
  ], 'title')
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+"/)
  assert.ok(svg.endsWith('</svg>\n'))
  assert.equal(svg.match(/<title>/g)!.length, 4 + 1, 'four msgs/s rows and one p99 bar (the ceiling\'s own p99 is not plotted)')
  assert.ok(!svg.includes('file/8KiB/64c'), 'a scenario without a rate has no row')
  assert.ok(barWidth(svg, 'php/persistent') < barWidth(svg, 'pp/acks1/none/100B'))
  assert.ok(barWidth(svg, 'pp/acks1/none/100B') < barWidth(svg, 'kafka/acks1/none/100B/8c'))
  assert.ok(barWidth(svg, 'kafka/acks1/none/100B/8c') < barWidth(svg, 'rdkafka/acks1/none/100B'))
  assert.match(svg, /<title>kafka\/acks1\/none\/100B\/8c: p99 40\.0 ms/)
  // Tags balance: every opened element is closed or self-closing.
  const opened = (svg.match(/<(svg|g|text|title)[ >]/g) ?? []).length
  const closed = (svg.match(/<\/(svg|g|text|title)>/g) ?? []).length
  assert.equal(opened, closed)
})

test('plot: labels are escaped, and a run with nothing measured is still a picture', () => {
  const s = scenario('file/100B/1c', 'file', 1000)
  s.label = 'a <b> & "c"'
  const svg = plotSvg([s], 'x < y')
  assert.ok(svg.includes('a &lt;b&gt; &amp; &quot;c&quot;'))
  assert.ok(svg.includes('x &lt; y'))
  assert.equal(escapeXml(`'`), '&apos;')
  const empty = plotSvg([], 'nothing')
  assert.match(empty, /^<svg [^>]*>[\s\S]*<\/svg>\n$/)
  assert.ok(!/NaN|Infinity/.test(empty), 'no NaN coordinates')
})

test('plot: a scenario and its ceilings share a group; the next size starts another', () => {
  assert.equal(groupKey('kafka/acks1/none/100B/8c'), groupKey('pp/acks1/none/100B'))
  assert.equal(groupKey('kafka/acks1/none/100B/8c/ack-durable'), groupKey('rdkafka/acks1/none/100B'))
  assert.equal(groupKey('pp-tuned/acksall/lz4/100B'), groupKey('kafkajs/acksall/lz4/100B'))
  assert.equal(groupKey('file/100B/1c'), groupKey('sink/100B/64c'))
  assert.notEqual(groupKey('file/100B/1c'), groupKey('file/1KiB/1c'))
  assert.equal(groupKey('schema/on/1KiB/8c'), groupKey('schema/none/1KiB/8c'))
  assert.equal(groupKey('php/persistent'), groupKey('php/ack-durable'))
})
