#!/usr/bin/env node
'use strict'
/**
 * `npm run scale -- --nodes 1000 --processes 8`: a ring of many real nodes on 127.0.0.1, in
 * memory, with the library's default options (Noise, stabilizeMs, replicas 3), spread over child
 * processes (bench/fleet), and what it costs and survives:
 *
 *   --nodes N            nodes to start (default 1000)
 *   --processes P        child processes holding them (default 8; with --kill, one of them holds the victims)
 *   --keys K             keys written, then read back by every process (default 100000)
 *   --kill F             fraction of the nodes SIGKILLed at once (default 0.1; 0: no kill phase)
 *   --via first|random   join through the first node (default) or a random earlier member
 *   --idle-seconds S     idle window after the ring settled, before any key (default 40; 0: skip)
 *   --settle-seconds S   how long to wait for one correct ring (default 300, also after the kill)
 *   --depth D            operations in flight per process (default 256)
 *   --lookups L          keys looked up to count hops (default 2000)
 *   --build DIR          load the API from another checkout (default: this one)
 *   --options JSON       ChordSocket options for every node, for experiments (default {}: the
 *                        library's defaults; the report names any option given)
 *   --out DIR            where scale.md and scale.json go (default bench/results)
 *
 * Nodes start and join one at a time, in random order across the processes. A refused join is
 * counted with its error code and the run goes on; every phase reports what it could measure
 * even when an earlier one fell short, so a build that stops growing still gets a full report.
 * The victims are a random set of nodes placed in a process of their own (node ids are random,
 * so they are also a random set of ring positions); the kill is a SIGKILL of that process.
 */
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const fleet = require('../bench/fleet')
const { replicaSet, lossExpectation, deadWindows } = require('../bench/fleet/ring')
const { summarize, fmtUs, fmtRate, fmtBytes } = require('../bench/stats')

const ROOT = path.resolve(__dirname, '..')

function parseArgs(argv) {
  const args = { nodes: 1000, processes: 8, keys: 100_000, kill: 0.1, via: 'first', idleSeconds: 40, settleSeconds: 300, depth: 256, lookups: 2000, options: {}, build: ROOT, out: path.join(ROOT, 'bench', 'results') }
  const numbers = { '--nodes': 'nodes', '--processes': 'processes', '--keys': 'keys', '--kill': 'kill', '--idle-seconds': 'idleSeconds', '--settle-seconds': 'settleSeconds', '--depth': 'depth', '--lookups': 'lookups' }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      if (argv[i + 1] === undefined) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (numbers[a]) args[numbers[a]] = Number(value())
    else if (a === '--via') args.via = value()
    else if (a === '--build') args.build = path.resolve(value())
    else if (a === '--options') args.options = JSON.parse(value())
    else if (a === '--out') args.out = path.resolve(value())
    else if (a === '--help' || a === '-h') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('*/')[0].replace(/^#!.*\n'use strict'\n\/\*\*\n/, '').replace(/^ \* ?/gm, '') + '\n')
      process.exit(0)
    } else throw new Error(`unknown argument ${a} (see --help)`)
  }
  const whole = (name, min) => {
    if (!Number.isInteger(args[name]) || args[name] < min) throw new Error(`--${name} takes an integer ≥ ${min} (got ${args[name]})`)
  }
  whole('nodes', 1)
  whole('processes', 1)
  whole('keys', 0)
  whole('depth', 1)
  whole('lookups', 0)
  if (!(args.kill >= 0 && args.kill < 1)) throw new Error(`--kill takes a fraction in [0, 1) (got ${args.kill})`)
  if (!(args.idleSeconds >= 0) || !(args.settleSeconds > 0)) throw new Error('--idle-seconds takes a number ≥ 0 and --settle-seconds one > 0')
  if (args.options === null || typeof args.options !== 'object' || Array.isArray(args.options)) throw new Error('--options takes a JSON object of ChordSocket options')
  if (args.via !== 'first' && args.via !== 'random') throw new Error(`--via takes first or random (got ${args.via})`)
  if (args.kill > 0 && args.processes < 2) throw new Error('--kill needs --processes ≥ 2: the victims live in a process of their own')
  if (!fs.existsSync(path.join(args.build, 'package.json'))) throw new Error(`--build ${args.build} is not a package folder`)
  return args
}

