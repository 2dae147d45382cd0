#!/usr/bin/env node
'use strict'
/**
 * `npm run bench`: chordnet against other DHTs for Node.js, all nodes of one implementation in
 * one child process on 127.0.0.1, plus the floors (a raw loopback TCP round trip) and chordnet's
 * MeshSocket whisper / broadcast figures.
 *
 *   node bench/run.js [--quick] [--smoke] [--peers chordnet,hyperdht,...] [--nodes 4,16]
 *                     [--ops N] [--repeat K] [--budget MS] [--out DIR]
 *                     [--workloads standard,read-heavy] [--no-read-heavy]
 *
 * Two workloads. `standard`: sequential set and get latency, then sets and gets with 1, 16 and
 * 256 operations in flight, at every N. `read-heavy`: 95 % gets and 5 % sets on keys drawn
 * from a Zipf distribution (exponent 0.99) over 10,000 keys, all written beforehand, with 1 and
 * 256 operations in flight, on a fresh ring of 16 nodes (of the largest N asked for when 16 is
 * not); every get must return the last value acknowledged before it began, or a newer one, and
 * a get that returns an older value counts as stale. The pre-write has max(60 s, 48 × budget);
 * a peer that cannot write every key in that time gets a row saying so. Its floor row, peer
 * `map`, is a JavaScript Map behind async functions. Both workloads run by default (`--smoke`:
 * standard only); `--no-read-heavy` leaves the read-heavy one out, and `--workloads
 * read-heavy` runs it alone (without the loopback TCP and MeshSocket floors), the quick way
 * to measure it:
 *   node bench/run.js --workloads read-heavy --peers chordnet,map
 *
 * Each measurement runs in a child process that reports every phase as soon as it is done; the
 * parent gives every phase a deadline and kills a child that misses it, so a peer that hangs,
 * crashes or reads back wrong values gets a row saying so and the run always ends by itself.
 * `chordnet` runs with Noise (the default) and `chordnet-plaintext` is the same build in
 * Plaintext: the report's "What Noise costs" section sets the two side by side (for the
 * Noise, Plaintext and on-disk comparison: --peers chordnet,chordnet-plaintext,chordnet-disk --repeat 3 --out bench/results/variants).
 * Writes DIR/bench.md, DIR/bench.svg, DIR/BENCH_SUMMARY.md and DIR/results.json (DIR defaults
 * to bench/results) and prints the table. `--smoke` (for the test suite): chordnet with 4 nodes
 * and 50 operations (in memory and on disk) plus hyperdht at the same tiny size, correctness only; exits non-zero if any
 * value read back is wrong or chordnet does not complete. Two peers run only when named, to
 * measure the web view's cost: `chordnet-view` (node 0 serves it, nobody watches) and
 * `chordnet-page` (its page open in headless Chromium throughout).
 */
const { fork } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { median } = require('./stats')
const { renderMarkdown, renderSummary } = require('./report')
const { renderChart } = require('./chart')
const { READ_HEAVY } = require('./harness')

const HERE = __dirname
const ROOT = path.resolve(HERE, '..')

function version(pkg) {
  try {
    return require(path.join(ROOT, 'node_modules', pkg, 'package.json')).version
  } catch {
    return null
  }
}

