'use strict'
/**
 * A fleet: ring members spread over child processes (bench/fleet/host.js), each process holding
 * many ChordSockets, all of one subnet on 127.0.0.1. The parent decides which process starts
 * each node and through whom it joins, one node at a time, and asks the processes for their
 * nodes' view of the ring, for dict work and for lookups. Used by scripts/scale.js,
 * bench/idle.js and __test__/scale.spec.ts.
 *
 * Also the process meters the harnesses read from outside: CPU time from /proc/<pid>/stat and
 * bytes on the wire from the kernel's per-connection TCP counters (`ss -tinp`, tcp_info). The
 * /proc/<pid>/io counters (rchar/wchar) do not serve for the latter: they count read/write
 * calls on files, not the send/recv calls tokio uses on sockets (measured here: 2,000 sets of
 * 1 KiB on an 8-node ring moved 169 KB of wchar).
 */
const { execFileSync, fork } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { summarize } = require('../stats')

const ROOT = path.resolve(__dirname, '..', '..')
const HOST = path.join(__dirname, 'host.js')
/** A command's answer may take this long by default (dict phases pass their own). */
const CALL_TIMEOUT_MS = 120_000

class Host {
  constructor(index, settings) {
    this.index = index
    this.child = fork(HOST, [JSON.stringify(settings)], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.pid = this.child.pid
    this.exitCode = undefined
    this.pending = new Map()
    this.next = 0
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve(code ?? signal)))
    this.started = new Promise((resolve, reject) => {
      this.exited.then((code) => reject(new Error(`fleet process ${index} exited (${code}) before it was ready`)))
      this.child.on('message', (message) => {
        if (message.ready) return resolve(this)
        const waiter = this.pending.get(message.id)
        this.pending.delete(message.id)
        if (message.ok) waiter?.resolve(message.result)
        else waiter?.reject(new Error(message.error))
      })
    })
    this.started.catch(() => {})
    this.exited.then((code) => {
      this.exitCode = code
      for (const waiter of this.pending.values()) waiter.reject(new Error(`fleet process ${index} exited (${code})`))
      this.pending.clear()
    })
  }

  get alive() {
    return this.exitCode === undefined
  }

  call(cmd, args = {}, timeoutMs = CALL_TIMEOUT_MS) {
    if (!this.alive) return Promise.reject(new Error(`fleet process ${this.index} has exited (${this.exitCode})`))
    const id = this.next++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`fleet process ${this.index} did not answer ${cmd} within ${timeoutMs} ms`))
      }, timeoutMs)
      const settle = (f) => (value) => {
        clearTimeout(timer)
        f(value)
      }
      this.pending.set(id, { resolve: settle(resolve), reject: settle(reject) })
      this.child.send({ id, cmd, args })
    })
  }

  /** SIGKILL: every node of this process vanishes at once, as in a crash. */
  kill() {
    this.child.kill('SIGKILL')
    return this.exited
  }

  /** Destroy the nodes, then let the process go. */
  async stop() {
    if (!this.alive) return
    await this.call('destroy', {}, 30_000).catch(() => {})
    this.child.disconnect?.()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000)
    await this.exited
    clearTimeout(timer)
  }
}

/** Start `processes` fleet processes loading the API from `build` (default: this checkout). */
async function startFleet({ processes, build = ROOT, options = {}, subnet = `fleet-${process.pid}-${Math.random().toString(36).slice(2)}` }) {
  const hosts = Array.from({ length: processes }, (_, i) => new Host(i, { build: path.resolve(build), subnet, options }))
  try {
    await Promise.all(hosts.map((host) => host.started))
  } catch (error) {
    await stopFleet(hosts)
    throw error
  }
  return hosts
}

async function stopFleet(hosts) {
  await Promise.all(hosts.map((host) => host.stop()))
}

/**
 * Start one node per entry of `plan` (the index of the process that holds it), in order, each
 * joining through the first node (`via: 'first'`) or a random earlier member (`'random'`).
 * A refused join is counted with its error code and the run goes on.
 */
async function joinOneByOne(hosts, plan, { via = 'first', onJoin } = {}) {
  const members = []
  const refused = []
  const started = Date.now()
  for (let slot = 0; slot < plan.length; slot++) {
    const host = hosts[plan[slot]]
    const through = members.length === 0 ? null : via === 'random' ? members[Math.floor(Math.random() * members.length)] : members[0]
    const answer = await host.call('add', { via: through ? ['127.0.0.1', through.port] : null })
    if (answer.refused) refused.push({ slot, host: host.index, joinMs: answer.joinMs, ...answer.refused })
    else members.push({ slot, host: host.index, id: answer.id, port: answer.port, joinMs: answer.joinMs })
    onJoin?.({ slot, members: members.length, refused: refused.length, answer })
  }
  return { members, refused, elapsedMs: Date.now() - started }
}

