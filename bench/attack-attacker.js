'use strict'
/**
 * The attacker of `npm run bench:attack`, in a process of its own (forked with the tsx loader,
 * since it reuses the test suite's attack tools and raw Noise client in __test__/attack.ts and
 * __test__/raw.ts). One message {cmd: 'start', attacks, subnet, networkKey, ports, bigOwnerPort}
 * starts the attacks named; {cmd: 'stop'} stops them and is answered with what they did.
 *
 * - idle: an outsider (no network key) holding 1,000 idle sockets spread over the ring's nodes,
 *   reopening each one a node closes.
 * - junk: an outsider completing junk handshakes (a random Noise first message) as fast as it
 *   can, 64 at a time spread over the nodes.
 * - slow-reader: a key-holding client asking the owner of a 1 MiB value for it 2,000 times and
 *   never reading; when the node drops it, it comes back and does it again.
 * - candidates: a key-holding client sending, every 100 ms to the next node, a Candidates
 *   request naming 2,000 made-up nodes at the attacker's own listener (the third party), which
 *   counts the connections the ring opens to it.
 */
const { DialCounter, ensureFileLimit, IdleFlood, JunkHandshakes, madeUpNode } = require('../__test__/attack')
const { frame, RawPeer } = require('../__test__/raw')
const { Protocol } = require('..')

const IDLE_SOCKETS = 1000
const JUNK_LANES = 64
/** The slow reader: 2,000 gets of a 1 MiB value. */
const SLOW_READER_GETS = 2000
const CANDIDATES_PER_MESSAGE = 2000
const CANDIDATES_EVERY_MS = 100

let stopped = false
const running = []

function idle({ ports }) {
  const floods = ports.map((port) => new IdleFlood(port, Math.ceil(IDLE_SOCKETS / ports.length)))
  return {
    ready: Promise.resolve(),
    stop: () => floods.forEach((f) => f.stop()),
    report: () => ({ idleSocketsOpened: floods.reduce((sum, f) => sum + f.opened, 0) }),
  }
}

function junk({ ports }) {
  const started = Date.now()
  const lanes = ports.map((port) => new JunkHandshakes(port, Math.ceil(JUNK_LANES / ports.length)))
  return {
    ready: Promise.resolve(),
    stop: () => lanes.forEach((l) => l.stop()),
    report: () => {
      const completed = lanes.reduce((sum, l) => sum + l.completed, 0)
      return { junkHandshakes: completed, junkPerSecond: Math.round((completed * 1000) / (Date.now() - started)) }
    },
  }
}

function slowReader({ protocol, bigOwnerPort }) {
  let connections = 0
  let requestedMiB = 0
  let peer
  let connected
  const ready = new Promise((resolve) => (connected = resolve))
  const requests = Buffer.concat(Array.from({ length: SLOW_READER_GETS }, (_, i) => frame({ Request: { id: i + 1, body: { Get: { key: Buffer.from('big') } } } })))
  const run = async () => {
    while (!stopped) {
      try {
        peer = await RawPeer.handshaken(bigOwnerPort, protocol)
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100))
        continue
      }
      connections++
      connected()
      peer.socket.pause() // never read another byte
      peer.write(requests)
      requestedMiB += SLOW_READER_GETS
      await peer.closed
    }
  }
  run()
  return {
    ready,
    stop: () => peer?.socket.destroy(),
    report: () => ({ slowReaderConnections: connections, requestedMiB }),
  }
}

function candidates({ protocol, ports }) {
  let sent = 0
  let victim
  const peers = []
  let timer
  const setup = (async () => {
    victim = await DialCounter.open()
    for (const port of ports) peers.push(await handshakenWithRetries(port, protocol))
    let id = 1
    timer = setInterval(() => {
      const peer = peers[sent % peers.length]
      const madeUp = Array.from({ length: CANDIDATES_PER_MESSAGE }, () => madeUpNode(victim.port))
      peer.write(frame({ Request: { id: id++, body: { Candidates: madeUp } } }))
      sent++
    }, CANDIDATES_EVERY_MS)
  })()
  return {
    ready: setup,
    stop: async () => {
      await setup.catch(() => {})
      clearInterval(timer)
      for (const peer of peers) peer.socket.destroy()
      await victim?.close()
    },
    report: () => ({ candidatesMessages: sent, thirdPartyConnections: victim?.count ?? 0 }),
  }
}

/** A key holder's handshake, tried again (for up to 10 s) while the node sheds connections. */
async function handshakenWithRetries(port, protocol) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await RawPeer.handshaken(port, protocol)
    } catch (error) {
      if (attempt >= 100) throw error
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

const ATTACKS = { idle, junk, 'slow-reader': slowReader, candidates }
/** The key holders' attacks connect first: the outsiders' floods would keep them out too. */
const ORDER = ['slow-reader', 'candidates', 'idle', 'junk']

async function start({ attacks, subnet, networkKey, ports, bigOwnerPort }) {
  ensureFileLimit(IDLE_SOCKETS * 2 + 500)
  const protocol = new Protocol(subnet, { networkKey })
  for (const name of ORDER.filter((n) => attacks.includes(n))) {
    const attack = ATTACKS[name]({ protocol, ports, bigOwnerPort })
    running.push({ name, attack })
    await attack.ready
  }
  return { started: attacks }
}

async function stop() {
  stopped = true
  const report = {}
  for (const { attack } of running) Object.assign(report, attack.report())
  await Promise.all(running.map(({ attack }) => attack.stop()))
  return report
}

const commands = { start, stop }
process.on('message', async (message) => {
  try {
    process.send({ ok: true, result: await commands[message.cmd](message) })
  } catch (error) {
    process.send({ ok: false, error: `${error.code ?? error.name}: ${error.message}` })
  }
})
process.on('disconnect', () => process.exit(0))
// An attack that fails later (a connection refused mid-flood) is reported, not fatal.
process.on('unhandledRejection', (error) => console.error(`attacker: ${error.message}`))