/** The implementations. `repeat` is the default number of runs (overridden by --repeat). */
const PEERS = {
  chordnet: { file: 'peers/chordnet.js', label: `chordnet ${require(path.join(ROOT, 'package.json')).version}`, repeat: 1, ours: true },
  // The same build without encryption: the bench table shows what Noise costs.
  'chordnet-plaintext': { file: 'peers/chordnet.js', label: `chordnet ${require(path.join(ROOT, 'package.json')).version} (Plaintext)`, repeat: 1, ours: true, options: { encryption: 'Plaintext' } },
  // The same ring without the read cache (cacheBytes 0): every get crosses the network.
  'chordnet-nocache': { file: 'peers/chordnet.js', label: `chordnet ${require(path.join(ROOT, 'package.json')).version} (no read cache)`, repeat: 1, ours: true, options: { cacheBytes: 0 }, workloads: ['read-heavy'] },
  // The same ring with every node on disk (dataDir, durability 'sync'): compared with the row above.
  'chordnet-disk': { file: 'peers/chordnet.js', label: `chordnet ${require(path.join(ROOT, 'package.json')).version} (dataDir, sync)`, repeat: 1, ours: true, options: { disk: true } },
  hyperdht: { file: 'peers/hyperdht.js', label: `hyperdht ${version('hyperdht')} (mutable)`, repeat: 1, options: { variant: 'mutable' } },
  'hyperdht-immutable': { file: 'peers/hyperdht.js', label: `hyperdht ${version('hyperdht')} (immutable)`, repeat: 1, options: { variant: 'immutable' } },
  js2p: { file: 'peers/js2p.js', label: `js2p ${version('js2p')}`, repeat: 3, options: { graceMs: 6000 }, note: 'set is fire-and-forget' },
  'kad-dht': { file: 'peers/kad-dht.js', label: '@libp2p/kad-dht', repeat: 1 },
  // The floor of the read-heavy workload: a Map in the child's process, one "node", nothing else.
  map: { file: 'peers/map.js', label: 'JavaScript Map (awaited, floor)', repeat: 1, floor: true, nodes: 1, workloads: ['read-heavy'] },
  // The cost of the web view (run only when named): served by node 0 with nobody watching, and
  // with its page open in headless Chromium (which shares the machine's cores).
  'chordnet-view': { file: 'peers/chordnet.js', label: 'chordnet (web view served, no page open)', repeat: 1, options: { view: 'server' }, optIn: true },
  'chordnet-page': { file: 'peers/chordnet.js', label: 'chordnet (web view page open in Chromium)', repeat: 1, options: { view: 'page' }, optIn: true },
}

const WORKLOADS = ['standard', 'read-heavy']

