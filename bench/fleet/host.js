'use strict'
/**
 * One process of a fleet (bench/fleet/index.js): holds many ChordSockets of one subnet on
 * 127.0.0.1 and answers the parent's commands over the IPC channel (advanced serialization, so
 * latency samples cross as typed arrays). argv[2]: JSON { build, subnet, options }; `build` is
 * the package folder whose API is loaded (`require(build)`), so one harness drives any checkout.
 *
 * Nodes are added one at a time (`add`), each joining through the address the parent names;
 * a refused join is reported with its error code and the lone node is destroyed, never retried.
 * Dict work (`write`, `read`) keeps many operations in flight per process, spread round-robin
 * over this process's nodes; every operation goes through ChordSocket's batched API.
 */
const { valueFor } = require('../harness')

const settings = JSON.parse(process.argv[2])
const lib = require(settings.build)
const protocol = new lib.Protocol(settings.subnet)
/** The members this process holds, in the order they joined. */
const nodes = []

/** A join that neither resolves nor fails within this long is reported as hung (the engine's own operation deadline is shorter). */
const JOIN_TIMEOUT_MS = 60_000

const nowUs = () => Number(process.hrtime.bigint()) / 1000
const codeOf = (error) => (error && error.code) || (error && error.name) || 'Error'
const messageOf = (error) => String((error && error.message) || error).replace(/\s+/g, ' ').slice(0, 300)

