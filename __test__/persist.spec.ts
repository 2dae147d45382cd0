/**
 * A node with a dataDir: it keeps its id and data across a restart, its folder is refused to a
 * second node, a damaged store stops the start with an error naming the file (and resync keeps
 * the identity and refills from the ring), and a full disk refuses writes with a typed error
 * while reads go on, until space returns.
 */
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChordSocket, generateKeyPair, nodeIdOf, StorageError } from '../index'
import { chordOptions, testNeeding, until } from './helpers'

function folder(t: { teardown: (f: () => void) => void }, name: string): string {
  const root = mkdtempSync(join(tmpdir(), `chordnet-${name}-`))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  return root
}

async function started(port: number, dataDir: string, extra = {}): Promise<ChordSocket> {
  const node = new ChordSocket('127.0.0.1', port, chordOptions({ dataDir, ...extra }))
  await node.ready
  return node
}

/** The error a start fails with (a start that succeeds is closed and counts as no error). */
async function startError(port: number, dataDir: string): Promise<any> {
  const node = new ChordSocket('127.0.0.1', port, chordOptions({ dataDir }))
  return node.ready.then(
    () => node.destroy().then(() => null),
    (error) => error,
  )
}

/** The store's journal files, largest first. */
function journals(dataDir: string): string[] {
  const store = join(dataDir, 'store')
  return readdirSync(store)
    .filter((name) => name.endsWith('.jnl'))
    .map((name) => join(store, name))
    .sort((a, b) => statSync(b).size - statSync(a).size)
}

test('a node restarted on its folder keeps its id and its data; a second node on the folder is refused', async (t) => {
  const dataDir = join(folder(t, 'restart'), 'node')
  const node = await started(0, dataDir)
  const keys = Array.from({ length: 300 }, (_, i) => `key-${i}`)
  await Promise.all(keys.map((k) => node.set(k, `v-${k}`)))
  await node.delete('key-0')
  const second = new ChordSocket('127.0.0.1', 0, chordOptions({ dataDir }))
  const refused = await second.ready.then(() => null, (error) => error)
  t.true(refused instanceof StorageError)
  t.is(refused.code, 'ERR_STORAGE_LOCKED')
  t.true(refused.message.includes(dataDir), refused.message)
  const [id, port] = [node.id, node.addr[1]]
  await node.destroy() // a crash as peers see it; the folder is released
  const again = await started(port, dataDir)
  t.teardown(() => again.destroy())
  t.is(again.id, id, 'same id')
  t.is(again.stats().keys, keys.length - 1)
  t.is(await again.get('key-0'), undefined, 'the delete stayed deleted')
  const values = await Promise.all(keys.slice(1).map((k) => again.get(k)))
  t.deepEqual(values.map(String), keys.slice(1).map((k) => `v-${k}`))
  // Versions never go backwards across the restart: a new write wins over the old one.
  await again.set('key-1', 'newer')
  t.is((await again.get('key-1'))?.toString(), 'newer')
})

test('the folder keeps the key pair: the id it derives survives restarts; another keyPair is refused; the file is private', async (t) => {
  const dataDir = join(folder(t, 'identity'), 'node')
  const keyPair = generateKeyPair()
  const node = await started(0, dataDir, { keyPair })
  t.is(node.id, nodeIdOf(keyPair.publicKey), 'a given key pair becomes the folder identity')
  await node.destroy()
  t.is(statSync(join(dataDir, 'identity')).mode & 0o777, 0o600, 'the identity file (a secret key) is readable by its owner only')
  const again = await started(0, dataDir)
  t.is(again.id, nodeIdOf(keyPair.publicKey), 'restarted without keyPair: the folder supplies it')
  await again.destroy()
  const other = new ChordSocket('127.0.0.1', 0, chordOptions({ dataDir, keyPair: generateKeyPair() }))
  const refused = await other.ready.then(() => null, (error) => error)
  t.is(refused?.code, 'ERR_INVALID_ARGUMENT')
  t.regex(refused?.message ?? '', /keyPair differs from the key pair kept in .*identity/)
})

