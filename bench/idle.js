#!/usr/bin/env node
'use strict'
/**
 * `npm run bench:idle`: what an idle ring costs per node — CPU ms per second and TCP bytes sent
 * per second — in memory on 127.0.0.1 with the library's default options, once the ring has
 * settled. Several builds side by side in one run, alternating, so that today's build and a
 * later one meet the same machine load:
 *
 *   node bench/idle.js [--sizes 16,64] [--seconds 50] [--build DIR]... [--repeat R]
 *                      [--processes P] [--via random|first] [--settle-seconds S] [--out DIR]
 *
 *   --sizes        ring sizes (default 16,64)
 *   --seconds      length of the measured window (default 50)
 *   --settle-seconds  quiet time after the ring is one correct ring and its fingers stopped
 *                  changing, before the window opens (default 10)
 *   --build DIR    a checkout to load the API from (`require(DIR)`); repeat it to compare
 *                  builds (default: this checkout). E.g. --build /work/baseline --build .
 *   --repeat R     measurements of each (size, build) pair, interleaved (default 1)
 *   --processes P  child processes the ring is spread over (default 1)
 *   --via          each node joins through a random earlier member (default) or the first
 *   --out DIR      where idle.md and idle.json go (default bench/results)
 *
 * CPU is utime + stime from /proc/<pid>/stat of the processes holding the ring (the Node.js
 * thread and the tokio threads), divided by their nodes. Bytes are the TCP payload the nodes
 * sent (tcp_info `bytes_sent` of each connection, read with `ss -tinp`): /proc/<pid>/io's
 * rchar/wchar do not count socket traffic. A size a build cannot reach (refused joins) is
 * measured at the size it reached, and says so.
 */
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const fleet = require('./fleet')
const { median } = require('./stats')

const ROOT = path.resolve(__dirname, '..')

function parseArgs(argv) {
  const args = { sizes: [16, 64], seconds: 50, settleSeconds: 10, builds: [], repeat: 1, processes: 1, via: 'random', out: path.join(ROOT, 'bench', 'results') }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      if (argv[i + 1] === undefined) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--sizes') args.sizes = value().split(',').map(Number)
    else if (a === '--seconds') args.seconds = Number(value())
    else if (a === '--settle-seconds') args.settleSeconds = Number(value())
    else if (a === '--build') args.builds.push(path.resolve(value()))
    else if (a === '--repeat') args.repeat = Number(value())
    else if (a === '--processes') args.processes = Number(value())
    else if (a === '--via') args.via = value()
    else if (a === '--out') args.out = path.resolve(value())
    else if (a === '--help' || a === '-h') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('*/')[0].replace(/^#!.*\n'use strict'\n\/\*\*\n/, '').replace(/^ \* ?/gm, '') + '\n')
      process.exit(0)
    } else throw new Error(`unknown argument ${a} (see --help)`)
  }
  if (args.builds.length === 0) args.builds.push(ROOT)
  for (const n of args.sizes) if (!Number.isInteger(n) || n < 2) throw new Error(`--sizes takes integers ≥ 2 (got ${n})`)
  for (const [name, min] of [['repeat', 1], ['processes', 1]]) if (!Number.isInteger(args[name]) || args[name] < min) throw new Error(`--${name} takes an integer ≥ ${min}`)
  if (!(args.seconds > 0) || !(args.settleSeconds >= 0)) throw new Error('--seconds takes a number > 0, --settle-seconds one ≥ 0')
  if (args.via !== 'random' && args.via !== 'first') throw new Error(`--via takes random or first (got ${args.via})`)
  for (const build of args.builds) if (!fs.existsSync(path.join(build, 'package.json'))) throw new Error(`--build ${build} is not a package folder`)
  return args
}

const log = (text) => process.stderr.write(`[idle ${new Date().toISOString().slice(11, 19)}] ${text}\n`)

