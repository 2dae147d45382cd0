'use strict'
/** Markdown for bench.md and BENCH_SUMMARY.md from the collected results. */
const { fmtUs, fmtRate, fmtBytes, fmtRatio } = require('./stats')
const { zipfCdf } = require('./zipf')

const DEPTHS = [1, 16, 256]

function esc(text) {
  return String(text).replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

/** A metric cell: the median, with (min–max) when there were several runs. */
function cell(metric, fmt) {
  if (!metric) return '—'
  if (metric.count > 1 && metric.min !== metric.max) return `${fmt(metric.value)} (${fmt(metric.min)}–${fmt(metric.max)})`
  return fmt(metric.value)
}

function correctnessCell(row) {
  const c = row.correctness
  if (row.unavailable) return '—'
  if (c.checked === 0) return '0/0 ✗ (nothing read back)'
  const ok = c.checked - c.wrong - c.errors
  if (c.wrong === 0 && c.errors === 0) return `${ok}/${c.checked} ✓ all matched`
  const parts = []
  if (c.wrong) parts.push(`${c.wrong} wrong/missing`)
  if (c.errors) parts.push(`${c.errors} failed`)
  return `${ok}/${c.checked} ✗ (${parts.join(', ')})`
}

function statusCell(row) {
  if (row.unavailable) return esc(row.unavailable)
  const bad = row.statuses.filter((s) => s !== 'ok')
  const notes = []
  if (bad.length) notes.push(`${row.runs > 1 ? `${bad.length} of ${row.runs} runs: ` : ''}${bad.map((s) => s.slice(0, 160)).join('; ')}`)
  const partial = (row.routingTables || []).filter((sizes) => Math.min(...sizes) < row.nodes - 1)
  if (partial.length) notes.push(`${partial.length} of ${row.runs} runs: mesh incomplete after start (routing tables ${partial.map((sizes) => `${Math.min(...sizes)}–${Math.max(...sizes)}`).join(', ')} of ${row.nodes - 1} peers)`)
  if (row.correctness.setErrors) notes.push(`${row.correctness.setErrors} sets failed`)
  if ((row.correctness.errors || row.correctness.setErrors) && row.correctness.firstError) notes.push(`first error: ${row.correctness.firstError.slice(0, 120)}`)
  if (row.correctness.wrong && row.correctness.firstWrong) notes.push(`first wrong: ${row.correctness.firstWrong}`)
  if (notes.length === 0) return row.runs > 1 ? `ok (${row.runs} runs)` : 'ok'
  return esc(notes.join('; '))
}

function rowsByN(results) {
  const map = new Map()
  for (const row of results.rows) {
    if (!map.has(row.nodes)) map.set(row.nodes, [])
    map.get(row.nodes).push(row)
  }
  return map
}

/** Every peer row beside our row of the same N, with the ratios between them. */
function peerRatios(results) {
  const out = []
  for (const [n, rows] of rowsByN(results)) {
    const ours = rows.find((r) => r.ours)
    if (!ours) continue
    for (const p of rows) if (!p.ours && !p.unavailable) out.push({ n, p, r: ratios(ours, p) })
  }
  return out
}

/** ours ÷ peer for rates (higher is better for us), peer ÷ ours for latencies. */
function ratios(ours, peer) {
  const rate = (key) => {
    const a = ours.throughput[key]
    const b = peer.throughput[key]
    if (!a || !b || !b.value) return null
    return { value: a.value / b.value, min: b.max ? a.value / b.max : null, max: b.min ? a.value / b.min : null, count: b.count }
  }
  const lat = (key) => {
    const a = ours[key]
    const b = peer[key]
    if (!a || !b || !a.value) return null
    return { value: b.value / a.value, min: b.min / a.value, max: b.max / a.value, count: b.count }
  }
  return { get256: rate('get-c256'), set256: rate('set-c256'), getP50: lat('getP50'), setP50: lat('setP50'), getP99: lat('getP99') }
}

function ratioCell(r) {
  if (!r) return '—'
  if (r.count > 1 && r.min !== null && r.max !== null && Math.abs(r.max - r.min) > 1e-9) return `${fmtRatio(r.value)} (${fmtRatio(r.min)}–${fmtRatio(r.max)})`
  return fmtRatio(r.value)
}

/** The targets of the brief, each with its measured value and whether it was met. */
function targets(results) {
  const out = []
  const raw = results.floors.rawTcp?.latency?.p50 ?? null
  const byN = rowsByN(results)
  for (const [n, rows] of byN) {
    const ours = rows.find((r) => r.ours)
    if (!ours) continue
    for (const [peer, factor] of [
      ['hyperdht', 40],
      ['js2p', 500],
    ]) {
      const p = rows.find((r) => r.peer === peer)
      if (!p) continue
      const r = ratios(ours, p).get256
      out.push({
        target: `N=${n}: get throughput @256 in flight ≥ ${factor}× ${p.label}`,
        measured: r ? `${ratioCell(r)} (${fmtRate(ours.throughput['get-c256']?.value)} vs ${cell(p.throughput['get-c256'], fmtRate)})` : `— (${p.unavailable || 'no figure'})`,
        met: r ? (r.value >= factor ? 'yes' : 'no') : 'n/a',
      })
    }
    const hops = ours.info?.meanLookupHops
    if (raw && typeof hops === 'number' && ours.getP50) {
      const bound = 3 * (hops + 1) * raw
      out.push({
        target: `N=${n}: get p50 ≤ 3 × (hops + 1) × raw RTT = 3 × (${hops.toFixed(2)} + 1) × ${fmtUs(raw)} = ${fmtUs(bound)}`,
        measured: `${fmtUs(ours.getP50.value)} (${(ours.getP50.value / ((hops + 1) * raw)).toFixed(1)} × (hops + 1) raw RTTs)`,
        met: ours.getP50.value <= bound ? 'yes' : 'no',
      })
    }
    if (n === 16) {
      out.push({ target: 'N=16: get p50 ≤ 150 µs', measured: fmtUs(ours.getP50?.value), met: ours.getP50 ? (ours.getP50.value <= 150 ? 'yes' : 'no') : 'n/a' })
      const g = ours.throughput['get-c256']?.value
      const s = ours.throughput['set-c256']?.value
      out.push({ target: 'N=16: ≥ 50,000 gets/s with 256 in flight', measured: fmtRate(g), met: g ? (g >= 50000 ? 'yes' : 'no') : 'n/a' })
      out.push({ target: 'N=16: ≥ 20,000 sets/s with 256 in flight', measured: fmtRate(s), met: s ? (s >= 20000 ? 'yes' : 'no') : 'n/a' })
    }
  }
  const w = results.floors.whisper?.latency?.p50
  if (raw && w) out.push({ target: `whisper round trip p50 ≤ 2 × raw RTT p50 (${fmtUs(2 * raw)})`, measured: `${fmtUs(w)} (${(w / raw).toFixed(1)} × raw)`, met: w <= 2 * raw ? 'yes' : 'no' })
  return out
}

/** "Read-heavy (95 % gets, Zipf 0.99 over 10,000 keys)" from the run's settings. */
function readHeavyTitle(rh) {
  return `Read-heavy (${Math.round(rh.getShare * 100)} % gets, Zipf ${rh.exponent} over ${rh.keys.toLocaleString('en-US')} keys)`
}

function staleCell(row) {
  if (row.unavailable || row.checked === 0) return '—'
  return `${row.stale.toLocaleString('en-US')} of ${row.checked.toLocaleString('en-US')}`
}

function readHeavyStatus(row) {
  if (row.unavailable) return esc(row.unavailable)
  const bad = row.statuses.filter((s) => s !== 'ok')
  const notes = []
  if (bad.length) notes.push(`${row.runs > 1 ? `${bad.length} of ${row.runs} runs: ` : ''}${bad.map((s) => s.slice(0, 200)).join('; ')}`)
  if (row.wrong) notes.push(`${row.wrong} gets wrong or missing, first: ${row.firstWrong}`)
  if (row.errors) notes.push(`${row.errors} gets failed`)
  if (row.setErrors) notes.push(`${row.setErrors} sets failed`)
  if ((row.errors || row.setErrors) && row.firstError) notes.push(`first error: ${row.firstError.slice(0, 120)}`)
  if (row.stale && row.firstStale) notes.push(`first stale: ${row.firstStale}`)
  if (notes.length === 0) return row.runs > 1 ? `ok (${row.runs} runs)` : 'ok'
  return esc(notes.join('; '))
}

/** The read-heavy table: one row per implementation (bench.md with a status column). */
function readHeavySection(results, L, heading, { full }) {
  const rh = results.settings.readHeavy
  const rows = results.readHeavy || []
  if (!rh || rows.length === 0) return
  const low = rh.depths[0]
  const high = rh.depths[rh.depths.length - 1]
  const name = (row) => `${row.ours ? `**${row.label}**` : row.label}${row.note ? ' ¹' : ''}`
  L.push(heading, '')
  if (full) {
    const cdf = zipfCdf(rh.keys, rh.exponent)
    L.push(
      `Every one of the ${rh.keys.toLocaleString('en-US')} keys is written once beforehand (not timed); then up to ${results.settings.tpOps.toLocaleString('en-US')} operations or ${(results.settings.budgetMs / 1000).toFixed(1)} s with ${rh.depths.join(' and ')} in flight, ` +
        `${Math.round(rh.getShare * 100)} % gets and ${Math.round((1 - rh.getShare) * 100)} % sets of a new value, each on a key drawn from Zipf(${rh.keys.toLocaleString('en-US')}, ${rh.exponent}) (the hottest key draws ${(cdf[0] * 100).toFixed(1)} % of the operations, the 10 hottest ${(cdf[Math.min(9, rh.keys - 1)] * 100).toFixed(0)} %), issued from every node in turn, ` +
        `on a ring of ${rh.nodes} nodes started for this workload. ops/s counts gets and sets; get p50 / p99 with ${low} in flight (with ${high} in flight: results.json). ` +
        'Every get is checked: it must return the value of the last set acknowledged before it began, or of a newer one; an older value is a stale read. ' +
        'Writes to one key never overlap (a set drawn for a key whose set is in flight draws another key). The Map row is the floor: a JavaScript `Map` in the process, behind an async function (`await map.get(key)`). ' +
        'This workload alone: `node bench/run.js --workloads read-heavy`.',
      '',
    )
    L.push(`| implementation | N | ops/s @${low} | ops/s @${high} | get p50 @${low} | get p99 @${low} | stale reads | status |`)
    L.push('|---|---:|---:|---:|---:|---:|---:|---|')
  } else {
    L.push(`| | N | ops/s @${low} | ops/s @${high} | get p50 | get p99 | stale reads |`)
    L.push('|---|---:|---:|---:|---:|---:|---:|')
  }
  for (const row of rows) {
    if (row.unavailable) {
      if (full) L.push(`| ${row.label} | ${row.nodes} | — | — | — | — | — | ${esc(row.unavailable)} |`)
      continue
    }
    const cells = `| ${name(row)} | ${row.nodes} | ${cell(row.rate[`c${low}`], fmtRate)} | ${cell(row.rate[`c${high}`], fmtRate)} | ${cell(row.getP50[`c${low}`], fmtUs)} | ${cell(row.getP99[`c${low}`], fmtUs)} | ${staleCell(row)}`
    L.push(full ? `${cells} | ${readHeavyStatus(row)} |` : `${cells}${row.ok ? '' : ' ⚠'} |`)
  }
  L.push('')
  if (full && rows.some((r) => r.note && !r.unavailable)) L.push('¹ js2p: `set()` is fire-and-forget (it returns before any node stored the value), so a get that follows an "acknowledged" set may well read the value before it.', '')
}

function renderMarkdown(results) {
  const m = results.machine
  const s = results.settings
  const L = []
  L.push(`# chordnet benchmark${results.mode !== 'full' ? ` (${results.mode} run)` : ''}`)
  L.push('')
  L.push(`- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB.toFixed(1)} GiB RAM, ${m.platform}`)
  L.push(`- Node ${m.node}; run ${m.date.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}, ${results.wallSeconds.toFixed(0)} s`)
  // A run of the read-heavy workload alone has no rows in the DHT operations table.
  const dhtTable = results.rows.length > 0 || !(results.readHeavy || []).length
  if (dhtTable) {
    L.push(
      `- Every implementation runs all its N nodes in one child process on 127.0.0.1; operations are issued from every node in turn (key → owner usually on another node). ` +
        `Sequential latency: up to ${s.seqOps} sets, then gets of those keys. Throughput: up to ${s.tpOps.toLocaleString('en-US')} operations or ${(s.budgetMs / 1000).toFixed(1)} s per phase, whichever comes first, with 1, 16 and 256 operations in flight. ` +
        'Every get is checked against the value written; "correct" counts all gets of the run. RSS/node: RSS growth from starting the N nodes (after GC), ÷ N. ' +
        'Rows with several runs show the median and (min–max).',
    )
  }
  L.push('')

  if (results.floors.rawTcp || results.floors.whisper || results.floors.broadcast) {
    const raw = results.floors.rawTcp?.latency
    L.push('## Floors: loopback round trips and chordnet MeshSocket messages')
    L.push('')
    L.push('| measurement | p50 | p99 | samples | p50 ÷ raw TCP p50 |')
    L.push('|---|---:|---:|---:|---:|')
    const line = (name, lat, extra = '') => {
      if (!lat) return L.push(`| ${name} | — | — | — | ${extra} |`)
      L.push(`| ${name} | ${fmtUs(lat.p50)} | ${fmtUs(lat.p99)} | ${lat.n} | ${raw && raw.p50 ? `${(lat.p50 / raw.p50).toFixed(1)}×` : '—'} |`)
    }
    line('raw loopback TCP round trip (1 byte, Node net, Nagle off)', raw, results.floors.rawTcpStatus)
    if (results.floors.whisper !== undefined || results.floors.meshStatus) {
      line('chordnet MeshSocket whisper round trip (whisper + reply)', results.floors.whisper?.latency, results.floors.meshStatus)
      const b = results.floors.broadcast
      line(`chordnet broadcast of 1 KiB, 10 MeshSockets: until all 9 others received it${b ? ` (peers per node: ${Math.min(...b.peers)}–${Math.max(...b.peers)})` : ''}`, b?.latency, results.floors.meshStatus)
    }
    if (results.floors.meshStatus && results.floors.meshStatus !== 'ok') L.push('', `MeshSocket run: ${esc(results.floors.meshStatus)}`)
    L.push('')
  }

  if (dhtTable) {
    L.push('## DHT operations')
    L.push('')
    L.push('| implementation | N | set p50 | set p99 | get p50 | get p99 | sets/s @1 | sets/s @16 | sets/s @256 | gets/s @1 | gets/s @16 | gets/s @256 | correct | RSS/node | status |')
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|')
  }
  for (const row of results.rows) {
    if (row.unavailable) {
      L.push(`| ${row.label} | ${row.nodes} | — | — | — | — | — | — | — | — | — | — | — | — | ${esc(row.unavailable)} |`)
      continue
    }
    const t = row.throughput
    L.push(
      `| ${row.ours ? `**${row.label}**` : row.label}${row.note ? ` ¹` : ''} | ${row.nodes} | ${cell(row.setP50, fmtUs)} | ${cell(row.setP99, fmtUs)} | ${cell(row.getP50, fmtUs)} | ${cell(row.getP99, fmtUs)} | ` +
        DEPTHS.map((c) => cell(t[`set-c${c}`], fmtRate)).join(' | ') +
        ' | ' +
        DEPTHS.map((c) => cell(t[`get-c${c}`], fmtRate)).join(' | ') +
        ` | ${correctnessCell(row)} | ${cell(row.rssPerNode, fmtBytes)} | ${statusCell(row)} |`,
    )
  }
  if (dhtTable) L.push('')
  if (results.rows.some((r) => r.note)) L.push('¹ js2p: `set()` is fire-and-forget (returns before any node stored the value), so its set latency and sets/s time only the local send plus one turn of the event loop (without that turn, a tight loop of sets starves its I/O and hangs); its `get()` polls five hash-replicas every 100 ms until three agree (timeout 3 s here).', '')
  const samples = results.mode === 'smoke' ? [] : results.rows.filter((r) => r.getSamples && r.getSamples.value < 100)
  if (samples.length) L.push(`Few latency samples (the time budget ran out): ${samples.map((r) => `${r.label} N=${r.nodes}: ${Math.round(r.getSamples.value)} gets`).join('; ')}.`, '')

  encryptionSection(results, L, '## What Noise costs: chordnet with Noise (the default) and in Plaintext')

  // chordnet on disk (dataDir, sync durability) against chordnet in memory, same run.
  const diskLines = []
  for (const disk of results.rows.filter((r) => r.peer === 'chordnet-disk' && !r.unavailable)) {
    const memory = results.rows.find((r) => r.peer === 'chordnet' && r.nodes === disk.nodes)
    const share = (kind) => {
      const a = disk.throughput[`${kind}-c256`]?.value
      const b = memory?.throughput[`${kind}-c256`]?.value
      return a && b ? a / b : null
    }
    const [sets, gets] = [share('set'), share('get')]
    const pct = (x, target) => (x === null ? '—' : `${Math.round(x * 100)} % (target ≥ ${target} %: ${x * 100 >= target ? 'met' : 'missed'})`)
    diskLines.push(`| ${disk.nodes} | ${pct(sets, 40)} | ${pct(gets, 80)} |`)
  }
  if (diskLines.length && results.mode !== 'smoke') {
    L.push('## chordnet on disk ÷ in memory (same run, 256 in flight)', '')
    L.push('Every node with a `dataDir` and durability `sync`: a set resolves once the owner and its two replicas flushed it to the disk (fdatasync, group commit).', '')
    L.push('| N | sets/s | gets/s |', '|---:|---|---|', ...diskLines, '')
  }

  const hopsRows = results.rows.filter((r) => r.peer === 'chordnet' && r.info)
  if (hopsRows.length) {
    L.push('chordnet ring state after the run: ' + hopsRows.map((r) => `N=${r.nodes}: ${r.info.meanLookupHops.toFixed(2)} mean lookup hops (\`lookup()\`, ${r.info.lookupSamples} keys), ${r.info.meanConnections.toFixed(1)} connections/node, ${Math.round(r.info.keysPerNode).toLocaleString('en-US')} keys held per node (replicas included), ${r.info.meanRedirects.toFixed(3)} mean redirects per operation${r.info.falseSuspicions === undefined ? '' : `, ${r.info.falseSuspicions} false suspicions in ${(r.info.nodeHours * 60).toFixed(1)} node·minutes under load`}`).join('; ') + '.')
    L.push('')
  }

  // Ratios
  const ratioLines = peerRatios(results).map(
    ({ n, p, r }) => `| ${n} | ${p.label} | ${ratioCell(r.get256)} | ${ratioCell(r.set256)} | ${ratioCell(r.getP50)} | ${ratioCell(r.getP99)} | ${ratioCell(r.setP50)} |`,
  )
  if (ratioLines.length && results.mode !== 'smoke') {
    L.push('## Ratios: chordnet ÷ peer (higher = chordnet faster)')
    L.push('')
    L.push('Throughput: ours ÷ theirs. Latency: theirs ÷ ours. For peers run several times, (range) spans their min–max run.')
    L.push('')
    L.push('| N | peer | gets/s @256 | sets/s @256 | get p50 | get p99 | set p50 |')
    L.push('|---:|---|---:|---:|---:|---:|---:|')
    L.push(...ratioLines)
    L.push('')
  }

  if (results.settings.readHeavy) readHeavySection(results, L, `## ${readHeavyTitle(results.settings.readHeavy)}`, { full: true })

  const t = results.mode === 'smoke' ? [] : targets(results)
  if (t.length) {
    L.push('## Targets (reported, not asserted)')
    L.push('')
    L.push('| target | measured | met |')
    L.push('|---|---|---|')
    for (const x of t) L.push(`| ${esc(x.target)} | ${esc(x.measured)} | ${x.met} |`)
    L.push('')
  }

  L.push('## Notes')
  L.push('')
  L.push('- chordnet: `createTestnet(N, { stabilizeMs: 250 })` (replicas 3, the library defaults); `set` resolves once every replica holds the value; `get` returns the owner\'s value.')
  L.push('- hyperdht: `hyperdht/testnet` (N non-ephemeral nodes, UDP on 127.0.0.1). Mutable: `mutablePut(keyPair(seed = BLAKE2b(key)), value)` / `mutableGet(publicKey)` — a key → value dict. Immutable: `immutablePut(value)` / `immutableGet(hash)` (content-addressed; the benchmark remembers each hash). Default query options (`latest: true`: gets wait for the query to finish).')
  L.push('- js2p: `ChordSocket(\'127.0.0.1\', port, new Protocol(\'chord\', \'Plaintext\'))` on free ports picked just before; all nodes `join()` and connect to each other (full mesh, its best case).')
  const kad = results.rows.find((r) => r.peer === 'kad-dht')
  if (kad) L.push(`- @libp2p/kad-dht: ${kad.unavailable ? esc(kad.unavailable) + '. ' : ''}Details in bench/peers/kad-dht.js.`)
  const warnings = results.rows.flatMap((r) => (r.rawRuns || []).flatMap((run) => run.warnings.map((w) => `${r.label} N=${r.nodes}: ${w}`)))
  if (warnings.length) L.push(`- Warnings from the children: ${esc(warnings.slice(0, 4).join('; ').slice(0, 600))}`)
  L.push(`- Reproduce: \`npm run bench\`${results.mode === 'full' ? ` (this run: ${Math.ceil(results.wallSeconds / 60)} min)` : ''}; \`node bench/run.js --quick\`, \`--peers chordnet,hyperdht\`, \`--nodes 4\`, \`--ops 2000\`, \`--repeat 3\` to shorten or repeat.`)
  L.push('')
  return L.join('\n')
}

/** About 20 lines for the README. */
function renderSummary(results) {
  const m = results.machine
  const L = []
  const raw = results.floors.rawTcp?.latency
  const w = results.floors.whisper?.latency
  const b = results.floors.broadcast?.latency
  L.push('### Benchmark')
  L.push('')
  L.push(`${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.date.slice(0, 10)}; all nodes of each DHT in one process on 127.0.0.1 (\`npm run bench\`, full table in bench/results/bench.md).`)
  L.push('')
  const dhtTable = results.rows.length > 0 || !(results.readHeavy || []).length
  if (dhtTable) {
    L.push('| | N | get p50 | set p50 | gets/s @256 | sets/s @256 | correct |')
    L.push('|---|---:|---:|---:|---:|---:|---|')
  }
  for (const row of results.rows) {
    if (row.unavailable) continue
    const c = row.correctness
    L.push(
      `| ${row.ours ? `**${row.label}**` : row.label} | ${row.nodes} | ${cell(row.getP50, fmtUs)} | ${cell(row.setP50, fmtUs)} | ${cell(row.throughput['get-c256'], fmtRate)} | ${cell(row.throughput['set-c256'], fmtRate)} | ${c.checked ? `${c.checked - c.wrong - c.errors}/${c.checked}` : '—'}${row.ok ? '' : ' ⚠'} |`,
    )
  }
  if (dhtTable) L.push('')
  if (results.settings.readHeavy) readHeavySection(results, L, `${readHeavyTitle(results.settings.readHeavy)}, on a ring of ${results.settings.readHeavy.nodes} nodes; get latency with ${results.settings.readHeavy.depths[0]} in flight; a stale read returned an older value than the last set acknowledged before the get:`, { full: false })
  encryptionSection(results, L, 'What Noise costs (chordnet with Noise, the default, and the same build in Plaintext):')
  if (raw) L.push(`Floors: raw loopback TCP round trip p50 ${fmtUs(raw.p50)}${w ? `; chordnet whisper round trip p50 ${fmtUs(w.p50)} (${(w.p50 / raw.p50).toFixed(1)}× raw)` : ''}${b ? `; 1 KiB broadcast to 9 peers p50 ${fmtUs(b.p50)}` : ''}.`)
  const parts = peerRatios(results)
    .filter(({ r }) => r.get256)
    .map(({ n, p, r }) => `${ratioCell(r.get256)} ${p.label.split(' ')[0]}${p.label.includes('immutable') ? ' (immutable)' : ''} at N=${n}`)
  if (parts.length) L.push(`Get throughput at 256 in flight, chordnet ÷ peer: ${parts.join(', ')}.`)
  const t = targets(results)
  if (t.length) {
    L.push(`Targets met: ${t.filter((x) => x.met === 'yes').length} of ${t.length}.${t.some((x) => x.met === 'no') ? ' Missed:' : ''}`)
    for (const x of t.filter((x) => x.met === 'no')) L.push(`- ${x.target.replace(/ = .*$/, '')}: ${x.measured}`)
  }
  const kad = results.rows.find((r) => r.peer === 'kad-dht')
  if (kad?.unavailable) L.push(`@libp2p/kad-dht is not compared: ${kad.unavailable.replace(/^not run: /, '')}.`)
  L.push('')
  return L.join('\n')
}

/** chordnet with Noise vs the same build in Plaintext, per N: rates at 256 in flight and get p50. */
function encryptionCost(results) {
  const out = []
  for (const n of [...new Set(results.rows.map((r) => r.nodes))]) {
    const noise = results.rows.find((r) => r.peer === 'chordnet' && r.nodes === n && !r.unavailable)
    const plain = results.rows.find((r) => r.peer === 'chordnet-plaintext' && r.nodes === n && !r.unavailable)
    if (!noise || !plain) continue
    const rate = (row, key) => row.throughput[key]?.value
    const cpu = (row, kind) => (typeof row.cpuUsPerOp?.[kind]?.value === 'number' ? `${row.cpuUsPerOp[kind].value.toFixed(1)} µs` : '—')
    const cost = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? `${(((a - b) / b) * 100).toFixed(1)} %` : '—')
    out.push({
      n,
      line: `| ${n} | ${cell(noise.throughput['get-c256'], fmtRate)} | ${cell(plain.throughput['get-c256'], fmtRate)} | ${cost(rate(noise, 'get-c256'), rate(plain, 'get-c256'))} | ${cell(noise.throughput['set-c256'], fmtRate)} | ${cell(plain.throughput['set-c256'], fmtRate)} | ${cost(rate(noise, 'set-c256'), rate(plain, 'set-c256'))} | ${cpu(noise, 'get')} / ${cpu(plain, 'get')} | ${cpu(noise, 'set')} / ${cpu(plain, 'set')} | ${cell(noise.getP50, fmtUs)} | ${cell(plain.getP50, fmtUs)} |`,
    })
  }
  return out
}

function encryptionSection(results, L, heading) {
  const rows = encryptionCost(results)
  if (!rows.length) return
  const m = results.machine
  const load = (l) => (Array.isArray(l) ? l.map((x) => x.toFixed(2)).join(' / ') : '?')
  L.push(heading)
  L.push('')
  L.push('| N | gets/s @256 Noise | gets/s @256 Plaintext | Noise vs Plaintext | sets/s @256 Noise | sets/s @256 Plaintext | Noise vs Plaintext | CPU per get @256, Noise / Plaintext | CPU per set @256, Noise / Plaintext | get p50 Noise | get p50 Plaintext |')
  L.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of rows) L.push(r.line)
  L.push('')
  L.push(`Same build, same run; for each N the runs alternate between the two; medians of the runs (range). Load average (1 / 5 / 15 min) ${load(m.loadavg)} at the start, ${load(m.loadavgAfter)} at the end: on a shared 2-core machine the rates swing with what else runs, while the CPU time per operation (all threads of the process: JavaScript and Rust) moves much less.`)
  L.push('')
}

module.exports = { renderMarkdown, renderSummary, targets, ratios, encryptionCost, readHeavySection }
