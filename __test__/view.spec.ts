/**
 * The web view (ChordSocket.serveView): /api/ring, /metrics, its safety rules, and the live page
 * in a real headless Chromium (Debian's package, found or installed by
 * scripts/ensure-chromium.js; a missing browser fails the test, it never skips).
 */
import test from 'ava'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { ChordSocket, createTestnet, RingView, Testnet } from '../index'
import { until } from './helpers'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ensureChromium } = require('../scripts/ensure-chromium.js') as { ensureChromium: () => { path?: string; reason?: string } }

/** The few browser globals the page functions below use (the suites compile without the DOM library). */
declare const document: { querySelectorAll(selector: string): { length: number }; getElementById(id: string): { textContent: string | null } | null }
declare const window: { marker?: number }

/** Playwright adds --headless itself; the rest keep Chromium off the (closed) network and runnable as root. */
const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** GET (or another method) with an explicit Host header, which fetch() does not allow. */
function raw(url: string, options: { method?: string; host?: string } = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url)
    const req = request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: options.method ?? 'GET', headers: options.host ? { Host: options.host } : {} }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('error', reject)
    req.end()
  })
}

async function ring(url: string): Promise<RingView> {
  const response = await fetch(`${url}api/ring`)
  return (await response.json()) as RingView
}

async function testnet(t: { teardown: (fn: () => Promise<void>) => void }, size: number): Promise<Testnet> {
  const net = await createTestnet(size, { events: false })
  t.teardown(() => net.destroy())
  return net
}

