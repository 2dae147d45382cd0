/**
 * Typed errors. Every error this package raises has a stable `code`; native errors arrive as
 * JSON in the message and are rebuilt here, one code to one class (see `ERROR_CLASSES`).
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

/**
 * The secure handshake failed: most often the peer holds another network key (the message
 * says so). Nothing about the peer or its data was learned, and no connection was kept.
 */
export class HandshakeError extends ChordnetError {
  constructor(message: string) {
    super('ERR_HANDSHAKE', message)
    this.name = 'HandshakeError'
  }
}

/** A value out of its allowed range: an oversized key or value, an option beyond its limit. */
export class ChordnetRangeError extends RangeError {
  /** `'ERR_KEY_TOO_LARGE'`, `'ERR_VALUE_TOO_LARGE'` or `'ERR_INVALID_ARGUMENT'`. */
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.name = 'ChordnetRangeError'
    this.code = code
  }
}

/**
 * The node's data folder (`dataDir`) cannot serve: `'ERR_STORAGE_FULL'` (its disk is full: writes
 * are refused, reads go on, writes resume once space is freed), `'ERR_STORAGE_CORRUPT'` (a file
 * is damaged or missing: the message names it and the remedy) or `'ERR_STORAGE_LOCKED'` (another
 * running node uses the folder).
 */
export class StorageError extends ChordnetError {
  constructor(code: string, message: string) {
    super(code, message)
    this.name = 'StorageError'
  }
}

type Details = { code: string; message: string; ours?: string; theirs?: string }

/** The class each engine error code becomes; codes not listed are `ChordnetError`s. */
export const ERROR_CLASSES: Record<string, (d: Details) => Error> = {
  ERR_PROTOCOL_MISMATCH: (d) => new ProtocolMismatchError(d.message, d.ours ?? '', d.theirs ?? ''),
  ERR_HANDSHAKE: (d) => new HandshakeError(d.message),
  ERR_KEY_TOO_LARGE: (d) => new ChordnetRangeError(d.code, d.message),
  ERR_VALUE_TOO_LARGE: (d) => new ChordnetRangeError(d.code, d.message),
  ERR_INVALID_ARGUMENT: (d) => new ChordnetRangeError(d.code, d.message),
  ERR_STORAGE_FULL: (d) => new StorageError(d.code, d.message),
  ERR_STORAGE_CORRUPT: (d) => new StorageError(d.code, d.message),
  ERR_STORAGE_LOCKED: (d) => new StorageError(d.code, d.message),
}

/** The error for `code`, as the engine would raise it. */
export function errorFor(code: string, message: string, extra: Partial<Details> = {}): Error {
  const details = { ...extra, code, message }
  return (ERROR_CLASSES[code] ?? ((d: Details) => new ChordnetError(d.code, d.message)))(details)
}

/** Turn an error thrown by the native addon into the matching typed error. */
export function fromNative(error: unknown): Error {
  if (!(error instanceof Error)) return new ChordnetError('ERR_INTERNAL', String(error))
  let details: Partial<Details>
  try {
    details = JSON.parse(error.message)
  } catch {
    return error // already a JS error (e.g. argument conversion)
  }
  return errorFor(details.code ?? 'ERR_INTERNAL', details.message ?? error.message, details)
}

/** `await`s a native promise, rethrowing its failure as a typed error. */
export async function call<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise
  } catch (error) {
    throw fromNative(error)
  }
}
