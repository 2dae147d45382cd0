#!/usr/bin/env node
'use strict'
/**
 * `npm run bench:attack`: what an attacker takes from legitimate users of a ring. A ring of
 * chordnet nodes with a network key runs in one child process, a key-holding client in another
 * reads from it (gets/s and latency, and a newcomer trying to connect once a second), and for
 * each attack an attacker in a third process floods the ring (bench/attack-attacker.js): idle
 * sockets and junk handshakes from an outsider, a slow reader of 1 MiB answers and Candidates
 * spam from a key-holding client, each alone and all together. Every phase is set beside the
 * baseline measured in the same run without an attacker (before and after the attacks).
 *
 *   node --import tsx bench/attack.js [--nodes 4] [--seconds 10] [--in-flight 64]
 *        [--attacks idle,junk,slow-reader,candidates,all] [--rss-cap-mib 3072] [--out DIR]
 *        [--split-cores]
 *
 * --split-cores (Linux, needs `taskset`): the ring and the legit client run on CPU 0 and the
 * attacker on CPU 1, in every phase including the baselines, as if the attacker had a machine
 * of its own; without it all three share both cores and an attacker that burns CPU slows the
 * legitimate client whatever the ring does.
 *
 * The ring's memory is read from /proc/<pid>/status (VmRSS) every 200 ms; past --rss-cap-mib
 * the attacker is killed (the phase says so) so that the shared machine is not pushed into
 * swap or the OOM killer. With --out DIR the summary goes to DIR/attack.md.
 */
const { execFileSync, fork } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { randomBytes } = require('node:crypto')
const { RingHost, rssMiB, cpuMs } = require('../__test__/attack')
const { fmtRate, fmtUs, fmtRatio } = require('./stats')

const HERE = __dirname
const ATTACKS = ['idle', 'junk', 'slow-reader', 'candidates']
/** Legit keys and their size: a small working set of 1 KiB values, read at random. */
const KEYS = 1000
const VALUE_BYTES = 1024
const BIG_VALUE_BYTES = 1 << 20
/** An attack runs this long before the measurement starts (the flood reaches its steady state). */
const WARMUP_MS = 1000
/** After an attack, the ring gets this long to settle before the next phase. */
const COOL_DOWN_MS = 3000
const SAMPLE_EVERY_MS = 200
/** A newcomer counts as connected in time within this (the issue's criterion). */
const CONNECT_WITHIN_MS = 1000

function parseArgs(argv) {
  const args = { nodes: 4, seconds: 10, inFlight: 64, attacks: [...ATTACKS, 'all'], rssCapMiB: 3072, out: null, splitCores: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--nodes') args.nodes = Number(value())
    else if (a === '--seconds') args.seconds = Number(value())
    else if (a === '--in-flight') args.inFlight = Number(value())
    else if (a === '--attacks') args.attacks = value().split(',').map((s) => s.trim()).filter(Boolean)
    else if (a === '--rss-cap-mib') args.rssCapMiB = Number(value())
    else if (a === '--out') args.out = path.resolve(value())
    else if (a === '--split-cores') args.splitCores = true
    else if (a === '--help' || a === '-h') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('*/')[0].replace(/^#!.*\n'use strict'\n\/\*\*\n/, '').replace(/^ \* ?/gm, '') + '\n')
      process.exit(0)
    } else throw new Error(`unknown argument ${a} (see --help)`)
  }
  if (!Number.isInteger(args.nodes) || args.nodes < 1 || args.nodes > 16) throw new Error('--nodes takes an integer from 1 to 16')
  if (!(args.seconds > 0)) throw new Error('--seconds takes a positive number')
  if (!Number.isInteger(args.inFlight) || args.inFlight < 1) throw new Error('--in-flight takes a positive integer')
  for (const attack of args.attacks) if (attack !== 'all' && !ATTACKS.includes(attack)) throw new Error(`unknown attack ${attack}; known: ${ATTACKS.join(', ')}, all`)
  return args
}