function withTimeout(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} did not finish within ${ms} ms`), { code: 'ERR_HARNESS_TIMEOUT' })), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Run `count` jobs with at most `depth` in flight; `job(j)` is called with j = 0..count-1. */
async function pool(count, depth, job) {
  let next = 0
  const worker = async () => {
    while (next < count) await job(next++)
  }
  await Promise.all(Array.from({ length: Math.min(depth, count) }, worker))
}

/** Key indices start, start + step, ... below total. */
function indices({ start = 0, step = 1, total }) {
  const out = []
  for (let i = start; i < total; i += step) out.push(i)
  return out
}

const commands = {
  /** Start a node and join through `via` ([host, port]); null `via`: the first node, a ring of one. */
  async add({ via }) {
    const socket = new lib.ChordSocket('127.0.0.1', 0, { protocol, ...settings.options })
    await socket.ready
    const started = nowUs()
    if (via) {
      try {
        await withTimeout(socket.connect(via[0], via[1]), JOIN_TIMEOUT_MS, 'join')
      } catch (error) {
        await socket.destroy().catch(() => {})
        return { refused: { code: codeOf(error), message: messageOf(error) }, joinMs: (nowUs() - started) / 1000 }
      }
    }
    nodes.push(socket)
    return { id: socket.id, port: socket.addr[1], joinMs: (nowUs() - started) / 1000, member: socket.stats().member }
  },

  /** What each node says of its neighbours and connections (local `stats()`). */
  async links() {
    return nodes.map((socket) => {
      const s = socket.stats()
      return {
        id: socket.id,
        port: socket.addr[1],
        member: s.member,
        successor: s.successors[0]?.id,
        predecessor: s.predecessor?.id,
        fingers: s.fingers,
        connections: s.connections,
        peers: socket.peers.length,
        suspicions: s.suspicions,
      }
    })
  },

  /** Ask each target for its `Info` over the wire (`memberInfo`), from this process's nodes in turn. */
  async crossCheck({ targets, depth = 16 }) {
    const answers = new Array(targets.length)
    await pool(targets.length, depth, async (j) => {
      const target = targets[j]
      // `node` is the socket's native node (the web view asks members the same way).
      const asker = nodes[j % nodes.length]
      try {
        const info = await asker.node.memberInfo(target.id, '127.0.0.1', target.port)
        answers[j] = { id: info.node.id, member: info.member, successor: info.successors[0]?.id, predecessor: info.predecessor?.id }
      } catch (error) {
        answers[j] = { id: target.id, error: codeOf(error), message: messageOf(error) }
      }
    })
    return answers
  },

  /** Set keys `key-<i>` to `valueFor(i)` for the given indices, `depth` in flight. */
  async write({ range, depth }) {
    const keys = indices(range)
    const latencies = new Float64Array(keys.length)
    const errors = {}
    // Keys whose set rejected: not acknowledged, so a later read may rightly miss them.
    const failed = []
    let firstError
    const started = nowUs()
    await pool(keys.length, depth, async (j) => {
      const i = keys[j]
      const t = nowUs()
      try {
        await nodes[j % nodes.length].set(`key-${i}`, valueFor(i))
        latencies[j] = nowUs() - t
      } catch (error) {
        latencies[j] = NaN
        failed.push(i)
        errors[codeOf(error)] = (errors[codeOf(error)] ?? 0) + 1
        firstError ??= `key-${i}: ${codeOf(error)} ${messageOf(error)}`
      }
    })
    return { ops: keys.length, failed, errors, firstError, elapsedMs: (nowUs() - started) / 1000, latencies }
  },

  /**
   * Read keys back, `depth` in flight. Each key is right (its value), wrong (another value),
   * missing (absent) or failed (the get rejected); the indices of all but the right ones are returned.
   */
  async read({ range, depth }) {
    const keys = indices(range)
    const latencies = new Float64Array(keys.length)
    const wrong = []
    const missing = []
    const failed = []
    const errors = {}
    let firstWrong
    let firstError
    const started = nowUs()
    await pool(keys.length, depth, async (j) => {
      const i = keys[j]
      const t = nowUs()
      try {
        const value = await nodes[j % nodes.length].get(`key-${i}`)
        latencies[j] = nowUs() - t
        if (value === undefined) missing.push(i)
        else if (value.toString() !== valueFor(i)) {
          wrong.push(i)
          firstWrong ??= `key-${i}: got ${JSON.stringify(value.toString().slice(0, 40))}`
        }
      } catch (error) {
        latencies[j] = NaN
        failed.push(i)
        errors[codeOf(error)] = (errors[codeOf(error)] ?? 0) + 1
        firstError ??= `key-${i}: ${codeOf(error)} ${messageOf(error)}`
      }
    })
    return { ops: keys.length, wrong, missing, failed, errors, firstWrong, firstError, elapsedMs: (nowUs() - started) / 1000, latencies }
  },

  /** Greedy finger-table lookups of the given keys, from this process's nodes in turn: hops and owner of each. */
  async lookups({ keys, depth = 64 }) {
    const hops = new Float64Array(keys.length)
    const owners = new Array(keys.length)
    let failed = 0
    await pool(keys.length, depth, async (j) => {
      try {
        const result = await nodes[j % nodes.length].lookup(`key-${keys[j]}`)
        hops[j] = result.hops
        owners[j] = result.owner.id
      } catch {
        hops[j] = NaN
        failed++
      }
    })
    return { hops, owners, failed }
  },

  /** For each key index, the ids of this process's nodes that hold the key locally (owner or replica). */
  async holders({ keys }) {
    return keys.map((i) => nodes.filter((socket) => socket.localGet(`key-${i}`) !== undefined).map((socket) => socket.id))
  },

  /** The loaded build's defaults that the reports quote (older builds export no `limits`: their documented defaults). */
  async describe() {
    const limits = lib.limits ?? {}
    return {
      replicas: settings.options.replicas ?? limits.defaultReplicas ?? 3,
      maxPeers: settings.options.maxPeers ?? limits.defaultMaxPeers ?? 64,
      stabilizeMs: settings.options.stabilizeMs ?? limits.defaultStabilizeMs ?? 250,
      limitsExported: lib.limits !== undefined,
    }
  },

  async usage() {
    return { pid: process.pid, rss: process.memoryUsage().rss, nodes: nodes.length }
  },

  /** Drop every node at once (no leave, no hand-off): the run is over. */
  async destroy() {
    await Promise.all(nodes.map((socket) => socket.destroy()))
    nodes.length = 0
    return null
  },
}

process.on('message', async (message) => {
  const reply = (body) => process.connected && process.send({ id: message.id, ...body })
  try {
    reply({ ok: true, result: await commands[message.cmd](message.args ?? {}) })
  } catch (error) {
    reply({ ok: false, error: `${codeOf(error)}: ${messageOf(error)}` })
  }
})
// The parent is gone: leave rather than linger.
process.on('disconnect', () => process.exit(0))
process.send({ ready: true })
