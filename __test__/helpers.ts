/** Shared helpers of the ava suites: sockets on 127.0.0.1 port 0, waits with deadlines. */
import test, { ImplementationFn } from 'ava'
import { ChordSocket, MeshSocket, Message, Protocol } from '../index'

export async function meshNodes(n: number, options = {}): Promise<MeshSocket[]> {
  const nodes = Array.from({ length: n }, () => new MeshSocket('127.0.0.1', 0, options))
  await Promise.all(nodes.map((node) => node.ready))
  return nodes
}

export async function closeAll(nodes: MeshSocket[]): Promise<void> {
  await Promise.all(nodes.map((node) => node.close()))
}

/** Poll `check` until it returns true, failing after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export function nextMessage(node: MeshSocket, timeoutMs = 5000): Promise<Message> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message in time')), timeoutMs)
    node.once('message', (message) => {
      clearTimeout(timer)
      resolve(message)
    })
  })
}

/** Each test file gets a subnet of its own, so nodes of concurrent tests never meet through a reused port. */
export const fileProtocol = new Protocol(`test-${process.pid}-${Math.random().toString(36).slice(2)}`)

export function chordOptions(extra = {}) {
  return { stabilizeMs: 50, protocol: fileProtocol, ...extra }
}

export async function chordNode(extra = {}): Promise<ChordSocket> {
  const node = new ChordSocket('127.0.0.1', 0, chordOptions(extra))
  await node.ready
  return node
}

/** `n` members joined one by one through the first, settled: every one has a successor and a predecessor. */
export async function joinedRing(n: number, extra = {}, timeoutMs = 30_000): Promise<ChordSocket[]> {
  const nodes = [await chordNode(extra)]
  for (let i = 1; i < n; i++) {
    const node = await chordNode(extra)
    await node.connect(...nodes[0].addr)
    nodes.push(node)
  }
  await until(() => nodes.every((node) => node.stats().successors.length > 0 && node.stats().predecessor !== undefined), timeoutMs, 'a settled ring')
  return nodes
}

/**
 * `test` for a test that needs something of this machine (root, network namespaces): when
 * `unavailable` names what is missing it is registered as skipped, with the reason in its
 * title, so a test that did not run never reports a pass. Under `CI=true` it always runs (CI
 * runs as root, so it must), and fails there if the machine cannot run it.
 */
export function testNeeding(unavailable: string | undefined): (title: string, implementation: ImplementationFn<[]>) => void {
  if (unavailable === undefined || process.env.CI === 'true') return (title, implementation) => test(title, implementation)
  return (title, implementation) => test.skip(`${title} [not run here: ${unavailable}]`, implementation)
}
