/**
 * The read-only web view of a ChordSocket over HTTP (docs/VIEW.md):
 *
 *   /             the live page (web/: plain HTML, CSS and JS shipped in the package, no build)
 *   /api/ring     the ring as JSON (a RingView)
 *   /api/events   server-sent events: `ring` (a RingView, every second) and `node-event`
 *   /api/keys     keys this node's ring holds, first N; only with `showKeys` (never values)
 *   /metrics      Prometheus text format (prom-client)
 *
 * Safe by default: it binds 127.0.0.1, answers only GET and HEAD, changes nothing, never shows a
 * value, and, while bound to loopback, refuses requests whose Host is not a loopback name (a
 * web page elsewhere cannot read it through DNS rebinding).
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http'
import { AddressInfo } from 'node:net'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { NativeNode } from '../native'
import { Collector, ViewedSocket } from './collector'
import { createExporter } from './prometheus'

export interface ViewOptions {
  /** Address to bind (default `'127.0.0.1'`). Anything but loopback exposes the view to the network: it is read-only, yet it shows your ring's members and traffic. */
  host?: string
  /** Port (default 0 = any free port). */
  port?: number
  /** Answer `/api/keys` with the keys of the ring (default false). Values are never shown. */
  showKeys?: boolean
}

export interface ViewServer {
  /** Where the page is, e.g. `http://127.0.0.1:39173/`. */
  readonly url: string
  readonly host: string
  readonly port: number
  /** Stop serving: ends every open page's stream and releases the port. */
  close(): Promise<void>
}

/** Pages watching the live stream at once; more are refused (each costs one crawl a second in total, plus a stream). */
export const MAX_WATCHERS = 16
/** Bytes queued for a page that stopped reading before its stream is cut. */
const MAX_STREAM_BACKLOG = 4 << 20
/** Keys `/api/keys` lists at most per request. */
export const MAX_KEYS_LISTED = 1000
/** The files of the page, from the package's web/ folder. */
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/view.js': { file: 'view.js', type: 'text/javascript; charset=utf-8' },
  '/view.css': { file: 'view.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
}
const WEB_DIR = join(__dirname, '..', '..', 'web')
const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
}

/** Serve the web view of `socket` (see ChordSocket.serveView). */
export async function startView(socket: ViewedSocket, node: NativeNode, options: ViewOptions = {}): Promise<ViewServer> {
  const host = options.host ?? '127.0.0.1'
  const collector = new Collector(socket, node, { showKeys: options.showKeys ?? false })
  const exporter = createExporter(node)
  const streams = new Set<ServerResponse>()
  const files = new Map<string, Buffer>()
  const loopback = isLoopback(host)

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: Error) => {
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', `internal error: ${error.message}\n`)
      else response.destroy()
    })
  })

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (loopback && !loopbackHost(request.headers.host)) {
      return send(response, 403, 'text/plain; charset=utf-8', 'this view answers only to localhost / 127.0.0.1 / [::1] host names\n')
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('Allow', 'GET, HEAD')
      return send(response, 405, 'text/plain; charset=utf-8', 'the chordnet view is read-only: GET and HEAD only\n')
    }
    const url = new URL(request.url ?? '/', 'http://view.invalid')
    const page = STATIC[url.pathname]
    if (page) {
      let body = files.get(page.file)
      if (!body) {
        body = await readFile(join(WEB_DIR, page.file))
        files.set(page.file, body)
      }
      return send(response, 200, page.type, body, request.method === 'HEAD')
    }
    switch (url.pathname) {
      case '/api/ring':
        return send(response, 200, 'application/json; charset=utf-8', JSON.stringify(await collector.view()), request.method === 'HEAD')
      case '/metrics':
        return send(response, 200, exporter.contentType, await exporter.scrape(), request.method === 'HEAD')
      case '/api/events':
        return stream(response)
      case '/api/keys':
        return keys(response, url)
      default:
        return send(response, 404, 'text/plain; charset=utf-8', `no such page: ${url.pathname}\n`)
    }
  }

  async function stream(response: ServerResponse): Promise<void> {
    if (streams.size >= MAX_WATCHERS) {
      return send(response, 503, 'text/plain; charset=utf-8', `at most ${MAX_WATCHERS} pages may watch at once\n`)
    }
    response.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' })
    response.write('retry: 2000\n\n')
    streams.add(response)
    const unwatch = collector.watch()
    const write = (name: string, data: unknown) => {
      if (response.writableLength > MAX_STREAM_BACKLOG) response.destroy()
      else if (!response.destroyed) response.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`)
    }
    const onView = (view: unknown) => write('ring', view)
    const onEvent = (event: unknown) => write('node-event', event)
    collector.on('view', onView)
    collector.on('event', onEvent)
    response.on('close', () => {
      streams.delete(response)
      unwatch()
      collector.off('view', onView)
      collector.off('event', onEvent)
    })
    onView(await collector.view())
  }

  async function keys(response: ServerResponse, url: URL): Promise<void> {
    if (!collector.keysEnabled) {
      return send(response, 403, 'text/plain; charset=utf-8', 'listing keys is off; start the view with showKeys (CLI: --http-keys)\n')
    }
    const wanted = Number(url.searchParams.get('limit') ?? '100')
    const limit = Number.isInteger(wanted) && wanted > 0 ? Math.min(wanted, MAX_KEYS_LISTED) : 100
    const listed: { key: string; encoding: 'utf8' | 'hex' }[] = []
    let more = false
    for await (const key of socket.keys()) {
      if (listed.length === limit) {
        more = true
        break
      }
      const text = key.toString('utf8')
      const printable = Buffer.from(text, 'utf8').equals(key) && !/[\u0000-\u001f\u007f]/.test(text)
      listed.push(printable ? { key: text, encoding: 'utf8' } : { key: key.toString('hex'), encoding: 'hex' })
    }
    return send(response, 200, 'application/json; charset=utf-8', JSON.stringify({ keys: listed, more }))
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
  let closing: Promise<void> | undefined
  return {
    url: `http://${shown}:${address.port}/`,
    host: address.address,
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        collector.close()
        for (const response of streams) response.end()
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    },
  }
}

function send(response: ServerResponse, status: number, type: string, body: string | Buffer, headOnly = false): void {
  response.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) })
  response.end(headOnly ? undefined : body)
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** A Host header naming a loopback address or localhost (any port). */
function loopbackHost(header: string | undefined): boolean {
  if (!header) return false
  const name = header.startsWith('[') ? header.slice(1, header.indexOf(']')) : header.replace(/:\d+$/, '')
  return isLoopback(name.toLowerCase()) || name.toLowerCase().endsWith('.localhost')
}
