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
 *
 * `options.workloads` picks what runs after the start: 'standard' (the default: sequential
 * latency, then sets and gets at each depth) and/or 'read-heavy' (readHeavy() below).
 */
const { summarize, nowUs } = require('./stats')
const { rng, zipfSampler, selfCheck } = require('./zipf')

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

/**
 * The read-heavy workload: `keys` keys, all written once before it starts, then operations of
 * which a share `getShare` are gets and the rest sets, each on a key drawn from Zipf(keys,
 * exponent), with each of `depths` operations in flight in turn. The draws are deterministic
 * from `seed`.
 */
const READ_HEAVY = { keys: 10000, exponent: 0.99, getShare: 0.95, depths: [1, 256], preloadDepth: 256, preloadBudgetMs: 60000, seed: 20261127 }

/** Key k of the read-heavy workload, and its value after write `seq` (0 = the pre-write). */
const rhKey = (k) => `rh-${k}`
const rhValue = (k, seq) => `rh${k}:${seq}`

/** [key, seq] of a read-heavy value, or null when it is not one. */
function parseRhValue(v) {
  if (v === undefined || v === null) return null
  const m = /^rh(\d+):(\d+)$/.exec(String(v))
  return m ? [Number(m[1]), Number(m[2])] : null
}

function describe(v) {
  return v === undefined || v === null ? String(v) : JSON.stringify(String(v).slice(0, 40))
}

/**
 * Phases rh-load (every key written once, the Zipf sampler checked) and rh-c<depth> for each
 * depth. Writes to one key never overlap (a set drawn for a key whose write is still in flight
 * draws another key), so per key the write order is the acknowledgement order. A get is checked
 * against the last write acknowledged before it began: it must return that write or a newer one
 * issued since; an older write counts as stale, anything else (missing, another key's value, a
 * write never issued) as wrong.
 */
