/**
 * The `chordnet` command: `demo` (what `npm start` runs), `serve` (a real node until Ctrl-C,
 * leaving gracefully), and client commands `get`, `set`, `del`, `keys`, `status` that join a
 * running network as a non-storing client.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ChordSocket } from './chord'
import { ChordnetError } from './errors'
import { runDemo } from './demo'
import { generateKeyPair, KeyPair, parseKeyPair, serializeKeyPair } from './keys'
import { limits } from './native'
import { Protocol } from './protocol'

const NET = `
Network options:
  --subnet S              network name; nodes only talk within one subnet (default "")
  --network-key-file PATH the network key: the file's text (trailing whitespace dropped),
                          stretched with Argon2id and salted with the subnet; nodes without
                          it cannot connect. CHORDNET_NETWORK_KEY=... does the same from
                          the environment
  --plaintext             no encryption and no protection at all (debugging only)`

const HELP: Record<string, string> = {
  main: `Usage: chordnet <command> [options]

Commands:
  demo     run an in-memory ring on 127.0.0.1 and show it working (npm start)
  serve    run a ring member until Ctrl-C
  get      print the value of a key
  set      store a value under a key
  del      delete a key
  keys     list every key of the network
  status   show what a client sees of the network

Connections are Noise-encrypted. To admit only the holders of a network key, give every node
and client the same key: --network-key-file PATH, or the CHORDNET_NETWORK_KEY environment
variable. --plaintext turns encryption off (no protection at all: debugging only).

Run "chordnet <command> --help" for the options of a command.`,
  demo: `Usage: chordnet demo [--nodes 8] [--keys 1000] [--http [HOST:]PORT] [--keep-open]

Starts a ring in this process on 127.0.0.1, writes keys from random nodes, reads them from
every node, crashes one node and shows that nothing was lost. Prints the address of a live
web view of the ring, served while the demo runs.
  --http       where the web view listens (default 127.0.0.1, any free port)
  --keep-open  after the demo, keep the ring and its view running with light traffic until Ctrl-C`,
  serve: `Usage: chordnet serve --port P [--host 127.0.0.1] [--out-addr host:port] [--connect host:port] [--replicas ${limits.defaultReplicas}] [--key-file PATH]
                     [--data-dir DIR | --memory] [--durability sync|os] [--resync]
                     [--http [HOST:]PORT] [--http-keys] [network options]

Runs a ring member until SIGINT/SIGTERM, then hands its keys over and leaves. It keeps its id,
its data and the members it knew on disk: restarted on the same folder it comes back with them
and rejoins its ring by itself (no --connect needed).
  --port       port to listen on (0 = any free port; keeps nothing unless --data-dir is given)
  --host       address to bind (default 127.0.0.1)
  --out-addr   the address peers reach this node at, when it is not --host (behind NAT);
               required with --host 0.0.0.0 or :: (peers refuse a node naming those)
  --connect    a member of the network to join through
  --replicas   copies of each key (default ${limits.defaultReplicas}, at most ${limits.maxReplicas})
  --key-file   the node's key pair (created, readable only by you, if missing), so the node
               keeps its id across restarts (with a data folder, the folder keeps it: a
               key file must then hold the same key pair)
  --data-dir   where to keep the node's data (default: a folder per port under
               $XDG_DATA_HOME/chordnet or ~/.local/share/chordnet, printed at start)
  --memory     keep nothing on disk: a new id and an empty store at every start
  --durability when a write counts as stored: sync (default: flushed to the disk; survives
               a power loss) or os (handed to the OS, flushed every second; survives a crash
               of the process, not of the machine)
  --resync     keep the node's identity, drop its local data (a damaged store) and refill it
               from the ring
  --http       serve the read-only web view (page, /api/ring, /metrics) on [HOST:]PORT;
               HOST defaults to 127.0.0.1 (loopback); PORT 0 = any free port
  --http-keys  let the view list keys on request (/api/keys); values are never shown
${NET}`,
  get: `Usage: chordnet get <key> --connect host:port [network options]\n\nPrints the value of <key>; exits 1 if absent.\n${NET}`,
  set: `Usage: chordnet set <key> <value> --connect host:port [network options]\n\nStores <value> under <key> once every replica holds it.\n${NET}`,
  del: `Usage: chordnet del <key> --connect host:port [network options]\n\nDeletes <key>; exits 1 if it was absent.\n${NET}`,
  keys: `Usage: chordnet keys --connect host:port [network options]\n\nPrints every key of the network, one per line.\n${NET}`,
  status: `Usage: chordnet status --connect host:port [network options]\n\nPrints the members this client sees, the number of keys, and a lookup.\n${NET}`,
}

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  port: { type: 'string' },
  host: { type: 'string' },
  'out-addr': { type: 'string' },
  connect: { type: 'string' },
  subnet: { type: 'string' },
  'network-key-file': { type: 'string' },
  plaintext: { type: 'boolean' },
  'key-file': { type: 'string' },
  replicas: { type: 'string' },
  nodes: { type: 'string' },
  keys: { type: 'string' },
  http: { type: 'string' },
  'http-keys': { type: 'boolean' },
  'keep-open': { type: 'boolean' },
  'data-dir': { type: 'string' },
  memory: { type: 'boolean' },
  durability: { type: 'string' },
  resync: { type: 'boolean' },
} as const

class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(HELP.main)
    return 0
  }
  if (!(command in HELP) || command === 'main') {
    console.error(`chordnet: unknown command "${command}"\n\n${HELP.main}`)
    return 2
  }
  let parsed
  try {
    parsed = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true })
  } catch (error) {
    console.error(`chordnet ${command}: ${(error as Error).message}\n\n${HELP[command]}`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help) {
    console.log(HELP[command])
    return 0
  }
  try {
    return await run(command, values, positionals)
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`chordnet ${command}: ${error.message}\n\n${HELP[command]}`)
      return 2
    }
    const code = error instanceof ChordnetError ? ` [${error.code}]` : ''
    console.error(`chordnet ${command}: ${(error as Error).message}${code}`)
    return 1
  }
}

type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string }

async function run(command: string, values: Values, positionals: string[]): Promise<number> {
  switch (command) {
    case 'demo':
      await runDemo({
        nodes: integer(values.nodes ?? '8', '--nodes', 1),
        keys: integer(values.keys ?? '1000', '--keys', 1),
        log: console.log,
        view: httpAddress(values.http ?? '0'),
        keepOpen: values['keep-open'] ?? false,
      })
      return 0
    case 'serve':
      return serve(values)
    default:
      return client(command, values, positionals)
  }
}

function integer(text: string, flag: string, min: number): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value < min) throw new UsageError(`${flag} must be an integer ≥ ${min} (got "${text}")`)
  return value
}

/** `--http [HOST:]PORT`: loopback unless a host is given. IPv6 hosts go in brackets. */
function httpAddress(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]:|([^:]+):)?(\d+)$/.exec(text)
  if (!match) throw new UsageError(`--http must be [HOST:]PORT (got "${text}")`)
  return { host: match[1] ?? match[2] ?? '127.0.0.1', port: integer(match[3], '--http port', 0) }
}