const log = (text) => process.stderr.write(`[scale ${new Date().toISOString().slice(11, 19)}] ${text}\n`)

/** Which process holds each node, in join order; the victims are a random set, never the first node. */
function placeNodes({ nodes, processes, kill }) {
  const victims = kill > 0 ? Math.round(kill * nodes) : 0
  const survivorProcesses = victims > 0 ? processes - 1 : processes
  const victimSlots = new Set()
  const candidates = Array.from({ length: nodes - 1 }, (_, i) => i + 1)
  for (let j = 0; j < victims && candidates.length > 0; j++) victimSlots.add(candidates.splice(Math.floor(Math.random() * candidates.length), 1)[0])
  let next = 0
  const plan = Array.from({ length: nodes }, (_, slot) => (victimSlots.has(slot) ? processes - 1 : next++ % survivorProcesses))
  return { plan, victimProcess: victims > 0 ? processes - 1 : null, victimSlots: victimSlots.size }
}

function msSummary(values) {
  const s = summarize(values.map((ms) => ms * 1000))
  return { n: s.n, p50: s.p50 / 1000, p99: s.p99 / 1000, mean: s.mean / 1000, max: s.max / 1000 }
}

function countBy(items, key) {
  const counts = {}
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1
  return counts
}

/** Run `phase` and keep what it returns; a failure is recorded and the run goes on. */
async function step(report, name, phase) {
  const started = Date.now()
  try {
    const result = await phase()
    report.phases[name] = { ok: true, ms: Date.now() - started }
    return result
  } catch (error) {
    report.phases[name] = { ok: false, ms: Date.now() - started, error: String(error.message ?? error) }
    log(`${name} failed: ${error.message ?? error}`)
    return undefined
  }
}

function rssOf(hosts) {
  return hosts.filter((host) => host.alive).map((host) => ({ process: host.index, rss: fleet.procSample(host.pid).rss }))
}

function connectionFigures(links) {
  const connections = links.map((link) => link.connections)
  const peers = links.map((link) => link.peers)
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
  return { mean: mean(connections), max: Math.max(0, ...connections), peersMean: mean(peers), peersMax: Math.max(0, ...peers), fingersMean: mean(links.map((link) => link.fingers)) }
}

