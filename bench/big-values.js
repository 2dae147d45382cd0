#!/usr/bin/env node
// Big values on a 3-node ring (in one process, loopback): sets/s and gets/s of 1 MiB values
// beside 1 KiB ones measured in the same run, and how long a joiner takes to receive its share
// of 1 MiB values. Usage: node bench/big-values.js [--ops N] [--inflight N]
const { randomBytes } = require('node:crypto')
const { ChordSocket, createTestnet } = require('..')

const { numberOption: option } = require('./stats')
const OPS = option('--ops', 200)
const INFLIGHT = option('--inflight', 8)

/** Run `count` operations `op(i)` with `INFLIGHT` in flight; returns seconds taken. */
async function timed(count, op) {
  let next = 0
  const started = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (next < count) await op(next++)
    }),
  )
  return Number(process.hrtime.bigint() - started) / 1e9
}

async function measure(net, label, valueBytes, count) {
  const client = net.nodes[0]
  const value = randomBytes(valueBytes)
  const setS = await timed(count, (i) => client.set(`${label}-${i}`, value))
  const getS = await timed(count, async (i) => {
    const got = await client.get(`${label}-${i}`)
    if (!got || got.length !== valueBytes) throw new Error(`${label}-${i} came back wrong`)
  })
  const mib = (count * valueBytes) / (1 << 20)
  return { label, count, setsPerS: count / setS, getsPerS: count / getS, setMiBs: (mib * 3) / setS, getMiBs: mib / getS }
}

async function main() {
  const net = await createTestnet(3)
  try {
    const rows = [await measure(net, '1KiB', 1 << 10, OPS * 10), await measure(net, '1MiB', 1 << 20, OPS)]
    // A joiner's share of the 1 MiB values reaches it by data movement (Fetch pages by bytes).
    const joiner = new ChordSocket('127.0.0.1', 0, { stabilizeMs: 50, protocol: net.nodes[0].protocol })
    await joiner.ready
    const started = Date.now()
    await joiner.connect(...net.nodes[0].addr)
    const everyone = () => [...net.nodes, joiner]
    const expected = 3 * (OPS * 10 + OPS)
    while (everyone().reduce((sum, n) => sum + n.stats().keys, 0) !== expected || joiner.stats().keys === 0) {
      if (Date.now() - started > 120_000) throw new Error('the joiner did not receive its share within 120 s')
      await new Promise((r) => setTimeout(r, 20))
    }
    const joinMs = Date.now() - started
    const total = (field) => everyone().reduce((sum, n) => sum + n.stats()[field], 0)
    const [oversized, suspicions] = [total('oversizedFrames'), total('suspicions')]
    await joiner.close()

    console.log(`3 nodes, loopback, ${INFLIGHT} in flight, r = 3 (a set stores 3 copies)`)
    console.log('| values | ops | sets/s | gets/s | set MiB/s (3 copies) | get MiB/s |')
    console.log('|---|---:|---:|---:|---:|---:|')
    for (const r of rows) {
      console.log(`| ${r.label} | ${r.count} | ${r.setsPerS.toFixed(0)} | ${r.getsPerS.toFixed(0)} | ${r.setMiBs.toFixed(1)} | ${r.getMiBs.toFixed(1)} |`)
    }
    console.log(`a 4th node joined and held its share (3 copies of every key in place) after ${joinMs} ms; frames over the limit: ${oversized}; peers suspected under this load (none failed): ${suspicions}`)
  } finally {
    await net.destroy()
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
