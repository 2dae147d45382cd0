// A typed usage file: `tsc --noEmit` checks that the public typings support real code.
import { ChordSocket, ChordStats, HandshakeError, KeyError, KeyPair, MeshSocket, Message, PeerInfo, Protocol, ProtocolMismatchError, createTestnet, generateKeyPair, nodeIdOf, parseKeyPair, serializeKeyPair } from '../../index'

async function usage(): Promise<void> {
  const protocol = new Protocol('my-app', 'Plaintext')
  const keyed = new Protocol('my-app', { networkKey: 'passphrase', encryption: 'Noise' })
  const keyPair: KeyPair = parseKeyPair(serializeKeyPair(generateKeyPair()))
  const secure = new ChordSocket('127.0.0.1', 0, { protocol: keyed, keyPair, maxClockDriftMs: 30_000 })
  const expectedId: string = nodeIdOf(keyPair.publicKey)
  try {
    await secure.connect('127.0.0.1', 4000)
  } catch (error) {
    if (error instanceof HandshakeError) console.log(error.code, expectedId, keyed.hasNetworkKey)
  }
  const mesh = new MeshSocket('127.0.0.1', 0, { protocol, maxPeers: 16, maxFrameBytes: 1 << 20, outAddr: ['127.0.0.1', 4000] })
  await mesh.ready
  const [host, port]: [string, number] = mesh.addr
  const id: string = mesh.id
  mesh.on('message', (message: Message) => {
    const packets: Buffer[] = message.packets
    void message.reply('got', packets[0], new Uint8Array([1]))
  })
  mesh.on('connect', (peer: PeerInfo) => console.log(peer.id, peer.addr[1]))
  mesh.on('disconnect', (peer, reason: string) => console.log(peer.id, reason))
  mesh.registerHandler((message) => message.packets.length === 0)
  try {
    const peer: PeerInfo = await mesh.connect(host, port)
    await mesh.send(['hi'], { flag: 'whisper', to: peer.id })
  } catch (error) {
    if (error instanceof ProtocolMismatchError) console.log(error.ours, error.theirs, error.code)
  }
  await mesh.send([Buffer.from('to all')])
  const queued: Message[] = mesh.recv(10)
  console.log(queued.length, id)

  const chord = new ChordSocket('127.0.0.1', 0, { replicas: 3, join: true, events: false, stabilizeMs: 100 })
  await chord.ready
  await chord.set('测试', '成功')
  const value: Buffer | undefined = await chord.get('测试')
  const withFallback: Buffer | string = await chord.get(Buffer.from('x'), 'none')
  const present: boolean = await chord.has(new Uint8Array([1, 2]))
  await chord.update({ a: 'b' })
  await chord.update(new Map([['c', 'd']]))
  await chord.update([['e', Buffer.from('f')]])
  try {
    await chord.delete('missing')
  } catch (error) {
    if (error instanceof KeyError) console.log(error.code === 'ERR_KEY_NOT_FOUND')
  }
  const popped: Buffer = await chord.pop('a')
  const poppedOr: Buffer | null = await chord.pop('zz', null)
  const [k, v]: [Buffer, Buffer] = await chord.popitem()
  for await (const key of chord.keys()) console.log(key.length)
  for await (const val of chord.values()) console.log(val.length)
  for await (const [key, val] of chord.items()) console.log(key, val)
  for await (const [key, val] of chord) console.log(key, val)
  chord.on('add', (key: Buffer) => console.log(key))
  chord.on('delete', (key: Buffer) => console.log(key))
  const { owner, hops } = await chord.lookup('k')
  const stats: ChordStats = chord.stats()
  console.log(value, withFallback, present, popped, poppedOr, k, v, owner.addr, hops, stats.ringSizeEstimate)
  await chord.unjoin()
  await chord.join()
  await chord.close()
  const testnet = await createTestnet(4)
  await testnet.nodes[0].set('x', 'y')
  await testnet.destroy()
}

void usage