function address(text: string | undefined, flag: string): [string, number] {
  const match = text === undefined ? null : /^(.+):(\d+)$/.exec(text)
  if (!match) throw new UsageError(`${flag} must be host:port (got ${text === undefined ? 'nothing' : `"${text}"`})`)
  return [match[1], integer(match[2], `${flag} port`, 1)]
}

/** The network's protocol from --subnet, --network-key-file / CHORDNET_NETWORK_KEY and --plaintext. */
function protocolOf(values: Values): Protocol {
  const subnet = values.subnet ?? ''
  let networkKey: string | undefined
  const file = values['network-key-file']
  if (file !== undefined) {
    try {
      networkKey = readFileSync(file, 'utf8').trimEnd()
    } catch (error) {
      throw new UsageError(`cannot read --network-key-file ${file}: ${(error as Error).message}`)
    }
    if (networkKey === '') throw new UsageError(`--network-key-file ${file} is empty`)
  } else if (process.env.CHORDNET_NETWORK_KEY) {
    networkKey = process.env.CHORDNET_NETWORK_KEY
  }
  if (values.plaintext) {
    if (networkKey !== undefined) throw new UsageError('a network key needs encryption: drop --plaintext (or the key)')
    return new Protocol(subnet, 'Plaintext')
  }
  return new Protocol(subnet, networkKey === undefined ? {} : { networkKey })
}

