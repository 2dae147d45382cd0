/**
 * Batches dict operations across the N-API boundary: operations a node is given in the same
 * tick go to it in one `submit` call, and the outcomes of every node's operations come back in
 * batches through one pending `next()` of a queue shared by all the nodes of this realm. One
 * crossing per batch instead of one promise per operation is what keeps hundreds of operations
 * in flight cheap, and one shared queue keeps a process running many nodes from paying a
 * crossing per node. The collecting loop runs only while operations are outstanding, so idle
 * sockets do not keep the process alive.
 */
import { fromNative } from './errors'
import { native, NativeNode } from './native'
import type { CompletionQueue } from './binding'

export const enum OpKind {
  Get = 0,
  Set = 1,
  Delete = 2,
}

interface Waiter {
  resolve: (value: Buffer | null) => void
  reject: (error: Error) => void
}

/** The outstanding operations of every node in this realm, by id, and the loop that settles them. */
class Outstanding {
  readonly queue: CompletionQueue = new native.CompletionQueue()
  readonly #waiters = new Map<number, Waiter>()
  #nextId = 1
  #collecting = false

  add(waiter: Waiter): number {
    const id = this.#nextId
    this.#nextId = this.#nextId >= 0x7fffffff ? 1 : this.#nextId + 1
    this.#waiters.set(id, waiter)
    return id
  }

  fail(ids: number[], error: unknown): void {
    for (const id of ids) {
      this.#waiters.get(id)?.reject(fromNative(error))
      this.#waiters.delete(id)
    }
  }

  collect(): void {
    if (!this.#collecting) void this.#collect()
  }

  async #collect(): Promise<void> {
    this.#collecting = true
    try {
      while (this.#waiters.size > 0) {
        const done = await this.queue.next()
        for (const { id, value, error } of done) {
          const waiter = this.#waiters.get(id)
          if (!waiter) continue
          this.#waiters.delete(id)
          if (error !== undefined && error !== null) waiter.reject(fromNative(new Error(error)))
          else waiter.resolve(value ?? null)
        }
      }
    } catch (error) {
      for (const waiter of this.#waiters.values()) waiter.reject(fromNative(error))
      this.#waiters.clear()
    } finally {
      this.#collecting = false
    }
  }
}

let outstanding: Outstanding | undefined

export class Batcher {
  readonly #node: NativeNode
  #queue: { id: number; kind: number; key: Buffer; value?: Buffer }[] = []
  #flushScheduled = false

  constructor(node: NativeNode) {
    this.#node = node
  }

  run(kind: OpKind, key: Buffer, value?: Buffer): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
      outstanding ??= new Outstanding()
      const id = outstanding.add({ resolve, reject })
      this.#queue.push(value === undefined ? { id, kind, key } : { id, kind, key, value })
      if (!this.#flushScheduled) {
        this.#flushScheduled = true
        queueMicrotask(() => this.#flush())
      }
    })
  }

  #flush(): void {
    this.#flushScheduled = false
    const batch = this.#queue
    this.#queue = []
    const shared = outstanding as Outstanding
    try {
      this.#node.submit(batch, shared.queue)
    } catch (error) {
      shared.fail(
        batch.map((op) => op.id),
        error,
      )
      return
    }
    shared.collect()
  }
}