/** Every node's view of its neighbours and connections, from its own process (`stats()`). */
async function ringLinks(hosts) {
  const alive = hosts.filter((host) => host.alive)
  const answers = await Promise.all(alive.map((host) => host.call('links')))
  return answers.flatMap((links, j) => links.map((link) => ({ ...link, host: alive[j].index })))
}

/** Whether `links` form one correct ring (the library's own `isOneRing`). */
function isOneRing(links) {
  const { isOneRing: check } = require(path.join(ROOT, 'lib', 'testnet.js'))
  const members = links.filter((link) => link.member)
  return members.length === links.length && check(members)
}

/** Poll until the live processes' nodes form one correct ring, or `timeoutMs` passes. */
async function waitForOneRing(hosts, timeoutMs, pollMs = 250) {
  const started = Date.now()
  for (;;) {
    const links = await ringLinks(hosts)
    if (isOneRing(links)) return { settled: true, ms: Date.now() - started, links }
    if (Date.now() - started > timeoutMs) return { settled: false, ms: Date.now() - started, links, wrong: misplaced(links) }
    await sleep(pollMs)
  }
}

/** How many members' successor or predecessor is not their neighbour by id. */
function misplaced(links) {
  const ids = links.map((link) => link.id).sort()
  const at = new Map(ids.map((id, i) => [id, i]))
  return links.filter((link) => {
    const i = at.get(link.id)
    return !link.member || link.successor !== ids[(i + 1) % ids.length] || link.predecessor !== ids[(i + ids.length - 1) % ids.length]
  }).length
}

/** Wait until no node's finger count changed for `quietMs` (fix-fingers has done its rounds), at most `timeoutMs`. */
async function waitForFingers(hosts, { quietMs = 3000, timeoutMs = 60_000 } = {}) {
  const started = Date.now()
  let last = ''
  let since = Date.now()
  for (;;) {
    const links = await ringLinks(hosts)
    const shape = links.map((link) => `${link.id}:${link.fingers}`).join(',')
    if (shape !== last) {
      last = shape
      since = Date.now()
    } else if (Date.now() - since >= quietMs) return { quiet: true, ms: Date.now() - started }
    if (Date.now() - started > timeoutMs) return { quiet: false, ms: Date.now() - started }
    await sleep(500)
  }
}

/**
 * Ask every member for its `Info` over the wire (`memberInfo`), each from a node of another
 * process, and compare its successor and predecessor with what its own process reported.
 */
async function crossCheck(hosts, links) {
  const alive = hosts.filter((host) => host.alive)
  const byAsker = new Map(alive.map((host) => [host.index, []]))
  links.forEach((link, j) => {
    const others = alive.filter((host) => host.index !== link.host)
    const asker = others.length > 0 ? others[j % others.length] : alive[0]
    byAsker.get(asker.index).push(link)
  })
  const answers = (await Promise.all(alive.map((host) => host.call('crossCheck', { targets: byAsker.get(host.index) })))).flat()
  const local = new Map(links.map((link) => [link.id, link]))
  const unreachable = {}
  let agree = 0
  const disagree = []
  for (const answer of answers) {
    if (answer.error) {
      unreachable[answer.error] = (unreachable[answer.error] ?? 0) + 1
      continue
    }
    const mine = local.get(answer.id)
    if (mine && mine.successor === answer.successor && mine.predecessor === answer.predecessor) agree++
    else disagree.push(answer.id)
  }
  const firstError = answers.find((answer) => answer.error)
  return { asked: answers.length, agree, disagree, unreachable, firstUnreachable: firstError ? `${firstError.error}: ${firstError.message}` : undefined }
}

/** Merge per-process dict results: operation counts, failures by code, latency summary (µs). */
function mergeOps(results, elapsedMs) {
  const latencies = []
  const errors = {}
  let ops = 0
  for (const r of results) {
    ops += r.ops
    for (const x of r.latencies) if (!Number.isNaN(x)) latencies.push(x)
    for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n
  }
  const failed = Object.values(errors).reduce((a, b) => a + b, 0)
  return { ops, failed, errors, firstError: results.find((r) => r.firstError)?.firstError, elapsedMs, rate: (ops - failed) / (elapsedMs / 1000), latency: summarize(latencies) }
}

