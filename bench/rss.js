#!/usr/bin/env node
'use strict'
/**
 * `node bench/rss.js [--keys 1000000] [--value-bytes 1024]`: the resident memory of one node
 * holding N keys, in memory and with a dataDir (sync durability), each in a fresh process. With
 * a dataDir the node keeps only its index in memory (per key: its position, key, version,
 * digest share, length) and the store's block cache (32 MiB, set explicitly), so its memory
 * grows with the number of keys, not with the bytes of the values. The on-disk node is also
 * restarted on its folder, to show what loading the index costs (time and memory; no value is
 * read). Prints a markdown table; the folder goes in a temporary directory, removed after.
 */
const { fork } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..')

async function child(options) {
  const { ChordSocket, Protocol } = require(ROOT)
  const mib = (bytes) => Math.round(bytes / 2 ** 20)
  const rss = () => {
    global.gc?.()
    return process.memoryUsage().rss
  }
  const protocol = new Protocol(`rss-${process.pid}`)
  const start = () => new ChordSocket('127.0.0.1', 0, { protocol, events: false, ...(options.dataDir ? { dataDir: options.dataDir } : {}) })
  const before = rss()
  let node = start()
  await node.ready
  let next = 0
  const t0 = Date.now()
  const worker = async () => {
    while (next < options.keys) {
      const i = next++
      const value = Buffer.alloc(options.valueBytes, 'v')
      value.writeUInt32BE(i, 0)
      await node.set(`key-${String(i).padStart(8, '0')}`, value)
    }
  }
  await Promise.all(Array.from({ length: 256 }, worker))
  const writeSeconds = (Date.now() - t0) / 1000
  await new Promise((resolve) => setTimeout(resolve, 500))
  const held = node.stats().keys
  const result = { keys: held, writeSeconds, rssMiB: mib(rss() - before), rssTotalMiB: mib(rss()) }
  if (options.dataDir) {
    await node.destroy()
    const t1 = Date.now()
    const beforeRestart = rss()
    node = start()
    await node.ready
    result.restartSeconds = (Date.now() - t1) / 1000
    result.restartKeys = node.stats().keys
    result.restartRssMiB = mib(rss() - beforeRestart)
    const sample = await node.get('key-00000007')
    result.readBack = sample?.readUInt32BE(0) === 7
  }
  await node.destroy()
  process.send(result)
}

function run(options) {
  return new Promise((resolve, reject) => {
    const proc = fork(__filename, ['--child', JSON.stringify(options)], { execArgv: ['--expose-gc'], stdio: 'inherit' })
    proc.on('message', resolve)
    proc.on('exit', (code) => code !== 0 && reject(new Error(`child exited with ${code}`)))
  })
}

async function main() {
  const args = process.argv.slice(2)
  if (args[0] === '--child') return child(JSON.parse(args[1]))
  const value = (flag, fallback) => (args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) : fallback)
  const keys = value('--keys', 1_000_000)
  const valueBytes = value('--value-bytes', 1024)
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'chordnet-rss-'))
  try {
    const memory = await run({ keys, valueBytes })
    const disk = await run({ keys, valueBytes, dataDir: path.join(root, 'node') })
    const load = `${os.loadavg()[0].toFixed(1)}`
    process.stdout.write(
      [
        `One node, ${keys.toLocaleString('en-US')} keys of ${valueBytes} bytes (${os.cpus().length} cores, load ${load}, ${new Date().toISOString().slice(0, 10)}):`,
        '',
        '| | RSS growth | RSS of the process | writes (256 in flight) |',
        '|---|---:|---:|---:|',
        `| in memory | ${memory.rssMiB} MiB | ${memory.rssTotalMiB} MiB | ${memory.writeSeconds.toFixed(1)} s |`,
        `| dataDir (sync) | ${disk.rssMiB} MiB | ${disk.rssTotalMiB} MiB | ${disk.writeSeconds.toFixed(1)} s |`,
        `| dataDir, restarted on its folder | ${disk.restartRssMiB} MiB | — | loaded ${disk.restartKeys.toLocaleString('en-US')} keys in ${disk.restartSeconds.toFixed(1)} s (value read back: ${disk.readBack}) |`,
        '',
      ].join('\n'),
    )
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