/** One idle ring of `size` nodes of `build`: join, settle, then measure a quiet window. */
async function measure(build, size, args) {
  const hosts = await fleet.startFleet({ processes: Math.min(args.processes, size), build })
  try {
    const plan = Array.from({ length: size }, (_, slot) => slot % hosts.length)
    const joined = await fleet.joinOneByOne(hosts, plan, { via: args.via })
    const ring = await fleet.waitForOneRing(hosts, 120_000)
    await fleet.waitForFingers(hosts)
    await fleet.sleep(args.settleSeconds * 1000)
    const links = await fleet.ringLinks(hosts)
    const nodesOf = (host) => links.filter((link) => link.host === host.index).length
    const idle = await fleet.measureIdle(hosts, args.seconds, nodesOf)
    const after = await fleet.ringLinks(hosts)
    return {
      build,
      size,
      members: joined.members.length,
      refused: joined.refused.length,
      refusal: joined.refused[0] ? `${joined.refused[0].code}: ${joined.refused[0].message}` : undefined,
      oneRing: ring.settled,
      // A ring that changed during the window was not idle: say so next to its figures.
      stillOneRingAfter: fleet.isOneRing(after),
      connectionsMean: links.reduce((s, link) => s + link.connections, 0) / Math.max(1, links.length),
      rssPerNode: idle.processes.reduce((s, p) => s + p.rss, 0) / Math.max(1, idle.nodes),
      ...idle,
    }
  } finally {
    await fleet.stopFleet(hosts)
  }
}

function render(results, args) {
  const builds = args.builds.map((dir, i) => ({ dir, label: `${String.fromCharCode(65 + i)}: ${fleet.describeBuild(dir)}` }))
  const lines = [
    `# Idle cost per node: \`npm run bench:idle\``,
    '',
    `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}, load ${os.loadavg()[0].toFixed(1)} at the end, ${new Date().toISOString().slice(0, 10)}. In memory, 127.0.0.1, library defaults (Noise, stabilizeMs, replicas 3), ${args.processes} process${args.processes > 1 ? 'es' : ''} per ring, joins through ${args.via === 'random' ? 'a random earlier member' : 'the first node'}; a ${args.seconds} s window opened ${args.settleSeconds} s after the ring was one correct ring with its fingers unchanged for 3 s${args.repeat > 1 ? `; median of ${args.repeat} runs (range)` : ''}.`,
    '',
    ...builds.map((b) => `- ${b.label} (${b.dir})`),
    '',
    '| build | nodes | CPU ms/s per node | TCP bytes sent/s per node | segments/s per node | connections per node | RSS per node | ring |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ]
  const spread = (values, digits) => {
    const m = median(values)
    if (values.length < 2) return m.toFixed(digits)
    return `${m.toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`
  }
  for (const size of args.sizes) {
    for (const b of builds) {
      const runs = results.filter((r) => r.size === size && r.build === b.dir)
      if (runs.length === 0) continue
      const members = runs.map((r) => r.members)
      const note = runs.some((r) => r.refused > 0) ? `${Math.min(...members)} of ${size} joined: ${runs.find((r) => r.refusal).refusal}` : runs.every((r) => r.oneRing && r.stillOneRingAfter) ? 'one ring' : '**not one ring**'
      lines.push(
        `| ${b.label.slice(0, 1)} | ${size === Math.min(...members) ? size : `${Math.min(...members)} (of ${size})`} | ${spread(runs.map((r) => r.cpuMsPerSecondPerNode), 2)} | ${spread(runs.map((r) => r.sentBytesPerSecondPerNode), 0)} | ${spread(runs.map((r) => r.segmentsPerSecondPerNode), 1)} | ${median(runs.map((r) => r.connectionsMean)).toFixed(1)} | ${(median(runs.map((r) => r.rssPerNode)) / 2 ** 20).toFixed(1)} MiB | ${note} |`,
      )
    }
  }
  lines.push('', 'CPU: utime + stime of the processes holding the ring (Node.js and tokio threads) over the window, per node. Bytes: TCP payload sent (tcp_info bytes_sent, headers not counted) on connections open at both ends of the window. RSS per node includes each process\'s own Node.js (~45 MiB).', '')
  return lines.join('\n')
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const results = []
  for (let round = 0; round < args.repeat; round++) {
    for (const size of args.sizes) {
      for (const build of args.builds) {
        log(`${size} nodes, build ${build}${args.repeat > 1 ? `, run ${round + 1}/${args.repeat}` : ''}`)
        const result = await measure(build, size, args)
        log(`  ${result.members} members: ${result.cpuMsPerSecondPerNode.toFixed(2)} ms CPU/s and ${Math.round(result.sentBytesPerSecondPerNode)} B/s per node`)
        results.push(result)
      }
    }
  }
  const markdown = render(results, args)
  fs.mkdirSync(args.out, { recursive: true })
  fs.writeFileSync(path.join(args.out, 'idle.md'), markdown)
  fs.writeFileSync(path.join(args.out, 'idle.json'), JSON.stringify({ date: new Date().toISOString(), args, results }, null, 2) + '\n')
  process.stdout.write(markdown)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