test('/api/ring: every member with its arc, keys and counters; arcs cover the ring; no values', async (t) => {
  const net = await testnet(t, 4)
  const view = await net.nodes[0].serveView()
  t.regex(view.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
  for (let i = 0; i < 60; i++) await net.nodes[i % 4].set(`ring-key-${i}`, `secret-value-${i}`)
  await net.nodes[1].get('ring-key-1')
  await net.nodes[2].delete('ring-key-2')

  const data = await ring(view.url)
  t.is(data.version, 1)
  t.is(data.self, net.nodes[0].id)
  t.deepEqual(data.members.map((m) => m.id), net.nodes.map((n) => n.id).sort())
  t.true(data.members.every((m) => m.reachable && m.arc !== null && m.position >= 0 && m.position < 1))
  const arcs = data.members.reduce((sum, m) => sum + m.arc!, 0)
  t.true(Math.abs(arcs - 1) < 1e-9, `arcs add up to ${arcs}`)
  t.is(data.members.reduce((sum, m) => sum + m.keysOwned, 0), 59)
  t.is(data.members.find((m) => m.self)!.keysHeld, net.nodes[0].stats().keys)
  t.is(data.members.reduce((sum, m) => sum + m.operations.set, 0), 60)
  t.is(data.members.find((m) => m.id === net.nodes[2].id)!.operations.delete, 1)
  t.is(data.network!.totals.set, 60)
  t.is(data.local.totals.set, 15)
  t.true(data.members.filter((m) => !m.self).every((m) => typeof m.rttMs === 'number'))
  t.deepEqual(data.node.successors, net.nodes[0].stats().successors.map((s) => s.id))
  t.false(data.keysEnabled)
  const text = JSON.stringify(data)
  t.false(text.includes('secret-value'), 'values never appear')
  t.false(text.includes('ring-key'), 'keys appear only on request')
})

test('events: a node joining after the view started shows as connect and join, in /api/ring and on the stream', async (t) => {
  const net = await testnet(t, 3)
  const view = await net.nodes[0].serveView()
  const stream = await fetch(`${view.url}api/events`)
  t.regex(stream.headers.get('content-type') ?? '', /^text\/event-stream/)
  const reader = stream.body!.getReader()
  const received: string[] = []
  const reading = (async () => {
    const decoder = new TextDecoder()
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      received.push(decoder.decode(value))
    }
  })()
  const joiner = new ChordSocket('127.0.0.1', 0, { protocol: net.nodes[0].protocol, events: false, stabilizeMs: 50 })
  t.teardown(() => joiner.close())
  await joiner.ready
  await joiner.connect(...net.nodes[0].addr)
  await until(async () => {
    const kinds = (await ring(view.url)).events.map((e) => e.kind)
    return kinds.includes('connect') && kinds.includes('join')
  }, 15_000, 'connect and join events')
  const events = (await ring(view.url)).events
  const connect = events.find((e) => e.kind === 'connect')! as { peer?: { id: string; addr: [string, number] } }
  t.truthy(connect.peer?.id)
  t.true(events.some((e) => e.kind === 'join' && (e.node as { id: string }).id === joiner.id))
  await until(() => received.join('').includes('event: node-event'), 10_000, 'a node-event on the stream')
  t.regex(received.join(''), /event: ring\ndata: \{"version":1/)
  await reader.cancel()
  await reading.catch(() => {})
})

test('/metrics: Prometheus text with operations, errors, latency histograms, keys, bytes, connections, ring size, repairs, suspicions', async (t) => {
  const net = await testnet(t, 3)
  const node = net.nodes[0]
  const view = await node.serveView()
  for (let i = 0; i < 20; i++) await node.set(`m-${i}`, 'v')
  for (let i = 0; i < 10; i++) await node.get(`m-${i}`)
  const response = await fetch(`${view.url}metrics`)
  t.is(response.status, 200)
  t.regex(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
  const body = await response.text()
  const value = (series: string) => {
    const line = body.split('\n').find((l) => l.startsWith(`${series} `))
    t.truthy(line, `no ${series} in /metrics`)
    return Number(line!.split(' ')[1])
  }
  t.is(value('chordnet_operations_total{op="set"}'), 20)
  t.is(value('chordnet_operations_total{op="get"}'), 10)
  t.is(value('chordnet_operation_duration_seconds_count{op="get"}'), 10)
  t.is(value('chordnet_operation_duration_seconds_bucket{op="get",le="+Inf"}'), 10)
  t.true(value('chordnet_operation_duration_seconds_sum{op="get"}') > 0)
  // Cumulative buckets never decrease.
  const buckets = body.split('\n').filter((l) => l.startsWith('chordnet_operation_duration_seconds_bucket{op="set"')).map((l) => Number(l.split(' ')[1]))
  t.deepEqual(buckets, [...buckets].sort((a, b) => a - b))
  t.is(buckets[buckets.length - 1], 20)
  t.is(value('chordnet_keys_held'), node.stats().keys)
  t.true(value('chordnet_bytes_held') >= node.stats().keys * 4)
  t.is(value('chordnet_connections'), node.stats().connections)
  t.true(value('chordnet_ring_size_estimate') >= 3)
  // Traffic by kind: the writes and reads that went to other owners were sent and answered
  // as data; maintenance went both ways.
  const owners = new Set((await Promise.all(Array.from({ length: 20 }, (_, i) => node.lookup(`m-${i}`)))).map((l) => l.owner.id))
  if ([...owners].some((id) => id !== node.id)) {
    t.true(value('chordnet_traffic_messages_total{kind="data",direction="sent"}') > 0)
    t.true(value('chordnet_traffic_bytes_total{kind="data",direction="received"}') > 0)
  }
  t.true(value('chordnet_traffic_bytes_total{kind="maintenance",direction="sent"}') > 0)
  t.true(value('chordnet_traffic_bytes_total{kind="maintenance",direction="received"}') > 0)
  for (const name of [
    'chordnet_node_info',
    'chordnet_operation_errors_total',
    'chordnet_keys_owned',
    'chordnet_connections_opened_total',
    'chordnet_connections_closed_total',
    'chordnet_known_members',
    'chordnet_lookup_hops',
    'chordnet_anti_entropy_syncs_total',
    'chordnet_anti_entropy_repairs_total',
    'chordnet_suspicions_total',
    'chordnet_traffic_bytes_total',
    'chordnet_traffic_messages_total',
  ]) {
    t.regex(body, new RegExp(`^# TYPE ${name} `, 'm'))
  }
})

test('the view is read-only, binds loopback, refuses foreign Host names, lists keys only when asked, closes with its socket', async (t) => {
  const net = await testnet(t, 2)
  await net.nodes[1].set('listed-key', 'hidden-value')
  const view = await net.nodes[0].serveView()
  t.is(view.host, '127.0.0.1')
  t.is((await raw(`${view.url}api/ring`, { method: 'POST' })).status, 405)
  t.is((await raw(`${view.url}metrics`, { method: 'DELETE' })).status, 405)
  const rebinding = await raw(`${view.url}api/ring`, { host: 'attacker.example:80' })
  t.is(rebinding.status, 403)
  t.is((await raw(`${view.url}api/ring`, { host: `localhost:${view.port}` })).status, 200)
  const page = await raw(view.url)
  t.is(page.status, 200)
  t.regex(String(page.headers['content-security-policy']), /default-src 'none'/)
  t.is((await raw(`${view.url}api/keys`)).status, 403)
  t.is((await raw(`${view.url}nope`)).status, 404)

  const withKeys = await net.nodes[1].serveView({ showKeys: true })
  const keys = await raw(`${withKeys.url}api/keys`)
  t.is(keys.status, 200)
  t.deepEqual(JSON.parse(keys.body), { keys: [{ key: 'listed-key', encoding: 'utf8' }], more: false })
  t.false(keys.body.includes('hidden-value'))
  await withKeys.close()
  await t.throwsAsync(fetch(`${withKeys.url}api/ring`))

  await net.nodes[0].close()
  await t.throwsAsync(fetch(`${view.url}api/ring`), undefined, 'closing the socket closes its view')
  const lone = new ChordSocket('127.0.0.1', 0)
  await t.throwsAsync(lone.serveView({ port: -1 }), { instanceOf: TypeError })
  await lone.close()
})

test('browser: the page draws every member and moves its counters live, without a reload (headless Chromium)', async (t) => {
  t.timeout(120_000)
  const started = Date.now()
  const browser = ensureChromium()
  if (!browser.path) {
    t.fail(`no Chromium for the browser test: ${browser.reason}`)
    return
  }
  const net = await testnet(t, 4)
  const view = await net.nodes[0].serveView()
  const dir = mkdtempSync(join(tmpdir(), 'chordnet-view-test-'))
  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: browser.path,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1400, height: 1000 },
  })
  t.teardown(async () => {
    await context.close()
    rmSync(join(dir, 'profile'), { recursive: true, force: true })
  })
  const page = context.pages()[0] ?? (await context.newPage())
  const problems: string[] = []
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`)
  })

  await page.goto(view.url)
  await page.waitForFunction((n) => document.querySelectorAll('#ring [data-member]').length === n, 4, { timeout: 20_000 })
  const drawn = await page.$$eval('#ring [data-member]', (circles) => circles.map((c) => c.getAttribute('data-id')).sort())
  t.deepEqual(drawn, net.nodes.map((n) => n.id).sort(), 'each member is drawn once, at its id')
  t.is(await page.textContent('#members-count'), '4')
  t.is(await page.locator('#members tbody tr').count(), 4)
  t.is(await page.getAttribute('#status', 'data-state'), 'live')

  // A set on another node moves the network counters of the open page, with no reload.
  await page.evaluate(() => (window.marker = 42))
  const count = async () => Number(((await page.textContent('#net-total-set')) ?? '').replace(/,/g, ''))
  const before = await count()
  for (let i = 0; i < 25; i++) await net.nodes[3].set(`browser-${i}`, 'v')
  await page.waitForFunction((target) => Number(document.getElementById('net-total-set')?.textContent?.replace(/,/g, '')) >= target, before + 25, { timeout: 15_000 })
  t.true((await count()) >= before + 25)
  t.is(await page.evaluate(() => window.marker), 42, 'the page was not reloaded')
  await until(async () => Number(((await page.textContent('#net-rate-set')) ?? '0').replace(/,/g, '')) > 0, 10_000, 'a non-zero set rate')

  // Clicking a member shows its links; the screenshot goes to this test's temp folder.
  // Dispatched on the element itself: two random ids close together draw overlapping circles,
  // and a click at the point would land on the neighbour drawn on top.
  await page.dispatchEvent(`#ring [data-id="${net.nodes[2].id}"]`, 'click')
  t.true(await page.locator(`#ring [data-id="${net.nodes[2].id}"].focus`).isVisible())
  const shot = join(dir, 'ring-view.png')
  await page.screenshot({ path: shot, fullPage: true })
  t.true(statSync(shot).size > 20_000)
  t.deepEqual(problems, [])
  t.log(`screenshot: ${shot} (browser test took ${((Date.now() - started) / 1000).toFixed(1)} s)`)
})
