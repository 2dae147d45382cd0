#!/usr/bin/env node
'use strict'
/**
 * Does the web view's page stay responsive on a big, busy ring? A ring of N members (default
 * 64) in this process on 127.0.0.1, a steady load of R operations per second (default 1,000; 3
 * gets to 1 set, from random members), node 0's page open in headless Chromium for D seconds
 * (default 30). Reports: the load achieved, the page's render time per update (its 'render'
 * performance measures), long tasks (> 50 ms) in the page, the time from a click on a member's
 * row to its links being painted (timed in the page), the crawl time and the size of each
 * update.
 *
 *   node bench/view-load.js [--members 64] [--rate 1000] [--seconds 30]
 *
 * Needs the built package (npm install) and a Chromium (scripts/ensure-chromium.js).
 */
const path = require('node:path')
const fs = require('node:fs')
const os = require('node:os')
const { createTestnet } = require(path.resolve(__dirname, '..'))
const { ensureChromium } = require(path.resolve(__dirname, '..', 'scripts', 'ensure-chromium.js'))

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? Number(process.argv[at + 1]) : fallback
}

const quantile = (values, q) => {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

async function main() {
  const members = option('members', 64)
  const rate = option('rate', 1000)
  const seconds = option('seconds', 30)
  const browser = ensureChromium()
  if (!browser.path) throw new Error(`no Chromium: ${browser.reason}`)
  const { chromium } = require('playwright-core')

  let t0 = Date.now()
  const net = await createTestnet(members, { events: false, stabilizeMs: 250 })
  const nodes = net.nodes
  console.log(`ring of ${members} settled in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  const keys = Array.from({ length: 2000 }, (_, i) => `load-${i}`)
  await Promise.all(keys.map((k, i) => nodes[i % members].set(k, `value ${i}`)))
  const view = await nodes[0].serveView()

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chordnet-view-load-'))
  const flags = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  const context = await chromium.launchPersistentContext(profile, { executablePath: browser.path, headless: true, args: flags, viewport: { width: 1400, height: 1000 } })
  const page = context.pages()[0] ?? (await context.newPage())
  await page.addInitScript(() => {
    window.__longTasks = []
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__longTasks.push(entry.duration)
    }).observe({ type: 'longtask', buffered: true })
  })
  await page.goto(view.url)
  await page.waitForFunction((n) => document.querySelectorAll('#ring [data-member]').length === n, members, { timeout: 60_000 })

  // The load: `rate` operations per second, issued every 10 ms as far as the clock says are due.
  let done = 0
  let failed = 0
  let round = 0
  t0 = Date.now()
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - t0) / 1000) * rate)
    for (; round < due; ) {
      const node = nodes[Math.floor(Math.random() * members)]
      const key = keys[Math.floor(Math.random() * keys.length)]
      const op = round++ % 4 === 3 ? node.set(key, `value ${round}`) : node.get(key)
      op.then(() => done++, () => failed++)
    }
  }, 10)

  // Clicks on members (their table rows) during the load: time until the ring shows the focus.
  const clicks = []
  const until = Date.now() + seconds * 1000
  let sizes = []
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const target = nodes[Math.floor(Math.random() * members)].id
    // Timed inside the page, from the click to the second animation frame after it (the redraw
    // painted), so the automation's own round trips do not count.
    const took = await page.evaluate(async (id) => {
      const started = performance.now()
      document.querySelector(`#members tr[data-id="${id}"]`).click() // rows never overlap, unlike dots on a crowded ring
      await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))
      if (!document.querySelector(`#ring [data-id="${id}"].focus`)) throw new Error('the clicked member is not focused')
      return performance.now() - started
    }, target)
    clicks.push(took)
    sizes.push(Buffer.byteLength(JSON.stringify(await (await fetch(`${view.url}api/ring`)).json())))
  }
  clearInterval(timer)
  const elapsed = (Date.now() - t0) / 1000
  const ring = await (await fetch(`${view.url}api/ring`)).json()
  const renders = await page.evaluate(() => performance.getEntriesByName('render').map((e) => e.duration))
  const longTasks = await page.evaluate(() => window.__longTasks)
  const shown = await page.textContent('#members-count')

  const round1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a')
  console.log(`load: ${Math.round(done / elapsed)} operations/s achieved (${failed} failed) for ${elapsed.toFixed(0)} s, target ${rate}/s`)
  console.log(`page: ${shown} members drawn; network rate shown ${ring.network ? Math.round(ring.network.perSecond.get + ring.network.perSecond.set) : 'n/a'} ops/s`)
  console.log(`render per update: p50 ${round1(quantile(renders, 0.5))} ms, p95 ${round1(quantile(renders, 0.95))} ms, max ${round1(Math.max(...renders))} ms over ${renders.length} updates`)
  console.log(`long tasks (> 50 ms): ${longTasks.length}${longTasks.length ? `, longest ${round1(Math.max(...longTasks))} ms` : ''}`)
  console.log(`click on a member's row → its links painted: p50 ${round1(quantile(clicks, 0.5))} ms, max ${round1(Math.max(...clicks))} ms over ${clicks.length} clicks`)
  console.log(`crawl of ${ring.crawl.reached} members: ${round1(ring.crawl.ms)} ms; update size ${Math.round(quantile(sizes, 0.5) / 1024)} KiB`)

  await context.close()
  fs.rmSync(profile, { recursive: true, force: true })
  await net.destroy()
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