/** A forked child answering one IPC message at a time with {ok, result | error}. */
function child(file, execArgv = []) {
  const proc = fork(path.join(HERE, file), [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const ask = (message, timeoutMs) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${file} did not answer ${message.cmd} within ${timeoutMs} ms`)), timeoutMs)
      const onExit = (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`${file} exited (${signal ?? code}) during ${message.cmd}`))
      }
      proc.once('exit', onExit)
      proc.once('message', (reply) => {
        clearTimeout(timer)
        proc.off('exit', onExit)
        if (reply.ok) resolve(reply.result)
        else reject(new Error(reply.error))
      })
      proc.send(message)
    })
  const kill = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  }
  return { proc, ask, kill }
}

/**
 * With --split-cores: every thread of `pid` (and those it starts later, which inherit the
 * affinity) runs on `cpu` only.
 */
function pin(pid, cpu, args) {
  if (args.splitCores) execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' })
}

/** Samples the ring process's memory and CPU; kills `onCap` past the cap. */
function sampler(pid, capMiB, onCap) {
  const cpuBefore = cpuMs(pid)
  const started = Date.now()
  const sample = { rssStart: rssMiB(pid), rssPeak: 0, capped: null }
  sample.rssPeak = sample.rssStart
  const timer = setInterval(() => {
    const rss = rssMiB(pid)
    sample.rssPeak = Math.max(sample.rssPeak, rss)
    if (rss > capMiB && !sample.capped) {
      sample.capped = { atMiB: Math.round(rss), afterMs: Date.now() - started }
      onCap()
    }
  }, SAMPLE_EVERY_MS)
  return () => {
    clearInterval(timer)
    return { ...sample, rssEnd: rssMiB(pid), cpuPercent: ((cpuMs(pid) - cpuBefore) / (Date.now() - started)) * 100 }
  }
}

/**
 * One phase: a fresh legit client (so that one attack's aftermath does not spill into the next
 * phase), the attacker if any, the measurement, then whether the client still reads once the
 * attacker is gone.
 */
async function phase(name, attacks, { host, args, networkKey, subnet, bigOwnerPort, writeKeys }) {
  process.stdout.write(`${name}: `)
  const client = child('attack-client.js')
  pin(client.proc.pid, 0, args)
  await client.ask({ cmd: 'setup', subnet, networkKey, ports: host.nodes.map((n) => n.port), keys: KEYS, valueBytes: VALUE_BYTES, write: writeKeys }, 120_000)
  let attacker = null
  if (attacks.length) {
    attacker = child('attack-attacker.js', ['--import', 'tsx'])
    pin(attacker.proc.pid, 1, args)
    await attacker.ask({ cmd: 'start', attacks, subnet, networkKey, ports: host.nodes.map((n) => n.port), bigOwnerPort }, 30_000)
    await sleep(WARMUP_MS)
  }
  const stopSampling = sampler(host.pid, attacker ? args.rssCapMiB : Infinity, () => attacker.kill())
  const attackerCpu = attacker ? { before: cpuMs(attacker.proc.pid), at: Date.now() } : null
  const measured = await client.ask({ cmd: 'measure', seconds: args.seconds, inFlight: args.inFlight }, args.seconds * 1000 + 60_000)
  const ring = stopSampling()
  let attackerReport = {}
  if (attacker) {
    try {
      attackerReport.cpuPercent = ((cpuMs(attacker.proc.pid) - attackerCpu.before) / (Date.now() - attackerCpu.at)) * 100
    } catch {
      // killed at the memory cap: its CPU is gone with it
    }
    const alive = attacker.proc.exitCode === null && attacker.proc.signalCode === null
    const gone = ring.capped ? 'killed at the memory cap' : `the attacker exited (${attacker.proc.signalCode ?? attacker.proc.exitCode})`
    const report = alive ? await attacker.ask({ cmd: 'stop' }, 10_000).catch((error) => ({ error: error.message })) : { error: gone }
    Object.assign(attackerReport, report)
    attacker.kill()
    await sleep(COOL_DOWN_MS)
  }
  const shape = await host.call('ring', {}, 10_000).catch((error) => ({ error: error.message }))
  const clientAfter = await client.ask({ cmd: 'probe' }, 10_000).catch((error) => error.message)
  client.kill()
  const row = { name, attacks, ...measured, ring, attacker: attackerReport, rssAfterMiB: host.rssMiB(), oneRingAfter: shape.oneRing === true, shape, clientAfter }
  process.stdout.write(`${fmtRate(row.gets / row.seconds)} gets, p99 ${fmtUs(row.latency.p99)}, ring RSS peak ${Math.round(ring.rssPeak)} MiB${ring.capped ? ` (capped at ${ring.capped.atMiB} MiB)` : ''}\n`)
  return row
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Why the nodes were not one ring: members missing, links to made-up nodes. */
function shape(result) {
  if (result.error) return ` (${result.error})`
  const why = []
  if (result.members < result.nodes) why.push(`${result.nodes - result.members} not members`)
  if (result.strangers) why.push(`${result.strangers} linked to made-up nodes`)
  return why.length ? ` (${why.join(', ')})` : ''
}

function connectSummary(connects) {
  const inTime = connects.filter((c) => c.outcome === 'connected' && c.ms < CONNECT_WITHIN_MS)
  const failures = [...new Set(connects.filter((c) => c.outcome !== 'connected').map((c) => c.outcome))]
  const times = connects.filter((c) => c.outcome === 'connected').map((c) => c.ms).sort((a, b) => a - b)
  const median = times.length ? `, median ${times[Math.floor(times.length / 2)]} ms` : ''
  return `${inTime.length}/${connects.length}${median}${failures.length ? ` (${failures.join(', ')})` : ''}`
}

function attackerSummary(report) {
  const parts = []
  if (report.idleSocketsOpened !== undefined) parts.push(`${report.idleSocketsOpened.toLocaleString('en-US')} idle sockets opened`)
  if (report.junkHandshakes !== undefined) parts.push(`${report.junkPerSecond.toLocaleString('en-US')} junk handshakes/s`)
  if (report.slowReaderConnections !== undefined) parts.push(`slow reader: ${report.slowReaderConnections} connection(s), ${report.requestedMiB.toLocaleString('en-US')} MiB asked for`)
  if (report.candidatesMessages !== undefined) parts.push(`${report.candidatesMessages} Candidates → ${report.thirdPartyConnections.toLocaleString('en-US')} connections to the third party`)
  if (report.error) parts.push(`(${report.error})`)
  return parts.join('; ') || '—'
}

function table(rows) {
  const baseline = rows.find((r) => r.name === 'baseline')
  const baseRate = baseline ? baseline.gets / baseline.seconds : null
  const lines = [
    '| phase | legit gets/s | ÷ baseline | get p50 | get p99 | failed gets | newcomers connected < 1 s | ring RSS peak (after) | one ring after | client reads after | ring CPU | attacker CPU | attacker |',
    '|---|---:|---:|---:|---:|---:|---|---:|---|---|---:|---:|---|',
  ]
  for (const r of rows) {
    const rate = r.gets / r.seconds
    const failed = Object.values(r.errors).reduce((a, b) => a + b, 0) + r.timedOut
    const errors = Object.entries(r.errors).map(([code, n]) => `${n} ${code}`).concat(r.timedOut ? [`${r.timedOut} unanswered`] : [])
    const rss = `${Math.round(r.ring.rssPeak)} MiB (${Math.round(r.rssAfterMiB)})${r.ring.capped ? `, attacker killed at ${r.ring.capped.atMiB} MiB after ${(r.ring.capped.afterMs / 1000).toFixed(1)} s` : ''}`
    lines.push(`| ${r.name} | ${fmtRate(rate)} | ${baseRate ? fmtRatio(rate / baseRate) : '—'} | ${fmtUs(r.latency.p50)} | ${fmtUs(r.latency.p99)} | ${failed}${errors.length ? ` (${errors.join(', ')})` : ''} | ${connectSummary(r.connects)} | ${rss} | ${r.oneRingAfter ? 'yes' : `**no**${shape(r.shape)}`} | ${r.clientAfter === 'ok' ? 'yes' : `**${r.clientAfter}**`} | ${Math.round(r.ring.cpuPercent)} % | ${r.attacker.cpuPercent === undefined ? '—' : `${Math.round(r.attacker.cpuPercent)} %`} | ${attackerSummary(r.attacker)} |`)
  }
  return lines.join('\n')
}

function markdown(rows, args) {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  return `# Under attack: what an attacker takes from legitimate users

${cpu}, ${os.cpus().length} cores, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; \`npm run bench:attack -- --nodes ${args.nodes} --seconds ${args.seconds} --in-flight ${args.inFlight}${args.splitCores ? ' --split-cores' : ''}\`.${args.splitCores ? ' **Split cores**: the ring and the legit client run on CPU 0, the attacker on CPU 1, in every phase (baselines included), as if the attacker had a machine of its own.' : ''}

A ring of ${args.nodes} nodes with a network key in one process; a key-holding client in another (a fresh one each phase) reads ${KEYS.toLocaleString('en-US')} keys of ${VALUE_BYTES} B at random with ${args.inFlight} gets in flight for ${args.seconds} s per phase, while once a second a fresh key holder tries to connect (counted in time when connected within ${CONNECT_WITHIN_MS} ms); the attacker runs in a third process (bench/attack-attacker.js) and starts ${WARMUP_MS / 1000} s before the measurement. Failed gets: rejected, or still unanswered 16 s after the phase (the operation deadline is 15 s). "One ring after": whether, ${COOL_DOWN_MS / 1000} s after the attacker stopped, every node's successor and predecessor were its neighbours by id; "client reads after": whether the phase's client (a fresh one each phase) could then read a key. Ring and attacker CPU are each process's user + system time over the phase (100 % = one core): on a 2-core machine an attacker that burns CPU slows the legitimate client whatever the ring does, so read the ring's own figures (memory, connections to third parties, newcomers refused, failed gets) beside the throughput ratio.

${table(rows)}

Attacks: **idle** — an outsider without the key holds 1,000 idle TCP connections spread over the nodes (reopening those a node closes); **junk** — an outsider completes junk Noise handshakes as fast as it can, 64 at a time; **slow-reader** — a key-holding client asks the owner of a 1 MiB value for it 2,000 times and never reads (and comes back when dropped); **candidates** — a key-holding client sends a \`Candidates\` request naming 2,000 made-up nodes at its own listener every 100 ms; **all** — the four at once. The machine is shared: compare a phase with the baselines of the same run.
`
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const subnet = `bench-attack-${process.pid}`
  const networkKey = randomBytes(24).toString('base64')
  const host = await RingHost.start({ subnet, networkKey, nodes: args.nodes, options: { stabilizeMs: 250 } })
  const cleanUp = () => host.stop()
  pin(host.pid, 0, args)
  process.on('SIGINT', () => cleanUp().finally(() => process.exit(130)))
  try {
    await host.call('set', { key: 'big', bytes: BIG_VALUE_BYTES, seed: 7 })
    const bigOwnerPort = (await host.call('owner', { key: 'big' })).port
    console.log(`ring of ${args.nodes} in process ${host.pid} (RSS ${Math.round(host.rssMiB())} MiB); ${args.seconds} s per phase, ${args.inFlight} gets in flight`)
    const context = { host, args, networkKey, subnet, bigOwnerPort, writeKeys: false }
    const rows = [await phase('baseline', [], { ...context, writeKeys: true })]
    for (const attack of args.attacks) rows.push(await phase(attack, attack === 'all' ? ATTACKS : [attack], context))
    rows.push(await phase('baseline, again', [], context))
    console.log(`\n${table(rows)}`)
    if (args.out) {
      fs.mkdirSync(args.out, { recursive: true })
      fs.writeFileSync(path.join(args.out, 'attack.md'), markdown(rows, args))
      console.log(`\nwrote ${path.join(args.out, 'attack.md')}`)
    }
  } finally {
    await cleanUp()
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
