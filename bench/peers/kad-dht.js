'use strict'
/**
 * @libp2p/kad-dht: not measured on this machine. Kept as a peer so that its row says why.
 *
 * Checked (2026-11, Node 20.20.2, npm 11.19.1) in a scratch directory, not in this package:
 * - @libp2p/kad-dht 16.4.5 + libp2p 3.3.11 (+ @libp2p/tcp, noise, yamux, identify, ping) install
 *   with EBADENGINE warnings (p-retry 8.0.1 requires node >= 22), are ESM-only (usable from
 *   CommonJS through import()), and crash on start/stop on Node 20:
 *   `TypeError: Promise.withResolvers is not a function` (it-queue, via mortice / peer-store).
 * - The older line (libp2p 1.x + @libp2p/kad-dht 12.x) crashes the same way: its caret ranges
 *   resolve mortice -> it-queue to the same current release.
 * - With a Promise.withResolvers polyfill, 4 nodes start and connect, but put() fails with
 *   "The stream has been reset" and get() finds nothing: no usable figures without patching it.
 * It is therefore not a devDependency; on Node >= 22 it could be added and measured.
 */
const { send } = require('../harness')

function reason() {
  const major = Number(process.versions.node.split('.')[0])
  let installed = false
  try {
    require.resolve('@libp2p/kad-dht/package.json')
    installed = true
  } catch {}
  if (major < 22) {
    return `not run: @libp2p/kad-dht 16.x (libp2p 3.x) needs Node ≥ 22 (Promise.withResolvers; p-retry 8 engines >=22); this is Node ${process.versions.node}${installed ? '' : ', and it is not installed'}`
  }
  if (!installed) return 'not run: @libp2p/kad-dht is not installed (not a devDependency; see bench/peers/kad-dht.js)'
  return 'not run: no adapter for @libp2p/kad-dht yet (see bench/peers/kad-dht.js)'
}

module.exports = { reason }

if (require.main === module) {
  send({ type: 'unavailable', reason: reason() })
  send({ type: 'done' })
  setTimeout(() => process.exit(0), 50)
}
