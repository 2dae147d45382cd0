'use strict'
/**
 * The legitimate side of `npm run bench:attack`, in a process of its own (forked, driven over
 * IPC): a key-holding ChordSocket client (`join: false`) that reads from the ring with a fixed
 * number of gets in flight and records each get's latency, and a newcomer that tries to connect
 * once a second (what an outsider flooding the handshake pool takes away).
 *
 * Messages in: {cmd: 'setup', subnet, networkKey, ports, keys, valueBytes, write}, then
 * {cmd: 'measure', seconds, inFlight}, then {cmd: 'probe'} (one get, once the attack is over:
 * has the client recovered?); each is answered with {ok, result} or {ok: false, error}.
 */
const { ChordSocket, MeshSocket, Protocol } = require('..')
const { nowUs, summarize } = require('./stats')

/** A get still unanswered this long after the phase ended is counted as timed out (the operation deadline is 15 s). */
const DRAIN_MS = 16_000
/** A newcomer's connect that takes longer than this counts as failed. */
const CONNECT_GIVE_UP_MS = 5_000
const CONNECT_EVERY_MS = 1_000

let protocol
let client
let keys = []
let ports = []

async function setup({ subnet, networkKey, ports: ringPorts, keys: count, valueBytes, write }) {
  protocol = new Protocol(subnet, { networkKey })
  ports = ringPorts
  client = new ChordSocket('127.0.0.1', 0, { protocol, join: false })
  client.on('error', () => {})
  await client.ready
  await client.connect('127.0.0.1', ports[0])
  keys = Array.from({ length: count }, (_, i) => `legit-${i}`)
  const value = Buffer.alloc(valueBytes, 'v')
  if (write) for (let i = 0; i < keys.length; i += 256) await client.update(keys.slice(i, i + 256).map((k) => [k, value]))
  // Read every key once: the client opens its connections to every owner before any attack.
  for (let i = 0; i < keys.length; i += 256) await Promise.all(keys.slice(i, i + 256).map((k) => client.get(k)))
  return { keys: keys.length }
}

/** `inFlight` loops of gets for `seconds`; then the gets still out get DRAIN_MS to finish. */
async function measure({ seconds, inFlight }) {
  const latencies = []
  const errors = {}
  let timedOut = 0
  const end = Date.now() + seconds * 1000
  const loop = async () => {
    while (Date.now() < end) {
      const key = keys[Math.floor(Math.random() * keys.length)]
      const started = nowUs()
      const outcome = await Promise.race([
        client.get(key).then(() => 'ok', (error) => error.code ?? error.name),
        new Promise((resolve) => setTimeout(() => resolve('drain'), Math.max(0, end - Date.now()) + DRAIN_MS)),
      ])
      if (outcome === 'drain') {
        timedOut++
        return
      }
      if (outcome === 'ok') latencies.push(nowUs() - started)
      else errors[outcome] = (errors[outcome] ?? 0) + 1
    }
  }
  const started = Date.now()
  const [connects] = await Promise.all([newcomers(end), Promise.all(Array.from({ length: inFlight }, loop))])
  return { seconds: (Math.min(Date.now(), end) - started) / 1000, gets: latencies.length, latency: summarize(latencies), errors, timedOut, connects }
}

/** Until `end`, once a second a fresh key holder connects to the next ring node: how long it took, or why it failed. */
async function newcomers(end) {
  const attempts = []
  for (let i = 0; Date.now() < end; i++) {
    const next = Date.now() + CONNECT_EVERY_MS
    const newcomer = new MeshSocket('127.0.0.1', 0, { protocol })
    newcomer.on('error', () => {})
    await newcomer.ready
    const started = Date.now()
    const outcome = await Promise.race([
      newcomer.connect('127.0.0.1', ports[i % ports.length]).then(() => 'connected', (error) => error.code ?? error.name),
      new Promise((resolve) => setTimeout(() => resolve('no answer'), CONNECT_GIVE_UP_MS)),
    ])
    attempts.push({ outcome, ms: Date.now() - started })
    await newcomer.destroy()
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())))
  }
  return attempts
}

/** One get of a key that exists: 'ok', or why it failed. */
async function probe() {
  return Promise.race([
    client.get(keys[0]).then((value) => (value ? 'ok' : 'missing'), (error) => error.code ?? error.name),
    new Promise((resolve) => setTimeout(() => resolve('no answer in 5 s'), 5000)),
  ])
}

const commands = { setup, measure, probe }
process.on('message', async (message) => {
  try {
    process.send({ ok: true, result: await commands[message.cmd](message) })
  } catch (error) {
    process.send({ ok: false, error: `${error.code ?? error.name}: ${error.message}` })
  }
})
// The parent went away: leave.
process.on('disconnect', () => process.exit(0))