/** Write keys 0..total-1, split over the live processes, `depth` in flight in each. */
async function writeKeys(hosts, total, depth = 256) {
  const alive = hosts.filter((host) => host.alive)
  const started = Date.now()
  const results = await Promise.all(alive.map((host, j) => host.call('write', { range: { start: j, step: alive.length, total }, depth }, 30 * 60_000)))
  return { ...mergeOps(results, Date.now() - started), failedKeys: results.flatMap((r) => r.failed).sort((a, b) => a - b) }
}

/**
 * Every live process reads keys 0..total-1 (all of them), `depth` in flight in each. Returns the
 * merged counts (reads that were wrong, missing or failed, over all readers) and the keys any
 * reader did not read right, by kind. Keys in `unacknowledged` (their set rejected) are read
 * too but counted apart: missing them is no fault.
 */
async function readKeys(hosts, total, depth = 256, unacknowledged = []) {
  const alive = hosts.filter((host) => host.alive)
  const started = Date.now()
  const results = await Promise.all(alive.map((host) => host.call('read', { range: { total }, depth }, 30 * 60_000)))
  const merged = mergeOps(results, Date.now() - started)
  const excused = new Set(unacknowledged)
  // Only an absent key is excused by its set having failed: the value written is always the same.
  const counted = (kind) => (i) => kind !== 'missing' || !excused.has(i)
  const count = (kind) => results.reduce((n, r) => n + r[kind].filter(counted(kind)).length, 0)
  const union = (kind) => [...new Set(results.flatMap((r) => r[kind]))].filter(counted(kind)).sort((a, b) => a - b)
  return {
    ...merged,
    readers: alive.length,
    wrong: count('wrong'),
    missing: count('missing'),
    failedReads: count('failed'),
    unacknowledgedMissing: results.reduce((n, r) => n + r.missing.filter((i) => excused.has(i)).length, 0),
    wrongKeys: union('wrong'),
    missingKeys: union('missing'),
    failedKeys: union('failed'),
    firstWrong: results.find((r) => r.firstWrong)?.firstWrong,
  }
}

/** Greedy lookups of `keys` (indices), spread over the live processes: hops and owners. */
async function lookupKeys(hosts, keys) {
  const alive = hosts.filter((host) => host.alive)
  const shares = alive.map((_, j) => keys.filter((_, i) => i % alive.length === j))
  const results = await Promise.all(alive.map((host, j) => host.call('lookups', { keys: shares[j] })))
  const owners = new Map()
  const hops = []
  let failed = 0
  results.forEach((r, j) => {
    failed += r.failed
    shares[j].forEach((key, i) => {
      if (!Number.isNaN(r.hops[i])) hops.push(r.hops[i])
      if (r.owners[i]) owners.set(key, r.owners[i])
    })
  })
  return { samples: keys.length, failed, meanHops: hops.reduce((a, b) => a + b, 0) / Math.max(1, hops.length), maxHops: Math.max(0, ...hops), owners }
}

/** For each key index, the ids of the live nodes holding it locally. */
async function holdersOf(hosts, keys) {
  const alive = hosts.filter((host) => host.alive)
  const answers = await Promise.all(alive.map((host) => host.call('holders', { keys })))
  return keys.map((_, i) => answers.flatMap((a) => a[i]))
}

// ─── Meters read from outside the processes ────────────────────────────────────────────────

let clockTicks
/** Clock ticks per second of /proc/<pid>/stat's utime and stime (`getconf CLK_TCK`, 100 on Linux). */
function ticksPerSecond() {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** CPU time (user + system, every thread) and resident memory of a process, from /proc. */
function procSample(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name "(...)": state is the first, utime the 12th, stime the 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond()
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024
  return { cpuMs, rss }
}

/**
 * TCP counters of every established connection of the given processes, keyed by connection:
 * { pid, sent, received, segsOut } (tcp_info's bytes_sent, bytes_received, segs_out: TCP payload
 * bytes, headers not counted, retransmissions counted in `sent`).
 */
function tcpSample(pids) {
  const wanted = new Set(pids.map(String))
  const text = execFileSync('ss', ['-tinpH', 'state', 'established'], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 })
  const lines = text.split('\n')
  const sockets = new Map()
  for (let i = 0; i < lines.length - 1; i++) {
    const pid = /pid=(\d+)/.exec(lines[i])?.[1]
    if (!pid || !wanted.has(pid)) continue
    const [local, peer] = lines[i].trim().split(/\s+/).slice(2, 4)
    const detail = lines[i + 1]
    const number = (name) => Number(new RegExp(`${name}:(\\d+)`).exec(detail)?.[1] ?? 0)
    sockets.set(`${local} ${peer}`, { pid: Number(pid), sent: number('bytes_sent'), received: number('bytes_received'), segsOut: number('segs_out') })
  }
  return sockets
}

