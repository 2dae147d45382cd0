import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

const bin = join(__dirname, '..', 'bin', 'chordnet.js')
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 })

test('every command has --help', (t) => {
  for (const command of ['demo', 'serve', 'get', 'set', 'del', 'keys', 'status']) {
    const result = run(command, '--help')
    t.is(result.status, 0, command)
    t.regex(result.stdout, new RegExp(`Usage: chordnet ${command}`))
  }
  t.regex(run('--help').stdout, /Commands:/)
  const unknown = run('frobnicate')
  t.is(unknown.status, 2)
  t.regex(unknown.stderr, /unknown command/)
  const missing = run('get', 'k')
  t.is(missing.status, 2)
  t.regex(missing.stderr, /--connect must be host:port/)
})

test('demo runs a small ring and loses nothing', (t) => {
  const result = run('demo', '--nodes', '4', '--keys', '200')
  t.is(result.status, 0, result.stderr)
  t.regex(result.stdout, /all correct/)
  t.regex(result.stdout, /nothing lost/)
  t.regex(result.stdout, /mean lookup hops/)
  t.regex(result.stdout, /web view of the ring: http:\/\/127\.0\.0\.1:\d+\/ \(served while the demo runs; --keep-open keeps it up\)/)
})

test('serve --http serves the web view on loopback; bad --http values are usage errors', async (t) => {
  t.regex(run('serve', '--help').stdout, /--http {7}serve the read-only web view/)
  const keysAlone = run('serve', '--port', '0', '--http-keys')
  t.is(keysAlone.status, 2)
  t.regex(keysAlone.stderr, /--http-keys needs --http/)
  const bad = run('serve', '--port', '0', '--http', 'nowhere')
  t.is(bad.status, 2)
  t.regex(bad.stderr, /--http must be \[HOST:\]PORT/)

  const server = spawn(process.execPath, [bin, 'serve', '--port', '0', '--subnet', `cli-http-${process.pid}`, '--http', '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => server.kill('SIGKILL'))
  const lines = createInterface({ input: server.stdout! })
  const url = await new Promise<string>((resolve) => lines.on('line', (line) => /^web view: /.test(line) && resolve(line.split(' ')[2])))
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
  const ring = (await (await fetch(`${url}api/ring`)).json()) as { members: { self: boolean }[] }
  t.is(ring.members.length, 1)
  t.true(ring.members[0].self)
  t.regex(await (await fetch(`${url}metrics`)).text(), /^chordnet_keys_held 0$/m)
  const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)))
  server.kill('SIGTERM')
  t.is(await exited, 0)
})

test('serve runs a node; get/set/del/keys/status talk to it as a client; SIGTERM leaves gracefully', async (t) => {
  const subnet = `cli-${process.pid}`
  const server = spawn(process.execPath, [bin, 'serve', '--port', '0', '--subnet', subnet], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => server.kill('SIGKILL'))
  const lines = createInterface({ input: server.stdout! })
  const address = await new Promise<string>((resolve) => lines.on('line', (line) => /^serving/.test(line) && resolve(line.split(' on ')[1].split(' ')[0])))
  const client = (...args: string[]) => run(...args, '--connect', address, '--subnet', subnet)
  t.is(client('set', '测试', '成功').status, 0)
  const got = client('get', '测试')
  t.is(got.status, 0, got.stderr)
  t.is(got.stdout, '成功\n')
  t.is(client('set', 'other', 'x').status, 0)
  t.deepEqual(client('keys').stdout.trim().split('\n').sort(), ['other', '测试'].sort())
  const status = client('status')
  t.regex(status.stdout, /keys in the network: 2/)
  t.is(client('del', 'other').status, 0)
  const absent = client('get', 'other')
  t.is(absent.status, 1)
  t.regex(absent.stderr, /no such key/)
  t.is(client('del', 'other').status, 1)
  const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)))
  server.kill('SIGTERM')
  t.is(await exited, 0)
})

