'use strict'
/**
 * chordnet MeshSocket figures: (1) whisper round trip — A whispers to B, B's 'message' listener
 * replies, A's 'message' event closes the round trip; (2) broadcast of a 1 KiB message across 10
 * MeshSockets (peer exchange makes them a full mesh) — time from send() until all 9 others
 * received it, over repetitions. Sockets on 127.0.0.1 port 0.
 */
const path = require('node:path')
const { MeshSocket } = require(path.resolve(__dirname, '..'))
const { summarize, nowUs } = require('./stats')
const { send, bounded, errorText, sleep } = require('./harness')

async function whisper({ count = 3000, budgetMs = 3000 }) {
  const a = new MeshSocket('127.0.0.1', 0)
  const b = new MeshSocket('127.0.0.1', 0)
  await Promise.all([a.ready, b.ready])
  b.on('message', (m) => void m.reply(m.packets[0]))
  let waiting = null
  a.on('message', (m) => {
    const w = waiting
    waiting = null
    if (w) w(m)
  })
  await a.connect(...b.addr)
  const rtt = (i) =>
    new Promise((resolve, reject) => {
      waiting = resolve
      a.send([String(i)], { flag: 'whisper', to: b.id }).catch(reject)
    })
  let wrong = 0
  for (let i = 0; i < 300; i++) await rtt(i)
  const lat = []
  const stopAt = Date.now() + budgetMs
  for (let i = 0; i < count && Date.now() < stopAt; i++) {
    const t = nowUs()
    const m = await rtt(i)
    lat.push(nowUs() - t)
    if (m.packets[0].toString() !== String(i)) wrong++
  }
  await Promise.all([a.close(), b.close()])
  return { latency: summarize(lat), wrong }
}

async function broadcast({ reps = 200, budgetMs = 3000, size = 10 }) {
  const nodes = Array.from({ length: size }, () => new MeshSocket('127.0.0.1', 0))
  await Promise.all(nodes.map((n) => n.ready))
  for (let i = 1; i < size; i++) await nodes[i].connect(...nodes[i - 1].addr)
  const meshDeadline = Date.now() + 10000
  while (Date.now() < meshDeadline && !nodes.every((n) => n.peers.length === size - 1)) await sleep(25)
  const peers = nodes.map((n) => n.peers.length)
  let pending = null
  for (const node of nodes) {
    node.on('message', (m) => {
      if (!pending || m.packets[0].readUInt32BE(0) !== pending.rep) return
      pending.got.add(node.id)
      if (pending.got.size === size - 1) pending.resolve()
    })
  }
  const payload = Buffer.alloc(1024, 0x61)
  const one = (rep, from) =>
    new Promise((resolve, reject) => {
      pending = { rep, got: new Set(), resolve }
      const p = Buffer.from(payload)
      p.writeUInt32BE(rep, 0)
      from.send([p]).catch(reject)
    })
  for (let r = 0; r < 20; r++) await one(r, nodes[r % size])
  const lat = []
  const stopAt = Date.now() + budgetMs
  for (let r = 20; r < 20 + reps && Date.now() < stopAt; r++) {
    const t = nowUs()
    await one(r, nodes[r % size])
    lat.push(nowUs() - t)
  }
  await Promise.all(nodes.map((n) => n.close()))
  return { latency: summarize(lat), nodes: size, bytes: payload.length, peers }
}

if (require.main === module) {
  const options = JSON.parse(process.argv[2] || '{}')
  const budgetMs = options.budgetMs || 3000
  ;(async () => {
    for (const [name, fn] of [
      ['whisper', whisper],
      ['broadcast', broadcast],
    ]) {
      send({ type: 'phase', name, deadlineMs: budgetMs + 30000 })
      try {
        const r = await bounded(fn({ ...options, budgetMs }), budgetMs + 20000)
        if (r.hung) send({ type: 'error', name, message: `hung (no completion within ${(budgetMs + 20000) / 1000} s)` })
        else send({ type: 'result', name, data: r.value })
      } catch (e) {
        send({ type: 'error', name, message: errorText(e) })
      }
    }
    send({ type: 'done' })
    setTimeout(() => process.exit(0), 50)
  })()
}
