/** Argument checks shared by the socket classes: wrong types raise `TypeError` saying what was expected. */

/** Keys, values and packets: strings are UTF-8; Buffers and Uint8Arrays are taken as bytes. */
export type BytesLike = string | Buffer | Uint8Array

export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'Object'})`
  return `${typeof value} ${String(value).slice(0, 40)}`
}

export function toBytes(value: unknown, what: string): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8')
  if (Buffer.isBuffer(value)) return value
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  throw new TypeError(`${what} must be a string, Buffer or Uint8Array (got ${describe(value)})`)
}

export function checkString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string (got ${describe(value)})`)
  return value
}

export function checkPort(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw new TypeError(`${what} must be an integer port from 0 to 65535 (got ${describe(value)})`)
  }
  return value
}

/**
 * A whole number that fits the binding's unsigned 32-bit options. Ranges are the engine's to
 * check (it throws `ERR_INVALID_ARGUMENT` naming the option and its limits).
 */
export function checkCount(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new TypeError(`${what} must be a non-negative integer (got ${describe(value)})`)
  }
  return value
}

/** A non-negative integer that may exceed 32 bits (byte sizes). */
export function checkSafeCount(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`${what} must be a non-negative integer (got ${describe(value)})`)
  }
  return value
}

export function checkBoolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${what} must be a boolean (got ${describe(value)})`)
  return value
}

/** Bytes only (keys): a Buffer or Uint8Array, never a string. */
export function checkBytes(value: unknown, what: string): Buffer {
  if (Buffer.isBuffer(value)) return value
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  throw new TypeError(`${what} must be a Buffer or Uint8Array (got ${describe(value)})`)
}
