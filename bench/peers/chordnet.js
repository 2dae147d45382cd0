'use strict'
/**
 * chordnet: a ring of N ChordSockets in this process (createTestnet), replicas 3, stabilizeMs 250
 * (the library default), add/delete events off: none of the peers has ring-wide change events,
 * and with events on every set also notifies all N nodes (the README gives that figure too).
 *
 * `view: 'server'` (peer chordnet-view) also serves node 0's web view with nobody watching;
 * `view: 'page'` (peer chordnet-page) opens that page in headless Chromium for the whole run.
 * Noise encryption (the default) unless `options.encryption` is 'Plaintext'.
 * `disk: true` (peer chordnet-disk): every node keeps its data in a folder of its own (dataDir,
 * durability 'sync': a set resolves once the owner and both replicas flushed it to the disk),
 * in a temporary folder removed afterwards.
 * `cacheBytes` (peer chordnet-nocache: 0) sets the read cache; absent, the default (on).
 */
const path = require('node:path')
const { createTestnet, Protocol } = require(path.resolve(__dirname, '..', '..'))
const { sleep } = require('../harness')

/** Node 0's web view, and the page watching it when `options.view === 'page'`. */
async function openView(node, mode) {
  const view = await node.serveView()
  if (mode !== 'page') return { close: () => view.close() }
  const { ensureChromium } = require(path.resolve(__dirname, '..', '..', 'scripts', 'ensure-chromium.js'))
  const { chromium } = require('playwright-core')
  const browser = ensureChromium()
  if (!browser.path) throw new Error(`no Chromium for the page: ${browser.reason}`)
  const fs = require('node:fs')
  const os = require('node:os')
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chordnet-bench-page-'))
  const flags = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  const context = await chromium.launchPersistentContext(profile, { executablePath: browser.path, headless: true, args: flags })
  const page = context.pages()[0] ?? (await context.newPage())
  await page.goto(view.url)
  await page.waitForSelector('#ring [data-member]')
  return {
    close: async () => {
      await context.close()
      fs.rmSync(profile, { recursive: true, force: true })
      await view.close()
    },
  }
}

function createAdapter(options) {
  let testnet
  let nodes
  let view
  let startedAt
  let dataRoot
  return {
    async start(n) {
      const protocol = new Protocol(`bench-${process.pid}`, options.encryption || 'Noise')
      if (options.disk) dataRoot = require('node:fs').mkdtempSync(path.join(options.dataRoot || require('node:os').tmpdir(), 'chordnet-bench-'))
      const cache = options.cacheBytes === undefined ? {} : { cacheBytes: options.cacheBytes }
      testnet = await createTestnet(n, { stabilizeMs: options.stabilizeMs || 250, events: false, protocol, ...cache, ...(dataRoot ? { dataDir: dataRoot, durability: 'sync' } : {}) })
      nodes = testnet.nodes
      startedAt = Date.now()
      // Let fix-fingers run a few rounds after the ring settled.
      let last = -1
      for (let i = 0; i < 20; i++) {
        const fingers = nodes.reduce((sum, node) => sum + node.stats().fingers, 0)
        if (fingers === last) break
        last = fingers
        await sleep(300)
      }
      if (options.view) view = await openView(nodes[0], options.view)
      return { connections: nodes.map((node) => node.stats().connections) }
    },
    set: (i, key, value) => nodes[i].set(key, value),
    async get(i, key) {
      const v = await nodes[i].get(key)
      return v === undefined ? undefined : v.toString()
    },
    async info() {
      // Hops of a greedy finger-table lookup, from every node to sample keys.
      let hops = 0
      const samples = Math.min(400, nodes.length * 50)
      for (let j = 0; j < samples; j++) hops += (await nodes[j % nodes.length].lookup(`key-${j}`)).hops
      const stats = nodes.map((node) => node.stats())
      const mean = (f) => stats.reduce((s, x) => s + f(x), 0) / stats.length
      return {
        meanLookupHops: hops / samples,
        lookupSamples: samples,
        meanRedirects: mean((s) => s.meanRedirects),
        meanConnections: mean((s) => s.connections),
        meanFingers: mean((s) => s.fingers),
        keysPerNode: mean((s) => s.keys),
        // No node fails during the benchmark: every suspicion is a false one.
        falseSuspicions: stats.reduce((sum, s) => sum + s.suspicions, 0),
        nodeHours: (nodes.length * (Date.now() - startedAt)) / 3_600_000,
      }
    },
    async stop() {
      await view?.close()
      if (!dataRoot) return testnet.destroy()
      // On disk: destroy (not a graceful leave, which would hand every key over), then the folders go.
      for (const node of nodes) await node.destroy()
      require('node:fs').rmSync(dataRoot, { recursive: true, force: true })
    },
  }
}

module.exports = createAdapter
if (require.main === module) require('../harness').main(createAdapter)
