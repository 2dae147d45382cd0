'use strict'
/**
 * bench.svg, written by hand: grouped bars of sets/s and gets/s with 256 operations in flight,
 * one group per (implementation, N), on a log scale; whiskers show min–max over repeated runs;
 * a group without figures says why.
 */

const COLORS = { set: '#4e79a7', get: '#f28e2b' }

function escXml(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function short(rate) {
  if (rate >= 1e6) return `${(rate / 1e6).toFixed(1)}M`
  if (rate >= 1e4) return `${Math.round(rate / 1e3)}k`
  if (rate >= 1e3) return `${(rate / 1e3).toFixed(1)}k`
  if (rate >= 10) return `${Math.round(rate)}`
  return rate.toFixed(1)
}

function renderChart(results) {
  const rows = results.rows.filter((r) => !r.unavailable)
  const groupW = 92
  const left = 70
  const right = 20
  const top = 56
  const plotH = 300
  const bottom = 78
  const width = Math.max(520, left + right + groupW * Math.max(rows.length, 1))
  const height = top + plotH + bottom
  const maxRate = Math.max(10, ...rows.flatMap((r) => ['set', 'get'].map((k) => r.throughput[`${k}-c256`]?.max ?? 0)))
  const lo = 0 // 10^0 = 1 op/s
  const hi = Math.max(3, Math.ceil(Math.log10(maxRate * 1.5)))
  const y = (rate) => top + plotH - ((Math.log10(Math.max(rate, 1)) - lo) / (hi - lo)) * plotH
  const out = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  const m = results.machine
  out.push(`<text x="${left}" y="22" font-size="15" font-weight="bold">Throughput with 256 operations in flight (ops/s, log scale)</text>`)
  out.push(`<text x="${left}" y="40" fill="#555">${escXml(`${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.date.slice(0, 10)} — all nodes in one process on 127.0.0.1`)}</text>`)
  for (let e = lo; e <= hi; e++) {
    const yy = y(10 ** e)
    out.push(`<line x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`)
    out.push(`<text x="${left - 6}" y="${yy + 4}" text-anchor="end" fill="#444">${escXml(e >= 6 ? `${10 ** (e - 6)}M` : e >= 3 ? `${10 ** (e - 3)}k` : `${10 ** e}`)}</text>`)
  }
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#888"/>`)
  rows.forEach((row, i) => {
    const gx = left + i * groupW
    const barW = 30
    ;['set', 'get'].forEach((kind, j) => {
      const metric = row.throughput[`${kind}-c256`]
      const bx = gx + 14 + j * (barW + 4)
      if (!metric) {
        out.push(`<text x="${bx + barW / 2}" y="${top + plotH - 6}" text-anchor="middle" fill="#b00" font-size="10">n/a</text>`)
        return
      }
      const yy = y(metric.value)
      out.push(`<rect x="${bx}" y="${yy.toFixed(1)}" width="${barW}" height="${(top + plotH - yy).toFixed(1)}" fill="${COLORS[kind]}"${row.ours ? '' : ' fill-opacity="0.8"'}><title>${escXml(`${row.label}, N=${row.nodes}: ${kind}s/s @256 = ${Math.round(metric.value)}`)}</title></rect>`)
      if (metric.count > 1 && metric.min !== metric.max) {
        const cx = bx + barW / 2
        out.push(`<line x1="${cx}" x2="${cx}" y1="${y(metric.max).toFixed(1)}" y2="${y(metric.min).toFixed(1)}" stroke="#222"/>`)
        for (const v of [metric.min, metric.max]) out.push(`<line x1="${cx - 5}" x2="${cx + 5}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#222"/>`)
      }
      out.push(`<text x="${bx + barW / 2}" y="${(yy - 4).toFixed(1)}" text-anchor="middle" font-size="10" fill="#222">${short(metric.value)}</text>`)
    })
    const name = row.label.replace(/ \((mutable|immutable)\)$/, '')
    const variant = /\((mutable|immutable)\)$/.exec(row.label)?.[1]
    const lx = gx + 14 + barW + 2
    out.push(`<text x="${lx}" y="${top + plotH + 16}" text-anchor="middle"${row.ours ? ' font-weight="bold"' : ''}>${escXml(name.split(' ')[0])}</text>`)
    out.push(`<text x="${lx}" y="${top + plotH + 30}" text-anchor="middle" fill="#555" font-size="10">${escXml(variant ? `${variant}, ` : '')}N=${row.nodes}</text>`)
    if (!row.ok) out.push(`<text x="${lx}" y="${top + plotH + 43}" text-anchor="middle" fill="#b00" font-size="10">⚠ see table</text>`)
  })
  const ly = height - 16
  out.push(`<rect x="${left}" y="${ly - 10}" width="12" height="12" fill="${COLORS.set}"/><text x="${left + 16}" y="${ly}">sets/s</text>`)
  out.push(`<rect x="${left + 80}" y="${ly - 10}" width="12" height="12" fill="${COLORS.get}"/><text x="${left + 96}" y="${ly}">gets/s</text>`)
  out.push(`<text x="${left + 160}" y="${ly}" fill="#555">whiskers: min–max over repeated runs</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}

module.exports = { renderChart }