test('a damaged store stops the start with an error naming the file and the remedy; resync keeps the identity and refills from the ring', async (t) => {
  const root = folder(t, 'corrupt')
  const dirs = [0, 1, 2].map((i) => join(root, `node-${i}`))
  const nodes = [await started(0, dirs[0])]
  for (const dir of dirs.slice(1)) {
    const node = await started(0, dir)
    await node.connect(...nodes[0].addr)
    nodes.push(node)
  }
  t.teardown(() => Promise.all(nodes.map((n) => n.destroy())))
  // 12 MiB of values, so a damaged journal loses far more than the one batch a crash may tear.
  const value = randomBytes(4096) // incompressible: the journal is compressed
  const keys = Array.from({ length: 3000 }, (_, i) => `key-${i}`)
  for (let i = 0; i < keys.length; i += 256) await Promise.all(keys.slice(i, i + 256).map((k) => nodes[0].set(k, value)))
  await until(() => nodes.every((n) => n.stats().keys === keys.length), 20_000, 'three copies of every key')
  const [victim, id, port] = [nodes[0], nodes[0].id, nodes[0].addr[1]]
  await victim.destroy()

  // A journal cut short: the start refuses, naming the journal and the remedy.
  const [journal] = journals(dirs[0])
  truncateSync(journal, 1 << 20)
  const cut = await startError(port, dirs[0])
  t.true(cut instanceof StorageError, String(cut))
  t.is(cut.code, 'ERR_STORAGE_CORRUPT')
  t.true(cut.message.includes(journal), cut.message)
  t.regex(cut.message, /resync/)

  // Journals deleted by hand: the store lost its marker, never a silent empty start.
  for (const file of journals(dirs[0])) unlinkSync(file)
  const lost = await startError(port, dirs[0])
  t.is(lost?.code, 'ERR_STORAGE_CORRUPT', String(lost))
  t.true(lost.message.includes(join(dirs[0], 'store')), lost.message)
  t.regex(lost.message, /marker/)

  // resync: same identity, local data dropped, refilled from the ring it remembered.
  const resynced = await started(port, dirs[0], { resync: true })
  nodes[0] = resynced
  t.is(resynced.id, id)
  await until(() => resynced.stats().keys === keys.length, 30_000, 'the resynced node refilled from the ring')
  t.is((await resynced.get('key-7'))?.length, 4096)
})

/** Mount a small tmpfs of our own; `null` when this user may not mount one. */
function mountTmpfs(dir: string, size: string): string | null {
  mkdirSync(dir, { recursive: true })
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' })
  return mounted.status === 0 ? null : `${mounted.stderr || mounted.error?.message || 'mount failed'}`.trim()
}

const mountUnavailable = process.platform !== 'linux' ? `tmpfs is Linux-only (this is ${process.platform})` : process.getuid?.() !== 0 ? 'mounting its own tmpfs needs root (CI runs as root)' : undefined

testNeeding(mountUnavailable)('a full disk (ENOSPC on a 16 MiB tmpfs): writes fail with ERR_STORAGE_FULL, reads go on, writes resume once space returns', async (t) => {
  const mountPoint = join(folder(t, 'enospc'), 'disk')
  const refused = mountTmpfs(mountPoint, '16m')
  if (refused !== null) {
    t.fail(`cannot mount a tmpfs for the ENOSPC test: ${refused}`)
    return
  }
  let node: ChordSocket | undefined
  t.teardown(async () => {
    await node?.destroy()
    if (spawnSync('umount', [mountPoint]).status !== 0) spawnSync('umount', ['-l', mountPoint])
  })
  const dataDir = join(mountPoint, 'node')
  node = await started(0, dataDir)
  // Room to free later.
  const filler = join(mountPoint, 'filler')
  writeFileSync(filler, Buffer.alloc(6 << 20, 1))
  const value = randomBytes(16 << 10) // incompressible, as most values are
  const stored: string[] = []
  let full: any
  for (let i = 0; !full && i < 2000; i++) {
    const key = `key-${i}`
    await node.set(key, value).then(
      () => stored.push(key),
      (error) => (full = error),
    )
  }
  t.truthy(full, 'the disk filled up')
  t.true(full instanceof StorageError, String(full))
  t.is(full.code, 'ERR_STORAGE_FULL')
  t.true(full.message.includes(dataDir), full.message)
  t.true(stored.length > 50, `${stored.length} writes stored before the disk was full`)
  const again = await node.set('while-full', 'x').then(() => null, (error) => error)
  t.is(again?.code, 'ERR_STORAGE_FULL', 'still refused while the disk is full')
  const reads = await Promise.all(stored.map((k) => node!.get(k)))
  t.true(reads.every((v) => v?.equals(value)), 'every stored value is still read')

  unlinkSync(filler)
  await until(async () => (await node!.set('after', 'space returned').then(() => true, () => false)), 10_000, 'writes to resume')
  t.is((await node.get('after'))?.toString(), 'space returned')
  t.true(existsSync(dataDir))
})
