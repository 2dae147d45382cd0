'use strict'
/**
 * Child-side driver of one DHT measurement: starts N nodes of one implementation through an
 * adapter, then runs the phases (sequential latency, throughput at several depths, correctness)
 * and reports each phase to the parent over IPC as soon as it is done, so that a later hang or
 * crash loses nothing already measured. Every phase has its own bound: ops stop being issued
 * when the phase's time budget is spent, and a phase whose in-flight operations do not finish
 * within a grace period is reported as hung (the parent kills the process if even that fails).
 *
 * Adapter: { start(n) -> info?, set(nodeIndex, key, value), get(nodeIndex, key) -> value,
 *            afterSets?(), info?(), stop() }. Values are compared as strings.
 */
const { summarize, nowUs } = require('./stats')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function send(message) {
  if (process.send) process.send(message)
  else process.stdout.write(JSON.stringify(message) + '\n')
}

function rss() {
  if (global.gc) {
    global.gc()
    global.gc()
  }
  return process.memoryUsage().rss
}

function valueFor(i) {
  return `value-${i}-`.padEnd(32, 'x')
}

/** `null` when a read of key `i` returned the value written for it, else what it got instead. */
function wrongRead(i, v) {
  if (v !== undefined && v !== null && String(v) === valueFor(i)) return null
  return `key-${i}: got ${v === undefined || v === null ? String(v) : JSON.stringify(String(v).slice(0, 40))}`
}

function errorText(error) {
  const text = (error && error.message ? String(error.message) : String(error)).replace(/\s+/g, ' ').trim()
  return text.length > 300 ? text.slice(0, 300) + '…' : text
}

/** Run `fn` and settle within `ms`, else resolve to { hung: true }. */
function bounded(promise, ms) {
  let timer
  return Promise.race([
    promise.then((value) => ({ value })),
    new Promise((resolve) => (timer = setTimeout(() => resolve({ hung: true }), ms))),
  ]).finally(() => clearTimeout(timer))
}

