#!/usr/bin/env node
'use strict'
/**
 * What the web view costs a node: a ring of N ChordSockets in this process (events off, as in
 * `npm run bench`), S sets then G gets with 256 in flight, timed by the wall clock and by the
 * process's CPU time (all its threads: a figure that the other work on a shared machine
 * disturbs less than throughput). Run it against two builds in alternation to compare them.
 *
 *   node bench/view-cost.js [--root DIR] [--view none|server|page] [--nodes 16] [--sets 40000]
 *                           [--gets 120000] [--warm 10000]
 *
 * `--root` loads the chordnet package from another checkout (a build without the view, say);
 * `--view server` serves node 0's view with nobody watching; `--view page` also keeps its page
 * open in headless Chromium (whose own CPU time is not counted, but its load on the machine
 * shows in the throughput). Prints one JSON line.
 */
const path = require('node:path')

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? process.argv[at + 1] : fallback
}

const IN_FLIGHT = 256

async function phase(count, run) {
  let next = 0
  const cpu = process.cpuUsage()
  const started = process.hrtime.bigint()
  const worker = async () => {
    while (next < count) await run(next++)
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const used = process.cpuUsage(cpu)
  return { perSecond: Math.round(count / seconds), cpuMicrosPerOp: Math.round(((used.user + used.system) / count) * 100) / 100 }
}

async function main() {
  const root = path.resolve(option('root', path.join(__dirname, '..')))
  const mode = option('view', 'none')
  const size = Number(option('nodes', '16'))
  const sets = Number(option('sets', '40000'))
  const gets = Number(option('gets', '120000'))
  const warm = Number(option('warm', '10000'))
  const { createTestnet } = require(root)
  const net = await createTestnet(size, { events: false, stabilizeMs: 250 })
  const nodes = net.nodes
  let close = async () => {}
  if (mode !== 'none') {
    const view = await nodes[0].serveView()
    close = () => view.close()
    if (mode === 'page') {
      const { ensureChromium } = require(path.join(__dirname, '..', 'scripts', 'ensure-chromium.js'))
      const { chromium } = require('playwright-core')
      const fs = require('node:fs')
      const os = require('node:os')
      const browser = ensureChromium()
      if (!browser.path) throw new Error(`no Chromium: ${browser.reason}`)
      const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chordnet-view-cost-'))
      const flags = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
      const context = await chromium.launchPersistentContext(profile, { executablePath: browser.path, headless: true, args: flags })
      const page = context.pages()[0] ?? (await context.newPage())
      await page.goto(view.url)
      await page.waitForSelector('#ring [data-member]')
      close = async () => {
        await context.close()
        fs.rmSync(profile, { recursive: true, force: true })
        await view.close()
      }
    }
  }
  const key = (i) => `cost-${i % 20000}`
  await phase(warm, (i) => nodes[i % size].set(key(i), `warm ${i}`)) // warm-up: connections, caches
  const set = await phase(sets, (i) => nodes[i % size].set(key(i), `value ${i}`))
  const get = await phase(gets, (i) => nodes[i % size].get(key(i)))
  await close()
  await net.destroy()
  console.log(JSON.stringify({ root, view: mode, nodes: size, setsPerSecond: set.perSecond, getsPerSecond: get.perSecond, cpuMicrosPerSet: set.cpuMicrosPerOp, cpuMicrosPerGet: get.cpuMicrosPerOp }))
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