/** The key pair kept in --key-file, created (mode 0600) when the file does not exist. */
function keyPairOf(file: string | undefined): KeyPair | undefined {
  if (file === undefined) return undefined
  if (!existsSync(file)) {
    const pair = generateKeyPair()
    writeFileSync(file, serializeKeyPair(pair) + '\n', { mode: 0o600, flag: 'wx' })
    return pair
  }
  try {
    return parseKeyPair(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new UsageError(`--key-file ${file} does not hold a key pair: ${(error as Error).message}`)
  }
}

async function serve(values: Values): Promise<number> {
  if (values.port === undefined) throw new UsageError('--port is required (0 = any free port)')
  if (values['http-keys'] && values.http === undefined) throw new UsageError('--http-keys needs --http')
  const http = values.http === undefined ? undefined : httpAddress(values.http)
  const port = integer(values.port, '--port', 0)
  if (values.memory && (values['data-dir'] !== undefined || values.resync || values.durability !== undefined)) {
    throw new UsageError('--memory keeps nothing: it takes no --data-dir, --durability or --resync')
  }
  if (values.durability !== undefined && values.durability !== 'sync' && values.durability !== 'os') {
    throw new UsageError(`--durability must be sync or os (got "${values.durability}")`)
  }
  const dataDir = values.memory ? undefined : values['data-dir'] ?? (port === 0 ? undefined : defaultDataDir(values.subnet ?? '', port))
  if ((values.resync || values.durability !== undefined) && dataDir === undefined) {
    throw new UsageError('--resync and --durability need a folder: give --data-dir, or a --port other than 0')
  }
  const node = new ChordSocket(values.host ?? '127.0.0.1', port, {
    protocol: protocolOf(values),
    keyPair: keyPairOf(values['key-file']),
    replicas: integer(values.replicas ?? '3', '--replicas', 1),
    dataDir,
    durability: values.durability as 'sync' | 'os' | undefined,
    resync: values.resync,
    ...(values['out-addr'] === undefined ? {} : { outAddr: address(values['out-addr'], '--out-addr') }),
  })
  await node.ready
  if (dataDir === undefined) console.log(values.memory ? 'data: in memory (--memory): nothing is kept' : 'data: in memory (port 0 and no --data-dir): nothing is kept')
  else console.log(`data: ${dataDir} (durability ${values.durability ?? 'sync'}${values.resync ? ', resynced from the ring' : ''})`)
  node.on('connect', (peer) => console.log(`connected   ${peer.id.slice(0, 8)} ${peer.addr.join(':')}`))
  node.on('disconnect', (peer, reason) => console.log(`disconnected ${peer.id.slice(0, 8)} ${peer.addr.join(':')} (${reason})`))
  node.on('error', (error) => console.error(`warning: ${error.message}`))
  if (values.connect) await node.connect(...address(values.connect, '--connect'))
  const security = node.protocol.encryption === 'Plaintext' ? 'PLAINTEXT: no encryption, no protection' : node.protocol.hasNetworkKey ? 'Noise, network key set' : 'Noise, open network'
  console.log(`serving ${node.id} on ${node.addr.join(':')} (${security}; Ctrl-C to leave gracefully)`)
  if (http) {
    const view = await node.serveView({ ...http, showKeys: values['http-keys'] ?? false })
    console.log(`web view: ${view.url} (read-only; metrics at ${view.url}metrics)`)
    if (!isLoopbackHost(view.host)) console.error(`warning: the web view listens on ${view.host}, beyond this machine; it is read-only but shows the ring's members and traffic`)
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      console.log(`${signal}: handing keys over and leaving ...`)
      resolve()
    }
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
  })
  await node.close()
  console.log('left the ring')
  return 0
}

/** Where `serve` keeps a node's data by default: one folder per subnet and port. */
export function defaultDataDir(subnet: string, port: number): string {
  const home = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share')
  const name = subnet === '' ? `port-${port}` : `${subnet.replace(/[^A-Za-z0-9._-]/g, '_')}-port-${port}`
  return join(home, 'chordnet', name)
}

function isLoopbackHost(host: string): boolean {
  return host === '::1' || host.startsWith('127.') || host === 'localhost'
}

async function client(command: string, values: Values, positionals: string[]): Promise<number> {
  const wanted = { get: 1, set: 2, del: 1, keys: 0, status: 0 }[command] ?? 0
  if (positionals.length !== wanted) throw new UsageError(`expected ${wanted} argument(s), got ${positionals.length}`)
  const target = address(values.connect, '--connect')
  const node = new ChordSocket('127.0.0.1', 0, { protocol: protocolOf(values), join: false, events: false })
  await node.ready
  try {
    await node.connect(...target)
    switch (command) {
      case 'get': {
        const value = await node.get(positionals[0])
        if (value === undefined) {
          console.error(`chordnet get: no such key: ${positionals[0]}`)
          return 1
        }
        process.stdout.write(value)
        process.stdout.write('\n')
        return 0
      }
      case 'set':
        await node.set(positionals[0], positionals[1])
        return 0
      case 'del':
        if ((await node.pop(positionals[0], null)) === null) {
          console.error(`chordnet del: no such key: ${positionals[0]}`)
          return 1
        }
        return 0
      case 'keys':
        for await (const key of node.keys()) console.log(key.toString())
        return 0
      default: {
        let keys = 0
        for await (const _ of node.keys()) keys++
        const members = node.peers.filter((p) => p.member)
        const probe = await node.lookup('status-probe')
        console.log(`connected members: ${members.length}`)
        for (const m of members) console.log(`  ${m.id} ${m.addr.join(':')}`)
        console.log(`keys in the network: ${keys}`)
        console.log(`lookup of "status-probe": owner ${probe.owner.id.slice(0, 8)} at ${probe.owner.addr.join(':')}, ${probe.hops} hop(s)`)
        return 0
      }
    }
  } finally {
    await node.close()
  }
}