async function run(args) {
  const { plan, victimProcess, victimSlots } = placeNodes(args)
  const report = {
    date: new Date().toISOString(),
    machine: `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    // The machine is shared: its load says how much the timings can be trusted.
    loadAverage: { start: os.loadavg()[0] },
    build: { dir: args.build, commit: fleet.describeBuild(args.build) },
    args: { ...args, build: undefined, out: undefined },
    phases: {},
  }
  log(`${args.nodes} nodes in ${args.processes} processes (${victimSlots} victims in process ${victimProcess ?? '—'}), build ${args.build}`)
  const hosts = await fleet.startFleet({ processes: args.processes, build: args.build, options: args.options })
  const nodesOf = new Map(hosts.map((host) => [host.index, 0]))
  try {
    report.defaults = await hosts[0].call('describe')
    report.rssEmpty = rssOf(hosts)

    // Join one by one.
    const joined = await step(report, 'join', () =>
      fleet.joinOneByOne(hosts, plan, {
        via: args.via,
        onJoin: ({ slot, members, refused, answer }) => {
          if (!answer.refused) nodesOf.set(plan[slot], nodesOf.get(plan[slot]) + 1)
          if ((slot + 1) % 50 === 0 || slot + 1 === plan.length) log(`joins: ${slot + 1}/${plan.length} started, ${members} members, ${refused} refused`)
        },
      }),
    )
    if (joined) {
      report.join = {
        attempted: plan.length,
        members: joined.members.length,
        refused: joined.refused.length,
        refusedByCode: countBy(joined.refused, (r) => r.code),
        firstRefusal: joined.refused[0] ? { slot: joined.refused[0].slot, message: `${joined.refused[0].code}: ${joined.refused[0].message}` } : null,
        totalMs: joined.elapsedMs,
        perNodeMs: msSummary(joined.members.slice(1).map((m) => m.joinMs)),
        membersBeforeFirstRefusal: joined.refused[0] ? joined.refused[0].slot - joined.refused.filter((r) => r.slot < joined.refused[0].slot).length : joined.members.length,
      }
    }

    // One correct ring, seen from each process and cross-checked over the wire.
    const ring = await step(report, 'ring', () => fleet.waitForOneRing(hosts, args.settleSeconds * 1000))
    if (ring) report.ring = { members: ring.links.length, oneRing: ring.settled, settleMs: ring.ms, misplaced: ring.wrong ?? 0 }
    const fingers = await step(report, 'fingers', () => fleet.waitForFingers(hosts))
    if (fingers && report.ring) report.ring.fingersQuietAfterMs = fingers.ms
    const links = await step(report, 'links', () => fleet.ringLinks(hosts))
    if (links) {
      report.connections = connectionFigures(links)
      const check = await step(report, 'crossCheck', () => fleet.crossCheck(hosts, links))
      if (check) report.crossCheck = { ...check, disagree: check.disagree.length }
    }
    report.rssRing = rssOf(hosts)

    // Idle cost, before any key.
    if (args.idleSeconds > 0) {
      log(`idle for ${args.idleSeconds} s`)
      report.idle = await step(report, 'idle', () => fleet.measureIdle(hosts, args.idleSeconds, (host) => nodesOf.get(host.index)))
    }

    // Keys: written once, read back by every process.
    if (args.keys > 0) {
      log(`writing ${args.keys} keys`)
      report.write = await step(report, 'write', () => fleet.writeKeys(hosts, args.keys, args.depth))
      log(`reading them back from every process`)
      const read = await step(report, 'read', () => fleet.readKeys(hosts, args.keys, args.depth, report.write?.failedKeys))
      if (read) report.read = summarizeRead(read)
    }
    if (args.lookups > 0 && args.keys > 0) {
      const sample = distinctSample(args.keys, args.lookups)
      const lookups = await step(report, 'lookups', () => fleet.lookupKeys(hosts, sample))
      const ids = links ? links.map((link) => link.id).sort() : []
      if (lookups) {
        let agree = 0
        for (const [key, owner] of lookups.owners) if (replicaSet(ids, `key-${key}`, 1)[0] === owner) agree++
        report.lookups = { samples: lookups.samples, failed: lookups.failed, meanHops: lookups.meanHops, maxHops: lookups.maxHops, ownerAsComputed: agree, answered: lookups.owners.size }
      }
      const placement = await step(report, 'placement', () => checkPlacement(hosts, ids, sample.slice(0, 200), report.defaults.replicas))
      if (placement) report.placement = placement
    }
    report.rssData = rssOf(hosts)
    // No node has failed yet: every suspicion so far is a false one (a loaded machine's, or a bug).
    const afterData = await step(report, 'suspicions', () => fleet.ringLinks(hosts))
    if (afterData) report.suspicionsBeforeKill = { total: afterData.reduce((s, link) => s + link.suspicions, 0), nodes: afterData.filter((link) => link.suspicions > 0).length }

    // Kill a random set of nodes at once; time until one ring again; which keys went with them.
    if (victimProcess !== null && links) {
      report.kill = await step(report, 'kill', () => killPhase(hosts, hosts[victimProcess], args, report.defaults.replicas, report.write?.failedKeys ?? []))
    }
    report.rssEnd = rssOf(hosts)
  } finally {
    await fleet.stopFleet(hosts)
  }
  report.nodesPerProcess = Object.fromEntries(nodesOf)
  report.loadAverage.end = os.loadavg()[0]
  return report
}

/** Up to `count` distinct key indices below `total`, at random. */
function distinctSample(total, count) {
  const picked = new Set()
  while (picked.size < Math.min(count, total)) picked.add(Math.floor(Math.random() * total))
  return [...picked]
}

function summarizeRead(read) {
  return {
    ops: read.ops,
    readers: read.readers,
    wrong: read.wrong,
    missing: read.missing,
    failed: read.failedReads,
    errors: read.errors,
    firstWrong: read.firstWrong,
    firstError: read.firstError,
    missingKeys: read.missingKeys.length,
    unacknowledgedMissing: read.unacknowledgedMissing,
    elapsedMs: read.elapsedMs,
    rate: read.rate,
    latency: read.latency,
  }
}

/** For sample keys: do the computed owner and replicas hold them, and how many nodes hold each. */
async function checkPlacement(hosts, sortedIds, sample, replicas) {
  const holders = await fleet.holdersOf(hosts, sample)
  let complete = 0
  let copies = 0
  sample.forEach((key, i) => {
    const expected = replicaSet(sortedIds, `key-${key}`, replicas)
    if (expected.every((id) => holders[i].includes(id))) complete++
    copies += holders[i].length
  })
  return { samples: sample.length, allReplicasHold: complete, meanCopies: copies / Math.max(1, sample.length) }
}

async function killPhase(hosts, victim, args, replicas, unacknowledged) {
  const before = await fleet.ringLinks(hosts)
  const ids = before.map((link) => link.id).sort()
  const crashed = new Set(before.filter((link) => link.host === victim.index).map((link) => link.id))
  const n = ids.length
  const k = crashed.size
  // Keys whose whole replica set is among the victims: the only ones allowed to go missing.
  const doomed = new Set()
  for (let i = 0; i < args.keys; i++) if (replicaSet(ids, `key-${i}`, replicas).every((id) => crashed.has(id))) doomed.add(i)
  const expectation = lossExpectation({ keys: args.keys, n, k, r: replicas })
  log(`killing ${k} of ${n} members (SIGKILL of process ${victim.index}); ${doomed.size} keys have all ${replicas} copies among them`)
  const killedAt = Date.now()
  await victim.kill()
  const survivors = hosts.filter((host) => host.alive)
  const ring = await fleet.waitForOneRing(survivors, args.settleSeconds * 1000)
  const recoveredMs = Date.now() - killedAt
  log(ring.settled ? `one ring again after ${recoveredMs} ms` : `no single ring after ${recoveredMs} ms (${ring.wrong} misplaced)`)
  const result = {
    members: n,
    killed: k,
    survivors: ring.links.length,
    oneRingAgain: ring.settled,
    recoveryMs: recoveredMs,
    misplaced: ring.wrong ?? 0,
    doomedKeys: doomed.size,
    deadWindows: deadWindows(ids, crashed, replicas),
    expectation,
  }
  if (args.keys > 0) {
    log('reading every key back from every surviving process')
    const read = await fleet.readKeys(survivors, args.keys, args.depth, unacknowledged)
    // Lost: an acknowledged key some survivor found absent (or wrong). Keys whose reads only
    // failed (an error, no answer) are counted apart: they say nothing of the data.
    const lost = [...new Set([...read.missingKeys, ...read.wrongKeys])]
    const lostSet = new Set(lost)
    result.read = summarizeRead(read)
    result.lostKeys = lost.length
    result.lostAsExpected = lost.filter((i) => doomed.has(i)).length
    result.lostThoughACopySurvived = lost.filter((i) => !doomed.has(i)).length
    result.lostThoughACopySurvivedSample = lost.filter((i) => !doomed.has(i)).slice(0, 10).map((i) => `key-${i}`)
    result.onlyFailedReads = read.failedKeys.filter((i) => !lostSet.has(i)).length
  }
  return result
}

// ─── Report ─────────────────────────────────────────────────────────────────────────────────

const int = (x) => (x === undefined || x === null || !Number.isFinite(x) ? '—' : Math.round(x).toLocaleString('en-US'))
const fixed = (x, digits = 2) => (x === undefined || x === null || !Number.isFinite(x) ? '—' : x.toFixed(digits))
const ms = (x) => (x === undefined || x === null || !Number.isFinite(x) ? '—' : x < 10 ? `${x.toFixed(1)} ms` : `${int(x)} ms`)
const yes = (b) => (b === undefined ? '—' : b ? 'yes' : '**no**')

function renderMarkdown(r) {
  const rows = []
  const row = (what, value) => rows.push(`| ${what} | ${value} |`)
  const a = r.args
  const j = r.join
  row('nodes started / joined / refused', j ? `${int(j.attempted)} / ${int(j.members)} / ${int(j.refused)}` : '—')
  if (j && j.refused > 0) {
    row('refusals by code', Object.entries(j.refusedByCode).map(([code, n]) => `${code} × ${int(n)}`).join(', '))
    row('first refusal', `node ${j.firstRefusal.slot + 1}, ${j.membersBeforeFirstRefusal} members then: ${j.firstRefusal.message}`)
  }
  if (j) row('join time: total, per node p50 / p99 / max', `${ms(j.totalMs)}, ${ms(j.perNodeMs.p50)} / ${ms(j.perNodeMs.p99)} / ${ms(j.perNodeMs.max)}`)
  if (r.ring) row('one correct ring (stats() in each process)', `${yes(r.ring.oneRing)} — ${int(r.ring.members)} members, after ${ms(r.ring.settleMs)}${r.ring.oneRing ? '' : `, ${r.ring.misplaced} misplaced`}`)
  if (r.crossCheck) {
    const unreachable = Object.entries(r.crossCheck.unreachable).map(([code, n]) => `${code} × ${n}`).join(', ')
    row('cross-check over the wire (memberInfo)', `${int(r.crossCheck.agree)} of ${int(r.crossCheck.asked)} agree, ${int(r.crossCheck.disagree)} disagree${unreachable ? `, unreachable: ${unreachable}` : ''}`)
  }
  if (r.connections) row('connections per node: mean / max (peers mean / max)', `${fixed(r.connections.mean, 1)} / ${r.connections.max} (${fixed(r.connections.peersMean, 1)} / ${r.connections.peersMax}); distinct fingers mean ${fixed(r.connections.fingersMean, 1)}`)
  if (r.idle) {
    row(`idle CPU per node (${fixed(r.idle.seconds, 0)} s, /proc/<pid>/stat)`, `${fixed(r.idle.cpuMsPerSecondPerNode)} ms/s`)
    row('idle TCP payload sent per node (tcp_info bytes_sent)', `${int(r.idle.sentBytesPerSecondPerNode)} B/s, ${fixed(r.idle.segmentsPerSecondPerNode, 1)} segments/s`)
  }
  const codes = (errors) => Object.entries(errors ?? {}).map(([code, n]) => `${code} × ${int(n)}`).join(', ')
  const readFigures = (read) =>
    `wrong ${int(read.wrong)}, missing ${int(read.missing)}${read.unacknowledgedMissing ? ` (+ ${int(read.unacknowledgedMissing)} of keys whose set failed)` : ''}, failed ${int(read.failed)}${read.failed ? ` (${codes(read.errors)}; ${read.firstError})` : ''}`
  if (r.write) row(`sets: ${int(a.keys)} keys, ${a.depth} in flight per process`, `${fmtRate(r.write.rate)}; p50 ${fmtUs(r.write.latency.p50)}, p99 ${fmtUs(r.write.latency.p99)}; failed ${int(r.write.failed)}${r.write.failed ? ` (${codes(r.write.errors)}; ${r.write.firstError})` : ''}`)
  if (r.read) row(`gets: every key from each of ${r.read.readers} processes`, `${fmtRate(r.read.rate)}; p50 ${fmtUs(r.read.latency.p50)}, p99 ${fmtUs(r.read.latency.p99)}; ${readFigures(r.read)}`)
  if (r.lookups) row(`lookup hops (${int(r.lookups.samples)} keys)`, `mean ${fixed(r.lookups.meanHops)}, max ${r.lookups.maxHops}; owner as computed from ids: ${int(r.lookups.ownerAsComputed)} of ${int(r.lookups.answered)}`)
  if (r.placement) row(`replica placement (${r.placement.samples} keys, localGet)`, `all ${r.defaults.replicas} computed replicas hold it: ${r.placement.allReplicasHold}; copies per key mean ${fixed(r.placement.meanCopies)}`)
  if (r.suspicionsBeforeKill) row('false suspicions before the kill (stats().suspicions)', `${int(r.suspicionsBeforeKill.total)}, by ${int(r.suspicionsBeforeKill.nodes)} nodes`)
  const k = r.kill
  if (k) {
    row(`SIGKILL ${int(k.killed)} of ${int(k.members)} members at once`, `one ring again: ${yes(k.oneRingAgain)} after ${ms(k.recoveryMs)}${k.oneRingAgain ? '' : ` (${k.misplaced} misplaced)`}`)
    row('keys with all copies among the killed (computed)', `${int(k.doomedKeys)} (${k.deadWindows} runs of ${r.defaults.replicas} consecutive killed members); expected ${fixed(k.expectation.keys, 1)} keys, ${fixed(k.expectation.windows, 2)} runs, P(any key lost) ≈ ${fixed(k.expectation.atLeastOneKey * 100, 0)} %`)
    if (k.read) {
      row('acknowledged keys lost (absent or wrong for some survivor)', `${int(k.lostKeys)}: ${int(k.lostAsExpected)} of the doomed, **${int(k.lostThoughACopySurvived)} though a copy survived**${k.lostThoughACopySurvivedSample?.length ? ` (${k.lostThoughACopySurvivedSample.join(', ')})` : ''}; ${int(k.onlyFailedReads)} more keys whose reads only failed`)
      row('gets after the kill, every key from each survivor', `${fmtRate(k.read.rate)}; p50 ${fmtUs(k.read.latency.p50)}, p99 ${fmtUs(k.read.latency.p99)}; ${readFigures(k.read)}`)
    }
  }
  const rssLine = (list) => (list ? `${list.map((p) => fmtBytes(p.rss)).join(', ')}` : '—')
  row('RSS per process: empty / ring / with data', `${rssLine(r.rssEmpty)} / ${rssLine(r.rssRing)} / ${rssLine(r.rssData)}`)
  const totalRss = (list) => (list ?? []).reduce((s, p) => s + p.rss, 0)
  if (r.join && r.rssRing) row('RSS growth over the empty processes, per member: ring formed / with data (includes each process\'s own heap growth from the dict work)', `${fmtBytes((totalRss(r.rssRing) - totalRss(r.rssEmpty)) / Math.max(1, r.join.members))} / ${r.rssData ? fmtBytes((totalRss(r.rssData) - totalRss(r.rssEmpty)) / Math.max(1, r.join.members)) : '—'}`)
  const failed = Object.entries(r.phases).filter(([, p]) => !p.ok)
  if (failed.length > 0) row('phases that failed', failed.map(([name, p]) => `${name}: ${p.error}`).join('; '))
  return [
    `# A ring of ${int(a.nodes)} nodes: \`npm run scale -- --nodes ${a.nodes} --processes ${a.processes}${a.via === 'random' ? ' --via random' : ''}\``,
    '',
    `${r.machine}, load average ${fixed(r.loadAverage.start, 1)} at the start and ${fixed(r.loadAverage.end, 1)} at the end; ${r.date.slice(0, 10)}. Build: ${r.build.commit} (${r.build.dir}). ${Object.keys(a.options).length > 0 ? `**Options changed from the defaults: \`${JSON.stringify(a.options)}\`.** ` : 'Library defaults: '}Noise, replicas ${r.defaults?.replicas}, stabilizeMs ${r.defaults?.stabilizeMs}, maxPeers ${r.defaults?.maxPeers}; in memory, 127.0.0.1.`,
    `${int(a.nodes)} nodes in ${a.processes} processes (nodes per process: ${Object.values(r.nodesPerProcess ?? {}).join(', ')}), joining one by one through ${a.via === 'random' ? 'a random earlier member' : 'the first node'}; ${int(a.keys)} keys of 32 bytes; kill fraction ${a.kill}.`,
    '',
    '| | |',
    '|---|---|',
    ...rows,
    '',
    'Idle figures: CPU is utime + stime of each process over the window, divided by its nodes (the Node.js thread and the tokio threads together). Bytes are TCP payload (`bytes_sent` of tcp_info, via `ss -tinp`) of connections open at both ends of the window; /proc/<pid>/io rchar/wchar do not count socket send/recv and are not used. Expected losses: a key is lost only when all its replicas die; for a uniformly random killed set, P = C(k, r) / C(n, r) per key, and the n windows of r consecutive members give n × P dead runs on average, each taking about keys/n keys.',
    '',
  ].join('\n')
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const report = await run(args)
  const markdown = renderMarkdown(report)
  fs.mkdirSync(args.out, { recursive: true })
  fs.writeFileSync(path.join(args.out, 'scale.md'), markdown)
  fs.writeFileSync(path.join(args.out, 'scale.json'), JSON.stringify(report, null, 2) + '\n')
  process.stdout.write(markdown)
  log(`wrote ${path.join(args.out, 'scale.md')} and scale.json`)
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}

module.exports = { placeNodes, renderMarkdown }
