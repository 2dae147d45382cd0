'use strict'
/**
 * The floor: a raw loopback TCP round trip. A tiny echo server on 127.0.0.1:0 and a client in
 * this process (Nagle off) ping-pong one byte; p50/p99 of the round trip, after a warm-up.
 */
const net = require('node:net')
const { summarize, nowUs } = require('./stats')
const { send, bounded, errorText } = require('./harness')

async function measure({ count = 5000, budgetMs = 3000 } = {}) {
  const server = net.createServer((sock) => {
    sock.setNoDelay(true)
    sock.on('data', (d) => sock.write(d))
    sock.on('error', () => {})
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const client = net.connect(server.address().port, '127.0.0.1')
  client.setNoDelay(true)
  await new Promise((resolve, reject) => client.once('connect', resolve).once('error', reject))
  let waiting = null
  client.on('data', () => {
    const w = waiting
    waiting = null
    if (w) w()
  })
  const ping = () =>
    new Promise((resolve) => {
      waiting = resolve
      client.write('x')
    })
  for (let i = 0; i < 500; i++) await ping()
  const lat = []
  const stopAt = Date.now() + budgetMs
  for (let i = 0; i < count && Date.now() < stopAt; i++) {
    const t = nowUs()
    await ping()
    lat.push(nowUs() - t)
  }
  client.destroy()
  server.close()
  return { latency: summarize(lat) }
}

module.exports = { measure }

if (require.main === module) {
  const options = JSON.parse(process.argv[2] || '{}')
  send({ type: 'phase', name: 'rtt', deadlineMs: (options.budgetMs || 3000) + 15000 })
  bounded(measure(options), (options.budgetMs || 3000) + 10000).then(
    (r) => {
      if (r.hung) send({ type: 'fatal', message: 'raw TCP ping-pong hung' })
      else send({ type: 'result', name: 'rtt', data: r.value })
      send({ type: 'done' })
      setTimeout(() => process.exit(0), 50)
    },
    (e) => {
      send({ type: 'fatal', message: errorText(e) })
      setTimeout(() => process.exit(2), 50)
    },
  )
}