async function run(createAdapter, options) {
  const o = {
    nodes: 4,
    seqOps: 2000,
    tpOps: 20000,
    budgetMs: 2500,
    graceMs: 8000,
    startDeadlineMs: 90000,
    concurrency: [1, 16, 256],
    smoke: false,
    ...options,
  }
  const adapter = createAdapter(o)
  const written = [] // indices of keys whose set resolved
  let nextKey = 0
  const n = o.nodes
  const phaseDeadline = o.budgetMs + o.graceMs + 5000

  const begin = (name, deadlineMs) => send({ type: 'phase', name, deadlineMs })
  const result = (name, data) => send({ type: 'result', name, data })

  // ---- start
  begin('start', o.startDeadlineMs)
  const rss0 = rss()
  const t0 = Date.now()
  const startInfo = (await adapter.start(n)) || {}
  const startMs = Date.now() - t0
  await sleep(200)
  const rss1 = rss()
  result('start', { startMs, rssBefore: rss0, rssAfter: rss1, rssPerNode: (rss1 - rss0) / n, ...startInfo })

  // ---- warm-up (not measured, not counted)
  if (!o.smoke) {
    begin('warmup', phaseDeadline)
    const w = Math.min(100, o.seqOps)
    const stopAt = Date.now() + Math.min(o.budgetMs, 2000)
    let ops = 0
    const warm = (async () => {
      for (let i = 0; i < w && Date.now() < stopAt; i++, ops++) await adapter.set(i % n, `warm-${i}`, valueFor(i)).catch(() => {})
      if (adapter.afterSets) await adapter.afterSets()
      for (let i = 0; i < w && Date.now() < stopAt; i++, ops++) await adapter.get((i + 1) % n, `warm-${i}`).catch(() => {})
    })()
    const r = await bounded(warm, phaseDeadline - 2000)
    result('warmup', { ops, hung: !!r.hung })
  }

  // ---- sequential latency
  async function sequential(kind) {
    const name = `${kind}-seq`
    begin(name, phaseDeadline)
    const lat = []
    let errors = 0
    let wrong = 0
    let firstError
    let firstWrong
    let stopped = false
    const stopAt = Date.now() + o.budgetMs
    const keys = kind === 'set' ? null : written.slice(0, o.seqOps)
    const total = kind === 'set' ? o.seqOps : keys.length
    const work = (async () => {
      for (let j = 0; j < total && Date.now() < stopAt && !stopped; j++) {
        const node = (j * 7 + 1) % n
        if (kind === 'set') {
          const i = nextKey++
          const t = nowUs()
          try {
            await adapter.set(node, `key-${i}`, valueFor(i))
            lat.push(nowUs() - t)
            written.push(i)
          } catch (e) {
            errors++
            firstError ??= errorText(e)
          }
        } else {
          const i = keys[j]
          const t = nowUs()
          try {
            const v = await adapter.get(node, `key-${i}`)
            lat.push(nowUs() - t)
            const bad = wrongRead(i, v)
            if (bad) {
              wrong++
              firstWrong ??= bad
            }
          } catch (e) {
            errors++
            firstError ??= errorText(e)
          }
        }
      }
    })()
    const r = await bounded(work, o.budgetMs + o.graceMs)
    stopped = true
    const s = summarize(lat)
    const data = { ops: lat.length + errors, latency: s, errors, firstError }
    if (kind === 'get') Object.assign(data, { checked: lat.length + errors, wrong, firstWrong })
    if (r.hung) data.hung = `an operation did not finish within ${(o.budgetMs + o.graceMs) / 1000} s`
    result(name, data)
  }

  // ---- throughput at a given depth
  async function throughput(kind, depth) {
    const name = `${kind}-c${depth}`
    begin(name, phaseDeadline)
    let issued = 0
    let done = 0
    let errors = 0
    let wrong = 0
    let firstError
    let firstWrong
    let stopped = false
    const pool = written.slice()
    if (kind === 'get' && pool.length === 0) {
      result(name, { ops: 0, rate: null, errors: 0, checked: 0, wrong: 0, skipped: 'no keys were written' })
      return
    }
    const t0 = nowUs()
    const cpu0 = process.cpuUsage()
    const stopAt = Date.now() + o.budgetMs
    let seed = 12345 + depth
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296)
    const worker = async () => {
      while (issued < o.tpOps && Date.now() < stopAt && !stopped) {
        const j = issued++
        const node = j % n
        if (kind === 'set') {
          const i = nextKey++
          try {
            await adapter.set(node, `key-${i}`, valueFor(i))
            written.push(i)
          } catch (e) {
            errors++
            firstError ??= errorText(e)
          }
        } else {
          const i = pool[Math.floor(rand() * pool.length)]
          try {
            const v = await adapter.get(node, `key-${i}`)
            const bad = wrongRead(i, v)
            if (bad) {
              wrong++
              firstWrong ??= bad
            }
          } catch (e) {
            errors++
            firstError ??= errorText(e)
          }
        }
        done++
      }
    }
    const r = await bounded(Promise.all(Array.from({ length: depth }, worker)), o.budgetMs + o.graceMs)
    stopped = true
    const elapsedUs = nowUs() - t0
    // CPU time of this process (every thread: JavaScript and the DHT's own) per operation: less
    // sensitive than the rate to what else runs on a shared machine.
    const cpu = process.cpuUsage(cpu0)
    const cpuUsPerOp = done > 0 ? (cpu.user + cpu.system) / done : null
    const data = { ops: done, elapsedMs: elapsedUs / 1000, rate: r.hung ? null : done / (elapsedUs / 1e6), cpuUsPerOp, errors, firstError }
    if (kind === 'get') Object.assign(data, { checked: done, wrong, firstWrong })
    if (r.hung) data.hung = `${issued - done} of ${issued} operations still in flight ${(o.budgetMs + o.graceMs) / 1000} s after the phase started`
    result(name, data)
  }

  await sequential('set')
  if (adapter.afterSets) await adapter.afterSets()
  await sequential('get')
  if (o.smoke) {
    await throughput('get', 16)
  } else {
    for (const c of o.concurrency) await throughput('set', c)
    if (adapter.afterSets) await adapter.afterSets()
    for (const c of o.concurrency) await throughput('get', c)
  }

  if (adapter.info) {
    begin('info', 30000)
    result('info', await adapter.info())
  }

  begin('stop', 30000)
  const ts = Date.now()
  await adapter.stop()
  result('stop', { stopMs: Date.now() - ts })
  send({ type: 'done' })
}

/** Entry point of a peer file run as a child: `node peers/x.js '<json options>'`. */
function main(createAdapter) {
  const options = JSON.parse(process.argv[2] || '{}')
  process.on('unhandledRejection', (e) => {
    // Some peers reject promises nobody awaits (e.g. js2p timeouts); note them, keep going.
    send({ type: 'warning', message: `unhandled rejection: ${errorText(e)}` })
  })
  run(createAdapter, options).then(
    () => {
      // Peers may leave timers or sockets behind; the measurement is complete, so leave.
      setTimeout(() => process.exit(0), 100)
    },
    (e) => {
      send({ type: 'fatal', message: errorText(e) })
      setTimeout(() => process.exit(2), 100)
    },
  )
}

module.exports = { run, main, valueFor, sleep, send, bounded, errorText }