async function readHeavy(adapter, o, begin, result) {
  const rh = o.readHeavy
  const n = o.nodes
  const keys = rh.keys
  const acked = new Int32Array(keys).fill(-1) // per key: the last write whose set resolved
  const issued = new Int32Array(keys).fill(-1) // per key: the last write issued (resolved, failed or in flight)
  const inFlight = new Uint8Array(keys) // per key: 1 while its (only) write is in flight

  // ---- rh-load: check the sampler, then write every key once, `preloadDepth` sets in flight.
  const loadDeadline = rh.preloadBudgetMs + o.graceMs + 10000
  begin('rh-load', loadDeadline)
  const check = selfCheck({ n: keys, s: rh.exponent, samples: 200000, seed: rh.seed })
  if (!check.ok) {
    send({ type: 'error', name: 'rh-load', message: `the Zipf sampler failed its self-check: ${check.problems.join('; ')}` })
    return
  }
  const t0 = Date.now()
  const stopAt = t0 + rh.preloadBudgetMs
  let errors = 0
  let firstError
  let stopped = false
  const writeAll = async (list) => {
    const failed = []
    let next = 0
    const worker = async () => {
      while (next < list.length && Date.now() < stopAt && !stopped) {
        const k = list[next++]
        issued[k] = 0
        try {
          await adapter.set(k % n, rhKey(k), rhValue(k, 0))
          acked[k] = 0
        } catch (e) {
          errors++
          firstError ??= errorText(e)
          failed.push(k)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(rh.preloadDepth, list.length) }, worker))
    return failed
  }
  const load = (async () => {
    const failed = await writeAll(Array.from({ length: keys }, (_, k) => k))
    if (failed.length) await writeAll(failed) // one more try for the keys whose set failed
    if (adapter.afterSets) await adapter.afterSets()
  })()
  const r = await bounded(load, rh.preloadBudgetMs + o.graceMs)
  stopped = true
  let written = 0
  for (let k = 0; k < keys; k++) if (acked[k] === 0) written++
  const loadMs = Date.now() - t0
  if (r.hung || written < keys) {
    const why = r.hung ? `sets still in flight ${(rh.preloadBudgetMs + o.graceMs) / 1000} s after it began` : Date.now() >= stopAt ? `its ${rh.preloadBudgetMs / 1000} s budget ran out` : `sets failed`
    send({ type: 'error', name: 'rh-load', message: `pre-write incomplete (${why}): ${written.toLocaleString('en-US')} of ${keys.toLocaleString('en-US')} keys written in ${(loadMs / 1000).toFixed(1)} s${errors ? `, ${errors} sets failed, first: ${firstError}` : ''}` })
    return
  }
  result('rh-load', { keys, written, loadMs, setsPerSecond: keys / (loadMs / 1000), retried: errors, firstError, zipf: { pRank0: check.pRank0, pTop10: check.pTop10, checkMs: check.ms, checks: check.checks } })

  // ---- rh-c<depth>
  for (const depth of rh.depths) {
    const name = `rh-c${depth}`
    begin(name, o.budgetMs + o.graceMs + 5000)
    const zipf = zipfSampler(keys, rh.exponent, rh.seed + depth)
    const random = rng(rh.seed * 31 + depth)
    const getLat = []
    const setLat = []
    let issuedOps = 0
    let done = 0
    let gets = 0
    let sets = 0
    let stale = 0
    let wrong = 0
    let newer = 0
    let errors = 0
    let setErrors = 0
    let redrawn = 0
    let firstStale
    let firstWrong
    let firstError
    let stopped = false
    const stopAt = Date.now() + o.budgetMs
    const t0 = nowUs()
    const cpu0 = process.cpuUsage()
    const worker = async () => {
      while (issuedOps < o.tpOps && Date.now() < stopAt && !stopped) {
        const j = issuedOps++
        const node = j % n
        let k = zipf.next()
        let write = random() >= rh.getShare
        if (write && inFlight[k]) {
          redrawn++
          for (let tries = 0; tries < 16 && inFlight[k]; tries++) k = zipf.next()
          if (inFlight[k]) write = false
        }
        if (write) {
          const seq = ++issued[k]
          inFlight[k] = 1
          const t = nowUs()
          try {
            await adapter.set(node, rhKey(k), rhValue(k, seq))
            setLat.push(nowUs() - t)
            acked[k] = seq
          } catch (e) {
            setErrors++
            firstError ??= `set: ${errorText(e)}`
          }
          inFlight[k] = 0
          sets++
        } else {
          const floor = acked[k]
          const t = nowUs()
          try {
            const v = await adapter.get(node, rhKey(k))
            getLat.push(nowUs() - t)
            const got = parseRhValue(v)
            if (!got || got[0] !== k || got[1] > issued[k]) {
              wrong++
              firstWrong ??= `${rhKey(k)}: got ${describe(v)}, expected write ${floor} or newer`
            } else if (got[1] < floor) {
              stale++
              firstStale ??= `${rhKey(k)}: got write ${got[1]}, write ${floor} was acknowledged before the get began`
            } else if (got[1] > floor) newer++
          } catch (e) {
            errors++
            firstError ??= `get: ${errorText(e)}`
          }
          gets++
        }
        done++
      }
    }
    const r = await bounded(Promise.all(Array.from({ length: depth }, worker)), o.budgetMs + o.graceMs)
    stopped = true
    const elapsedUs = nowUs() - t0
    const cpu = process.cpuUsage(cpu0)
    const data = {
      depth,
      ops: done,
      gets,
      sets,
      elapsedMs: elapsedUs / 1000,
      rate: r.hung ? null : done / (elapsedUs / 1e6),
      cpuUsPerOp: done > 0 ? (cpu.user + cpu.system) / done : null,
      getLatency: summarize(getLat),
      setLatency: summarize(setLat),
      checked: gets,
      stale,
      firstStale,
      wrong,
      firstWrong,
      newer,
      errors,
      setErrors,
      firstError,
      redrawn,
    }
    if (r.hung) data.hung = `${issuedOps - done} of ${issuedOps} operations still in flight ${(o.budgetMs + o.graceMs) / 1000} s after the phase started`
    result(name, data)
  }
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
    workloads: ['standard'],
    ...options,
  }
  o.readHeavy = { ...READ_HEAVY, ...(options.readHeavy || {}) }
  const standard = o.workloads.includes('standard')
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
  if (standard && !o.smoke) {
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
    // 32-bit LCG; Math.imul keeps the product exact (a plain `*` overflows 2^53 and the
    // sequence fell into cycles of a few thousand: gets re-read a small hot set).
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296)
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

  if (standard) {
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
  }

  if (o.workloads.includes('read-heavy')) await readHeavy(adapter, o, begin, result)

  if (standard && adapter.info) {
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

module.exports = { run, main, valueFor, sleep, send, bounded, errorText, READ_HEAVY, rhKey, rhValue, parseRhValue }
