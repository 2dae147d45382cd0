/**
 * A whole ring restarted from its folders is the same ring with the same dict: five member
 * processes with a dataDir each take a stream of writes, are all SIGKILLed at once, and come
 * back on the same ports from their folders with no bootstrap address.
 */
import test from 'ava'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChordSocket, Protocol } from '../index'
import { until } from './helpers'
import { Member, settled, startRing } from './member'

test('5 members SIGKILLed together during writes come back from their folders: same ids, one ring, every acknowledged write read from every member', async (t) => {
  const subnet = `persist-ring-${process.pid}-${Date.now()}`
  const root = mkdtempSync(join(tmpdir(), 'chordnet-ring-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dataDir = (i: number) => join(root, `member-${i}`)
  const settings = (i: number, port = 0) => ({ subnet, port, options: { stabilizeMs: 50, dataDir: dataDir(i) } })
  const members = await startRing(5, (i) => settings(i))
  const running: Member[] = [...members]
  t.teardown(() => running.forEach((m) => m.child.kill('SIGKILL')))
  await settled(members)

  // A client streams writes (64 in flight) and notes each one acknowledged.
  const client = new ChordSocket('127.0.0.1', 0, { protocol: new Protocol(subnet), join: false, stabilizeMs: 50 })
  await client.ready
  for (const m of members) await client.connect('127.0.0.1', m.port)
  const acknowledged = new Map<string, string>()
  let next = 0
  let writing = true
  const writer = async () => {
    while (writing) {
      const key = `key-${next++}`
      const value = `v-${key}-${'x'.repeat(100)}`
      try {
        await client.set(key, value)
        acknowledged.set(key, value)
      } catch {
        // In flight when the ring died: not acknowledged, nothing promised.
      }
    }
  }
  const writers = Array.from({ length: 64 }, writer)
  await until(() => acknowledged.size >= 1500, 30_000, '1,500 acknowledged writes before the crash')

  // Every member dies at once, mid-stream.
  for (const m of members) m.child.kill('SIGKILL')
  await Promise.all(members.map((m) => m.exited))
  writing = false
  const promised = new Map(acknowledged)
  await client.destroy()
  await Promise.all(writers)

  // All restart on their ports from their folders, knowing no address but what they kept.
  running.length = 0
  const started = Date.now()
  const restarted = await Promise.all(
    members.map((m, i) => {
      const member = new Member(settings(i, m.port))
      running.push(member)
      return member.started()
    }),
  )
  t.deepEqual(restarted.map((m) => m.id), members.map((m) => m.id), 'same ids')
  await settled(restarted, 60_000)
  t.log(`one ring again ${Date.now() - started} ms after the restart`)
  const file = join(root, 'acknowledged.json')
  writeFileSync(file, JSON.stringify(Object.fromEntries(promised)))
  for (const member of restarted) {
    t.deepEqual(await member.verify(file), [], `every acknowledged write read back through ${member.id.slice(0, 8)}`)
  }
  t.log(`${promised.size} acknowledged writes, all read back from each of 5 members ${Date.now() - started} ms after the restart`)
})
