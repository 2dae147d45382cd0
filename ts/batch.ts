/**
 * Batches dict operations across the N-API boundary: operations issued in the same tick go to
 * the native node in one `submit` call, and their outcomes come back in batches through one
 * pending `nextCompletions` promise. One crossing per batch instead of one promise per
 * operation is what keeps hundreds of operations in flight cheap. The completion loop runs only
 * while operations are outstanding, so an idle socket does not keep the process alive.
 */
import { fromNative } from './errors'
import { NativeNode } from './native'

export const enum OpKind {
  Get = 0,
  Set = 1,
  Delete = 2,
}

interface Waiter {
  resolve: (value: Buffer | null) => void
  reject: (error: Error) => void
}

export class Batcher {
  readonly #node: NativeNode
  #nextId = 1
  #queue: { id: number; kind: number; key: Buffer; value?: Buffer }[] = []
  readonly #waiters = new Map<number, Waiter>()
  #flushScheduled = false
  #collecting = false

  constructor(node: NativeNode) {
    this.#node = node
  }

  run(kind: OpKind, key: Buffer, value?: Buffer): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
      const id = this.#nextId
      this.#nextId = this.#nextId >= 0x7fffffff ? 1 : this.#nextId + 1
      this.#waiters.set(id, { resolve, reject })
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
    try {
      this.#node.submit(batch)
    } catch (error) {
      for (const op of batch) {
        this.#waiters.get(op.id)?.reject(fromNative(error))
        this.#waiters.delete(op.id)
      }
      return
    }
    if (!this.#collecting) void this.#collect()
  }

  async #collect(): Promise<void> {
    this.#collecting = true
    try {
      while (this.#waiters.size > 0) {
        const done = await this.#node.nextCompletions()
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