test('serve bound to every interface needs --out-addr, before it listens', (t) => {
  // Refused by the option check, so nothing binds 0.0.0.0 (tests listen on 127.0.0.1 only).
  const result = run('serve', '--port', '0', '--host', '0.0.0.0', '--memory')
  t.is(result.status, 1)
  t.regex(result.stderr, /listening on "0\.0\.0\.0" needs outAddr/)
  t.regex(run('serve', '--help').stdout, /--out-addr/)
})

test('serve with a network key file and a key file: clients need the key; the node keeps its id', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'chordnet-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const keyFile = join(dir, 'network.key')
  writeFileSync(keyFile, 'our shared secret passphrase\n')
  const identity = join(dir, 'node.json')
  const subnet = `cli-keyed-${process.pid}`
  const start = async () => {
    const server = spawn(process.execPath, [bin, 'serve', '--port', '0', '--subnet', subnet, '--network-key-file', keyFile, '--key-file', identity], { stdio: ['ignore', 'pipe', 'inherit'] })
    t.teardown(() => server.kill('SIGKILL'))
    const lines = createInterface({ input: server.stdout! })
    const line = await new Promise<string>((resolve) => lines.on('line', (l) => /^serving/.test(l) && resolve(l)))
    t.regex(line, /Noise, network key set/)
    const [, id, address] = /^serving (\w+) on (\S+)/.exec(line)!
    return { server, id, address }
  }
  const first = await start()
  t.is(statSync(identity).mode & 0o777, 0o600, 'the key pair file is readable only by its owner')
  const withKey = spawnSync(process.execPath, [bin, 'set', 'k', 'v', '--connect', first.address, '--subnet', subnet], {
    encoding: 'utf8', timeout: 60_000, env: { ...process.env, CHORDNET_NETWORK_KEY: 'our shared secret passphrase' },
  })
  t.is(withKey.status, 0, withKey.stderr)
  const without = run('get', 'k', '--connect', first.address, '--subnet', subnet)
  t.is(without.status, 1)
  t.regex(without.stderr, /network key does not match.*\[ERR_HANDSHAKE\]/)
  const plaintext = run('get', 'k', '--connect', first.address, '--subnet', subnet, '--plaintext')
  t.is(plaintext.status, 1)
  t.regex(plaintext.stderr, /requires Noise.*\[ERR_PROTOCOL_MISMATCH\]/)
  const exited = new Promise((resolve) => first.server.on('exit', resolve))
  first.server.kill('SIGTERM')
  await exited
  const second = await start()
  t.is(second.id, first.id, 'the same key file, the same id')
  second.server.kill('SIGTERM')
})

test('serve keeps its data in a per-port folder under XDG_DATA_HOME, printed at start, and comes back with its id; --memory keeps nothing', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'chordnet-cli-data-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const port = await freePort()
  const subnet = `cli-data-${process.pid}`
  const serve = async (...extra: string[]) => {
    const server = spawn(process.execPath, [bin, 'serve', '--port', String(port), '--subnet', subnet, ...extra], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, XDG_DATA_HOME: home },
    })
    t.teardown(() => server.kill('SIGKILL'))
    const lines = createInterface({ input: server.stdout! })
    const seen: string[] = []
    await new Promise<void>((resolve) => lines.on('line', (line) => (seen.push(line), /^serving/.test(line) && resolve())))
    server.kill('SIGKILL')
    await new Promise((resolve) => server.on('exit', resolve))
    return { data: seen.find((l) => l.startsWith('data: '))!, id: seen.find((l) => l.startsWith('serving'))!.split(' ')[1] }
  }
  const first = await serve()
  const folder = join(home, 'chordnet', `${subnet}-port-${port}`)
  t.is(first.data, `data: ${folder} (durability sync)`)
  t.true(existsSync(join(folder, 'identity')))
  const second = await serve()
  t.is(second.id, first.id, 'the same id after a restart on the same folder')
  const memory = await serve('--memory')
  t.regex(memory.data, /in memory \(--memory\): nothing is kept/)
  t.not(memory.id, first.id)
  const usage = run('serve', '--port', '1', '--memory', '--resync')
  t.is(usage.status, 2)
  t.regex(usage.stderr, /--memory keeps nothing/)
})

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}
