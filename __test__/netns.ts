/**
 * A lab of hosts in network namespaces, for tests on real separate addresses: a "switch"
 * namespace holding bridges, and one namespace per host wired to a bridge by a veth pair.
 * Moving a host's port to another bridge cuts it off silently (no FIN, no RST: frames to the
 * other side go nowhere), as a pulled cable or a failed switch would. Needs root and `ip`.
 *
 * Every namespace is named `cn<pid>-...`, so a run removes what it made — and what an earlier
 * run killed before its cleanup left behind (its pid is gone).
 */
import { execFileSync } from 'node:child_process'

const PREFIX = 'cn'

function ip(...args: string[]): string {
  try {
    return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  } catch (error: any) {
    throw new Error(`ip ${args.join(' ')} failed: ${error.stderr?.toString().trim() || error.message}`)
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error: any) {
    return error.code === 'EPERM'
  }
}

/** Namespaces of earlier runs whose process is gone. */
function removeLeftovers(): void {
  const names = ip('netns', 'list')
    .split('\n')
    .map((line) => line.split(' ')[0])
  for (const name of names) {
    const match = new RegExp(`^${PREFIX}(\\d+)-`).exec(name)
    if (match && Number(match[1]) !== process.pid && !pidAlive(Number(match[1]))) ip('netns', 'del', name)
  }
}

/** Why namespaces cannot be made here, or undefined when they can. */
export function labUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces are Linux-only (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (run the tests as root, as CI does)'
  try {
    ip('-V')
  } catch {
    return "the `ip` command (iproute2) is missing"
  }
  return undefined
}

export class Lab {
  readonly hosts: number
  readonly bridges: number
  readonly #switch: string
  readonly #made: string[] = []
  /** Bridge of each host's port. */
  readonly #bridgeOf: number[]

  /** `hosts` hosts at 10.77.0.1, .2, ... all on bridge 0; `bridges` bridges to split them over. */
  constructor(hosts: number, bridges: number) {
    this.hosts = hosts
    this.bridges = bridges
    this.#switch = `${PREFIX}${process.pid}-sw`
    this.#bridgeOf = new Array(hosts).fill(0)
    removeLeftovers()
    try {
      this.#build()
    } catch (error) {
      this.destroy()
      throw error
    }
  }

  namespace(host: number): string {
    return `${PREFIX}${process.pid}-h${host}`
  }

  address(host: number): string {
    return `10.77.0.${host + 1}`
  }

  /** Put each group of hosts on a bridge of its own: the groups cannot reach each other. */
  split(groups: number[][]): void {
    if (groups.length > this.bridges) throw new Error(`${groups.length} groups need ${groups.length} bridges (the lab has ${this.bridges})`)
    groups.forEach((group, bridge) => group.forEach((host) => this.#attach(host, bridge)))
  }

  /** Every host back on bridge 0. */
  heal(): void {
    for (let host = 0; host < this.hosts; host++) this.#attach(host, 0)
  }

  /** Remove every namespace (with its links and bridges) this lab made. Safe to call twice. */
  destroy(): void {
    for (const name of this.#made.splice(0).reverse()) {
      try {
        ip('netns', 'del', name)
      } catch {
        // Already gone.
      }
    }
  }

  #build(): void {
    this.#addNamespace(this.#switch)
    for (let b = 0; b < this.bridges; b++) {
      ip('-n', this.#switch, 'link', 'add', `br${b}`, 'type', 'bridge')
      ip('-n', this.#switch, 'link', 'set', `br${b}`, 'up')
    }
    for (let h = 0; h < this.hosts; h++) {
      const ns = this.namespace(h)
      this.#addNamespace(ns)
      ip('-n', this.#switch, 'link', 'add', `port${h}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
      ip('-n', ns, 'addr', 'add', `${this.address(h)}/24`, 'dev', 'eth0')
      ip('-n', ns, 'link', 'set', 'eth0', 'up')
      ip('-n', ns, 'link', 'set', 'lo', 'up')
      ip('-n', this.#switch, 'link', 'set', `port${h}`, 'master', 'br0')
      ip('-n', this.#switch, 'link', 'set', `port${h}`, 'up')
    }
  }

  #addNamespace(name: string): void {
    ip('netns', 'add', name)
    this.#made.push(name)
  }

  #attach(host: number, bridge: number): void {
    if (this.#bridgeOf[host] === bridge) return
    ip('-n', this.#switch, 'link', 'set', `port${host}`, 'master', `br${bridge}`)
    this.#bridgeOf[host] = bridge
  }
}