/**
 * What each process spent over a window: CPU ms and TCP bytes/segments sent, from two samples.
 * A connection open at both samples counts its difference, one opened in between counts whole;
 * one closed in between is lost to the count (reported as `closed`).
 */
function windowCost(before, after) {
  const perPid = new Map()
  const entry = (pid) => perPid.get(pid) ?? perPid.set(pid, { sent: 0, received: 0, segsOut: 0, connections: 0 }).get(pid)
  for (const [key, now] of after.tcp) {
    const then = before.tcp.get(key)
    const e = entry(now.pid)
    e.sent += now.sent - (then?.sent ?? 0)
    e.received += now.received - (then?.received ?? 0)
    e.segsOut += now.segsOut - (then?.segsOut ?? 0)
    e.connections++
  }
  let closed = 0
  for (const key of before.tcp.keys()) if (!after.tcp.has(key)) closed++
  return { perPid, closed }
}

/** Sample CPU and TCP counters of `hosts` now. */
function sampleHosts(hosts) {
  const alive = hosts.filter((host) => host.alive)
  return { at: Date.now(), proc: new Map(alive.map((host) => [host.pid, procSample(host.pid)])), tcp: tcpSample(alive.map((host) => host.pid)) }
}

/**
 * Idle cost over `seconds` with nothing asked of the nodes: per process and per node, CPU ms per
 * second and TCP payload bytes (and segments) sent per second. `nodesOf(host)` gives how many
 * nodes a process holds.
 */
async function measureIdle(hosts, seconds, nodesOf) {
  const before = sampleHosts(hosts)
  await sleep(seconds * 1000)
  const after = sampleHosts(hosts)
  const elapsed = (after.at - before.at) / 1000
  const { perPid, closed } = windowCost(before, after)
  const processes = hosts
    .filter((host) => before.proc.has(host.pid) && after.proc.has(host.pid))
    .map((host) => {
      const nodes = nodesOf(host)
      const cpuMs = after.proc.get(host.pid).cpuMs - before.proc.get(host.pid).cpuMs
      const tcp = perPid.get(host.pid) ?? { sent: 0, received: 0, segsOut: 0, connections: 0 }
      return {
        process: host.index,
        pid: host.pid,
        nodes,
        rss: after.proc.get(host.pid).rss,
        cpuMsPerSecondPerNode: cpuMs / elapsed / Math.max(1, nodes),
        sentBytesPerSecondPerNode: tcp.sent / elapsed / Math.max(1, nodes),
        segmentsPerSecondPerNode: tcp.segsOut / elapsed / Math.max(1, nodes),
        cpuMs,
        sentBytes: tcp.sent,
        connections: tcp.connections,
      }
    })
  const nodes = processes.reduce((n, p) => n + p.nodes, 0)
  const sum = (f) => processes.reduce((s, p) => s + f(p), 0)
  return {
    seconds: elapsed,
    nodes,
    cpuMsPerSecondPerNode: sum((p) => p.cpuMs) / elapsed / Math.max(1, nodes),
    sentBytesPerSecondPerNode: sum((p) => p.sentBytes) / elapsed / Math.max(1, nodes),
    segmentsPerSecondPerNode: sum((p) => p.segmentsPerSecondPerNode * p.nodes) / Math.max(1, nodes),
    connectionsClosedDuringWindow: closed,
    processes,
  }
}

/**
 * Which engine a checkout holds: the last commit that changed the engine or the binding
 * (crates/, src/, Cargo.*), and whether they have uncommitted changes.
 */
function describeBuild(dir) {
  const git = (...args) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  try {
    const engine = git('log', '-1', '--format=%h %cs %s', '--', 'crates', 'src', 'Cargo.toml', 'Cargo.lock')
    const dirty = git('status', '--porcelain', '--', 'crates', 'src', 'Cargo.toml', 'Cargo.lock') !== ''
    return `engine of ${engine}${dirty ? ' + uncommitted changes' : ''}`
  } catch {
    return `${path.basename(dir)} (not a git checkout)`
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

module.exports = {
  ROOT,
  startFleet,
  stopFleet,
  joinOneByOne,
  ringLinks,
  isOneRing,
  waitForOneRing,
  waitForFingers,
  crossCheck,
  writeKeys,
  readKeys,
  lookupKeys,
  holdersOf,
  procSample,
  measureIdle,
  describeBuild,
  sleep,
}