function parseArgs(argv) {
  const args = { quick: false, smoke: false, peers: null, nodes: null, ops: null, repeat: null, budget: null, out: null, workloads: null, noReadHeavy: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--quick') args.quick = true
    else if (a === '--smoke') args.smoke = true
    else if (a === '--peers') args.peers = value().split(',').map((s) => s.trim()).filter(Boolean)
    else if (a === '--nodes') args.nodes = value().split(',').map(Number)
    else if (a === '--ops') args.ops = Number(value())
    else if (a === '--repeat') args.repeat = Number(value())
    else if (a === '--budget') args.budget = Number(value())
    else if (a === '--out') args.out = path.resolve(value())
    else if (a === '--workloads') args.workloads = value().split(',').map((s) => s.trim()).filter(Boolean)
    else if (a === '--no-read-heavy') args.noReadHeavy = true
    else if (a === '--help' || a === '-h') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('*/')[0].replace(/^#!.*\n'use strict'\n\/\*\*\n/, '').replace(/^ \* ?/gm, '') + '\n')
      process.exit(0)
    } else throw new Error(`unknown argument ${a} (see --help)`)
  }
  for (const p of args.peers ?? []) if (!PEERS[p]) throw new Error(`unknown peer ${p}; known: ${Object.keys(PEERS).join(', ')}`)
  for (const n of args.nodes ?? []) if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`--nodes takes integers 1..64 (got ${n})`)
  if (args.ops !== null && !(Number.isInteger(args.ops) && args.ops > 0)) throw new Error('--ops takes a positive integer')
  if (args.repeat !== null && !(Number.isInteger(args.repeat) && args.repeat > 0)) throw new Error('--repeat takes a positive integer')
  for (const w of args.workloads ?? []) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}; known: ${WORKLOADS.join(', ')}`)
  if (args.workloads && args.workloads.length === 0) throw new Error('--workloads needs at least one workload')
  if (args.noReadHeavy && args.workloads) throw new Error('--no-read-heavy and --workloads: use one or the other')
  return args
}

/**
 * Run one child and collect its phase reports. A phase that outlives its deadline (sent by the
 * child when the phase starts) or the whole-run deadline gets the child killed.
 */
function runChild(file, options, { firstPhaseDeadlineMs = 30000, totalDeadlineMs = Infinity } = {}) {
  return new Promise((resolve) => {
    const started = Date.now()
    const run = { phases: {}, order: [], warnings: [], status: 'ok', detail: null, wallMs: 0 }
    let current = null
    let finished = false
    let output = ''
    const child = fork(path.join(HERE, file), [JSON.stringify(options)], {
      cwd: ROOT,
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    const keep = (chunk) => {
      output = (output + chunk.toString()).slice(-4000)
    }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    let timer = null
    let totalTimer = null
    const arm = (ms, why) => {
      clearTimeout(timer)
      timer = setTimeout(() => kill(why), ms)
    }
    const kill = (why) => {
      if (finished) return
      run.status = 'timeout'
      run.detail = why
      if (current && !run.phases[current]) run.phases[current] = { status: 'timeout' }
      child.kill('SIGKILL')
    }
    arm(firstPhaseDeadlineMs, `no report within ${firstPhaseDeadlineMs / 1000} s of starting`)
    if (Number.isFinite(totalDeadlineMs)) totalTimer = setTimeout(() => kill(`the whole run exceeded ${totalDeadlineMs / 1000} s`), totalDeadlineMs)
    child.on('message', (m) => {
      if (m.type === 'phase') {
        current = m.name
        run.order.push(m.name)
        arm(m.deadlineMs, `phase ${m.name} exceeded its ${m.deadlineMs / 1000} s deadline`)
      } else if (m.type === 'result') {
        run.phases[m.name] = { status: 'ok', data: m.data }
        if (m.data && m.data.hung && run.status === 'ok') {
          run.status = 'hung'
          run.detail = `${m.name}: ${m.data.hung}`
        }
      } else if (m.type === 'error') {
        run.phases[m.name] = { status: 'error', message: m.message }
        if (run.status === 'ok') {
          run.status = 'error'
          run.detail = `${m.name}: ${m.message}`
        }
      } else if (m.type === 'warning') {
        if (run.warnings.length < 5) run.warnings.push(m.message)
      } else if (m.type === 'unavailable') {
        run.status = 'unavailable'
        run.detail = m.reason
      } else if (m.type === 'fatal') {
        run.status = 'crashed'
        run.detail = `${current ? `in ${current}: ` : ''}${m.message}`
      } else if (m.type === 'done') {
        finished = true
        clearTimeout(timer)
      }
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(totalTimer)
      run.wallMs = Date.now() - started
      if (!finished && run.status === 'ok') {
        run.status = 'crashed'
        run.detail = `exited with ${signal ? `signal ${signal}` : `code ${code}`}${current ? ` during ${current}` : ''}: ${lastLines(output)}`
      }
      resolve(run)
    })
  })
}

function lastLines(text) {
  const lines = text.trim().split('\n').filter(Boolean)
  return lines.slice(-3).join(' | ').slice(0, 400) || '(no output)'
}

function machineInfo() {
  let cpu = os.cpus()[0]?.model ?? 'unknown'
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))
    if (m) cpu = m[1].trim()
  } catch {}
  return {
    cpu,
    cores: os.cpus().length,
    memoryGiB: os.totalmem() / 2 ** 30,
    loadavg: os.loadavg(),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
  }
}

/** Collapse repeated runs of one (peer, N) into one row: medians, with min–max kept. */
function aggregate(peer, n, runs) {
  const metric = (get) => {
    const values = runs.map(get).filter((x) => typeof x === 'number' && Number.isFinite(x))
    return values.length ? { value: median(values), min: Math.min(...values), max: Math.max(...values), count: values.length } : null
  }
  const phase = (run, name) => (run.phases[name] && run.phases[name].status === 'ok' ? run.phases[name].data : null)
  const row = {
    peer,
    label: PEERS[peer].label,
    ours: !!PEERS[peer].ours,
    note: PEERS[peer].note ?? null,
    nodes: n,
    runs: runs.length,
    statuses: runs.map((r) => (r.status === 'ok' ? 'ok' : `${r.status}${r.detail ? `: ${r.detail}` : ''}`)),
    setP50: metric((r) => phase(r, 'set-seq')?.latency?.p50),
    setP99: metric((r) => phase(r, 'set-seq')?.latency?.p99),
    getP50: metric((r) => phase(r, 'get-seq')?.latency?.p50),
    getP99: metric((r) => phase(r, 'get-seq')?.latency?.p99),
    setSamples: metric((r) => phase(r, 'set-seq')?.latency?.n),
    getSamples: metric((r) => phase(r, 'get-seq')?.latency?.n),
    rssPerNode: metric((r) => phase(r, 'start')?.rssPerNode),
    startMs: metric((r) => phase(r, 'start')?.startMs),
    info: runs.map((r) => phase(r, 'info')).find(Boolean) ?? null,
    routingTables: runs.map((r) => phase(r, 'start')?.routingTableSizes).filter(Boolean),
    throughput: {},
    cpuUsPerOp: {},
    correctness: { checked: 0, wrong: 0, errors: 0, firstWrong: null, firstError: null },
  }
  for (const kind of ['set', 'get']) {
    for (const c of [1, 16, 256]) row.throughput[`${kind}-c${c}`] = metric((r) => phase(r, `${kind}-c${c}`)?.rate)
    row.cpuUsPerOp[kind] = metric((r) => phase(r, `${kind}-c256`)?.cpuUsPerOp)
  }
  for (const r of runs) {
    for (const [name, p] of Object.entries(r.phases)) {
      if (p.status !== 'ok' || !p.data) continue
      const d = p.data
      if (name.startsWith('get-') && typeof d.checked === 'number') {
        row.correctness.checked += d.checked
        row.correctness.wrong += d.wrong || 0
        row.correctness.errors += d.errors || 0
        row.correctness.firstWrong ??= d.firstWrong ?? null
      }
      if (d.errors) row.correctness.firstError ??= `${name}: ${d.firstError}`
      if (name.startsWith('set-') && d.errors) row.correctness.setErrors = (row.correctness.setErrors || 0) + d.errors
    }
  }
  row.ok = runs.every((r) => r.status === 'ok') && row.correctness.wrong === 0 && row.correctness.errors === 0 && !row.correctness.setErrors
  row.unavailable = runs.every((r) => r.status === 'unavailable') ? runs[0].detail : null
  return row
}

/**
 * Collapse the read-heavy runs of one peer into one row: medians of the rates and of the get
 * latencies with 1 in flight (and 256), sums of the checks.
 */
function aggregateReadHeavy(peer, n, runs, depths) {
  const metric = (get) => {
    const values = runs.map(get).filter((x) => typeof x === 'number' && Number.isFinite(x))
    return values.length ? { value: median(values), min: Math.min(...values), max: Math.max(...values), count: values.length } : null
  }
  const phase = (run, name) => (run.phases[name] && run.phases[name].status === 'ok' ? run.phases[name].data : null)
  const spec = PEERS[peer]
  const row = {
    peer,
    label: spec.label,
    ours: !!spec.ours,
    floor: !!spec.floor,
    note: spec.note ?? null,
    nodes: n,
    runs: runs.length,
    statuses: runs.map((r) => (r.status === 'ok' ? 'ok' : `${r.status}${r.detail ? `: ${r.detail}` : ''}`)),
    rate: {},
    getP50: {},
    getP99: {},
    setP50: {},
    loadMs: metric((r) => phase(r, 'rh-load')?.loadMs),
    checked: 0,
    stale: 0,
    wrong: 0,
    newer: 0,
    errors: 0,
    setErrors: 0,
    sets: 0,
    redrawn: 0,
    firstStale: null,
    firstWrong: null,
    firstError: null,
  }
  for (const d of depths) {
    const name = `rh-c${d}`
    row.rate[`c${d}`] = metric((r) => phase(r, name)?.rate)
    row.getP50[`c${d}`] = metric((r) => phase(r, name)?.getLatency?.p50)
    row.getP99[`c${d}`] = metric((r) => phase(r, name)?.getLatency?.p99)
    row.setP50[`c${d}`] = metric((r) => phase(r, name)?.setLatency?.p50)
    for (const r of runs) {
      const x = phase(r, name)
      if (!x) continue
      row.checked += x.checked
      row.stale += x.stale
      row.wrong += x.wrong
      row.newer += x.newer
      row.errors += x.errors
      row.setErrors += x.setErrors
      row.sets += x.sets
      row.redrawn += x.redrawn
      row.firstStale ??= x.firstStale ?? null
      row.firstWrong ??= x.firstWrong ?? null
      if (x.firstError) row.firstError ??= `${name}: ${x.firstError}`
    }
  }
  row.ok = runs.every((r) => r.status === 'ok') && row.checked > 0 && row.stale === 0 && row.wrong === 0 && row.errors === 0 && row.setErrors === 0
  row.unavailable = runs.length > 0 && runs.every((r) => r.status === 'unavailable') ? runs[0].detail : null
  return row
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const smoke = args.smoke
  const quick = args.quick
  const outDir = args.out ?? path.join(HERE, 'results')
  const budgetMs = args.budget ?? (smoke ? 1000 : quick ? 700 : 2500)
  const nodesList = args.nodes ?? (smoke ? [4] : [4, 16])
  const peers = args.peers ?? (smoke ? ['chordnet', 'chordnet-disk', 'hyperdht'] : Object.keys(PEERS).filter((p) => !PEERS[p].optIn))
  const tpOps = args.ops ?? (smoke ? 50 : quick ? 10000 : 50000)
  const seqOps = Math.min(tpOps, smoke ? 50 : 2000)
  const workloads = args.workloads ?? (smoke || args.noReadHeavy ? ['standard'] : WORKLOADS)
  const standard = workloads.includes('standard')
  // The read-heavy workload runs on rings of 16 nodes (of the largest N asked for without 16).
  const readHeavy = workloads.includes('read-heavy')
    ? { ...READ_HEAVY, nodes: nodesList.includes(16) ? 16 : Math.max(...nodesList), preloadBudgetMs: Math.max(60000, 48 * budgetMs) }
    : null
  const started = Date.now()
  const log = (s) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${s}\n`)
  const info = machineInfo()
  log(`${info.cpu}, ${info.cores} cores, Node ${info.node}; peers ${peers.join(', ')}; N = ${nodesList.join(', ')}; ${smoke ? 'smoke' : quick ? 'quick' : 'full'} run; workloads ${workloads.join(', ')}${readHeavy ? ` (read-heavy at N = ${readHeavy.nodes})` : ''}`)
  for (const peer of peers) {
    const only = PEERS[peer].workloads
    if (only && !only.some((w) => workloads.includes(w))) log(`${PEERS[peer].label} runs only the ${only.join(', ')} workload: skipped`)
  }

  const results = { machine: info, mode: smoke ? 'smoke' : quick ? 'quick' : 'full', settings: { budgetMs, tpOps, seqOps, nodes: nodesList, peers, workloads, readHeavy }, floors: {}, rows: [], readHeavy: [] }

  // Stop children on Ctrl-C: fork()ed children share our process group, so they get it too.
  process.on('SIGINT', () => process.exit(130))

  if (!smoke && standard) {
    log('raw loopback TCP round trip')
    const raw = await runChild('raw-tcp.js', { budgetMs: Math.max(budgetMs, 1000), count: 20000 })
    results.floors.rawTcp = raw.phases.rtt?.data ?? null
    results.floors.rawTcpStatus = raw.status === 'ok' ? 'ok' : `${raw.status}: ${raw.detail}`
    if (!peers.includes('chordnet')) log('chordnet not selected: skipping the MeshSocket figures')
    else {
      log('chordnet MeshSocket whisper round trip and 10-node broadcast')
      const mesh = await runChild('mesh.js', { budgetMs: Math.max(budgetMs, 1000), count: 5000, reps: 300 })
      results.floors.whisper = mesh.phases.whisper?.status === 'ok' ? mesh.phases.whisper.data : null
      results.floors.broadcast = mesh.phases.broadcast?.status === 'ok' ? mesh.phases.broadcast.data : null
      results.floors.meshStatus = mesh.status === 'ok' ? 'ok' : `${mesh.status}: ${mesh.detail}`
    }
  }

  // N-major, and repeated runs round-robin over the peers, so runs of one size follow each
  // other closely (chordnet with and without Noise alternate under the same load); rows are
  // reported peer-major.
  // The read-heavy workload of a peer runs in a child of its own (a fresh ring), right after the
  // standard one of the same peer, N and round.
  const gone = new Set()
  const unavailable = new Map() // peer -> its run that said it cannot run here
  const does = (peer, workload) => workloads.includes(workload) && (PEERS[peer].workloads ?? WORKLOADS).includes(workload)
  for (const n of nodesList) {
    const withReadHeavy = readHeavy && n === readHeavy.nodes
    const repeatOf = (peer) => args.repeat ?? (smoke || quick ? 1 : PEERS[peer].repeat)
    const runsOf = new Map(peers.map((peer) => [peer, []]))
    const rhRunsOf = new Map(peers.map((peer) => [peer, []]))
    const rounds = Math.max(...peers.map(repeatOf))
    for (let k = 0; k < rounds; k++) {
      for (const peer of peers) {
        const spec = PEERS[peer]
        const runs = runsOf.get(peer)
        if (k >= repeatOf(peer)) continue
        if (does(peer, 'standard') && !gone.has(peer) && !runs.some((r) => r.status === 'unavailable')) {
          log(`${spec.label}, ${n} nodes${repeatOf(peer) > 1 ? `, run ${k + 1}/${repeatOf(peer)}` : ''}`)
          const options = { nodes: n, seqOps, tpOps, budgetMs, smoke, ...(spec.options || {}) }
          // In smoke mode, a peer other than ours gets 20 s in all: it is there only if it is fast.
          const total = smoke && !spec.ours ? 20000 : smoke ? 100000 : 30000 + 16 * (budgetMs + 20000)
          const run = await runChild(spec.file, options, { totalDeadlineMs: total })
          log(`  -> ${run.status}${run.detail ? ` (${run.detail.slice(0, 200)})` : ''} in ${(run.wallMs / 1000).toFixed(1)} s`)
          runs.push(run)
          if (run.status === 'unavailable') unavailable.set(peer, run)
        }
        if (withReadHeavy && does(peer, 'read-heavy')) {
          const rhRuns = rhRunsOf.get(peer)
          if (unavailable.has(peer)) {
            if (rhRuns.length === 0) rhRuns.push(unavailable.get(peer)) // its row says why
            continue
          }
          const nodes = spec.nodes ?? n
          log(`${spec.label}, ${nodes} node${nodes === 1 ? '' : 's'}, read-heavy${repeatOf(peer) > 1 ? `, run ${k + 1}/${repeatOf(peer)}` : ''}`)
          const options = { nodes, seqOps, tpOps, budgetMs, smoke, ...(spec.options || {}), workloads: ['read-heavy'], readHeavy }
          const total = smoke && !spec.ours ? 20000 : 120000 + readHeavy.preloadBudgetMs + readHeavy.depths.length * (budgetMs + 20000)
          const run = await runChild(spec.file, options, { totalDeadlineMs: total })
          log(`  -> ${run.status}${run.detail ? ` (${run.detail.slice(0, 200)})` : ''} in ${(run.wallMs / 1000).toFixed(1)} s`)
          rhRuns.push(run)
          if (run.status === 'unavailable') unavailable.set(peer, run)
        }
      }
    }
    for (const peer of peers) {
      const runs = runsOf.get(peer)
      const rhRuns = rhRunsOf.get(peer)
      if (rhRuns.length) results.readHeavy.push({ ...aggregateReadHeavy(peer, PEERS[peer].nodes ?? n, rhRuns, readHeavy.depths), rawRuns: rhRuns })
      if (gone.has(peer) || runs.length === 0) continue
      results.rows.push({ ...aggregate(peer, n, runs), rawRuns: runs })
      if (runs.every((r) => r.status === 'unavailable')) gone.add(peer) // one row says why, not one per N
    }
  }
  results.rows.sort((a, b) => peers.indexOf(a.peer) - peers.indexOf(b.peer) || a.nodes - b.nodes)
  results.machine.loadavgAfter = os.loadavg()
  results.wallSeconds = (Date.now() - started) / 1000

  fs.mkdirSync(outDir, { recursive: true })
  const markdown = renderMarkdown(results)
  fs.writeFileSync(path.join(outDir, 'bench.md'), markdown)
  fs.writeFileSync(path.join(outDir, 'bench.svg'), renderChart(results))
  fs.writeFileSync(path.join(outDir, 'BENCH_SUMMARY.md'), renderSummary(results))
  fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n')
  process.stdout.write(markdown + '\n')
  log(`wrote ${path.relative(process.cwd(), outDir) || '.'}/{bench.md,bench.svg,BENCH_SUMMARY.md,results.json} in ${results.wallSeconds.toFixed(0)} s`)

  // Exit status: wrong values anywhere fail; so does chordnet not completing. In the read-heavy
  // workload, a stale or wrong read of ours fails the run too.
  for (const r of results.readHeavy.filter((r) => r.ours && (r.stale || r.wrong))) log(`READ-HEAVY: ${r.label}: ${r.stale} stale and ${r.wrong} wrong of ${r.checked} gets (${r.firstStale ?? r.firstWrong})`)
  const rhWrong = results.readHeavy.some((r) => r.ours && (r.stale || r.wrong))
  const wrong = results.rows.filter((r) => r.correctness.wrong > 0)
  const oursBroken = results.rows.filter((r) => r.ours && !r.ok)
  if (smoke) {
    for (const r of wrong) log(`WRONG VALUES: ${r.label} with ${r.nodes} nodes: ${r.correctness.wrong} of ${r.correctness.checked} (${r.correctness.firstWrong})`)
    for (const r of oursBroken) log(`chordnet did not complete cleanly with ${r.nodes} nodes: ${r.statuses.join('; ')} ${r.correctness.firstError ?? ''}`)
    const checkedOurs = results.rows.filter((r) => r.ours).every((r) => r.correctness.checked > 0)
    process.exitCode = wrong.length || oursBroken.length || !checkedOurs || rhWrong ? 1 : 0
  } else {
    process.exitCode = wrong.some((r) => r.ours) || rhWrong ? 1 : 0
  }
}

main().catch((e) => {
  process.stderr.write(`bench: ${e && e.stack ? e.stack : e}\n`)
  process.exit(2)
})
