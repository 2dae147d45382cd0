/**
 * Typed errors. Every error this package raises has a stable `code`; native errors arrive as
 * JSON in the message and are rebuilt here into these classes, one to one.
 */

/** Base class of the errors this package raises (besides plain `TypeError`s for bad arguments). */
export class ChordnetError extends Error {
  /** Stable machine-readable code, e.g. `'ERR_TIMEOUT'`, `'EADDRINUSE'`. */
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.name = 'ChordnetError'
    this.code = code
  }
}

/** A key was absent: from `delete`, `pop` without fallback, or `popitem` on an empty dict. */
export class KeyError extends ChordnetError {
  readonly key?: Buffer
  constructor(message: string, key?: Buffer) {
    super('ERR_KEY_NOT_FOUND', message)
    this.name = 'KeyError'
    this.key = key
  }
}

/** The peer speaks another protocol (subnet, encryption or version); nobody kept the connection. */
export class ProtocolMismatchError extends ChordnetError {
  /** Our subnet. */
  readonly ours: string
  /** The peer's subnet. */
  readonly theirs: string
  constructor(message: string, ours: string, theirs: string) {
    super('ERR_PROTOCOL_MISMATCH', message)
    this.name = 'ProtocolMismatchError'
    this.ours = ours
    this.theirs = theirs
  }
}

/** Turn an error thrown by the native addon into the matching typed error. */
export function fromNative(error: unknown): Error {
  if (!(error instanceof Error)) return new ChordnetError('ERR_INTERNAL', String(error))
  let details: { code?: string; message?: string; ours?: string; theirs?: string }
  try {
    details = JSON.parse(error.message)
  } catch {
    return error // already a JS error (e.g. argument conversion)
  }
  const code = details.code ?? 'ERR_INTERNAL'
  const message = details.message ?? error.message
  if (code === 'ERR_PROTOCOL_MISMATCH') return new ProtocolMismatchError(message, details.ours ?? '', details.theirs ?? '')
  if (code === 'ERR_INVALID_ARGUMENT') return Object.assign(new RangeError(message), { code })
  return new ChordnetError(code, message)
}

/** `await`s a native promise, rethrowing its failure as a typed error. */
export async function call<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise
  } catch (error) {
    throw fromNative(error)
  }
}
