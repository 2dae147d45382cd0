/**
 * The TypeScript layer and the native binding agree: the generated typings describe what the
 * addon exports, every engine error code becomes one documented error class keeping its code,
 * and limits come from the engine.
 */
import test from 'ava'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ChordnetError, ChordnetRangeError, ChordSocket, HandshakeError, MAX_KEY_BYTES, MAX_VALUE_BYTES, ProtocolMismatchError } from '../index'
import { errorFor, fromNative } from '../lib/errors'
import { limits, native } from '../lib/native'
import { chordOptions } from './helpers'

const generated = readFileSync(join(__dirname, '..', 'ts', 'binding.d.ts'), 'utf8')

test('the generated typings name exactly what the addon exports', (t) => {
  const declaredFunctions = [...generated.matchAll(/^export declare function (\w+)/gm)].map((m) => m[1]).sort()
  const declaredClasses = [...generated.matchAll(/^export declare class (\w+)/gm)].map((m) => m[1]).sort()
  const exported = Object.keys(native).sort()
  t.deepEqual([...declaredFunctions, ...declaredClasses].sort(), exported)
  const classBody = generated.slice(generated.indexOf('export declare class NativeNode'))
  const members = classBody.slice(0, classBody.indexOf('\n}')).match(/^ {2}(?:get )?(\w+)\(/gm)!.map((m) => m.trim().replace(/^get /, '').replace('(', ''))
  const runtime = Object.getOwnPropertyNames((native as any).NativeNode.prototype).filter((name) => name !== 'constructor')
  t.deepEqual([...new Set(members)].sort(), runtime.sort())
})

test('every engine error code becomes one error class that keeps the code', (t) => {
  const codes = native.errorCodes()
  t.true(codes.includes('ERR_KEY_TOO_LARGE') && codes.includes('ERR_TIMEOUT') && codes.includes('ECONNREFUSED') && codes.includes('ERR_HANDSHAKE'))
  for (const code of codes) {
    const error = errorFor(code, 'message') as ChordnetError
    t.is(error.code, code)
    t.true(error instanceof Error)
    const expected =
      code === 'ERR_PROTOCOL_MISMATCH' ? ProtocolMismatchError
      : code === 'ERR_HANDSHAKE' ? HandshakeError
      : ['ERR_KEY_TOO_LARGE', 'ERR_VALUE_TOO_LARGE', 'ERR_INVALID_ARGUMENT'].includes(code) ? ChordnetRangeError
      : ChordnetError
    t.true(error instanceof expected, `${code} → ${expected.name}`)
  }
})

test('ERR_KEY_TOO_LARGE from the engine reaches JavaScript as itself', async (t) => {
  const node = new ChordSocket('127.0.0.1', 0, chordOptions())
  await node.ready
  t.teardown(() => node.close())
  // Past the TypeScript layer's own early check: straight to the addon, so the engine decides.
  const nativeNode = (node as any).node
  const error = await nativeNode.get(Buffer.alloc(MAX_KEY_BYTES + 1)).then(() => undefined, fromNative)
  t.true(error instanceof RangeError)
  t.is(error.code, 'ERR_KEY_TOO_LARGE')
  t.regex(error.message, new RegExp(`key is ${MAX_KEY_BYTES + 1} bytes; the limit is ${MAX_KEY_BYTES}`))
  const early = await node.set('k', Buffer.alloc(MAX_VALUE_BYTES + 1)).then(() => undefined, (e) => e)
  t.is(early.code, 'ERR_VALUE_TOO_LARGE', 'the early check raises the engine error, not its own')
})

test('limits come from the engine, and an option beyond one is refused naming it', (t) => {
  t.is(MAX_KEY_BYTES, limits.maxKeyBytes)
  t.is(MAX_VALUE_BYTES, limits.maxValueBytes)
  t.true(Object.isFrozen(limits))
  // Every documented limit is there, a finite number (durations in ms).
  for (const [name, value] of Object.entries(limits)) t.true(Number.isFinite(value) && value >= 0, name)
  const error = t.throws(() => new ChordSocket('127.0.0.1', 0, { stabilizeMs: limits.maxStabilizeMs + 1 }), { instanceOf: RangeError })
  t.is((error as any).code, 'ERR_INVALID_ARGUMENT')
  t.regex(error!.message, new RegExp(`stabilizeMs must be from ${limits.minStabilizeMs} to ${limits.maxStabilizeMs}`))
  t.throws(() => new ChordSocket('127.0.0.1', 0, { maxFrameBytes: limits.minFrameBytes - 1 }), { instanceOf: RangeError, message: /maxFrameBytes must be from/ })
})
