/**
 * Loads the native addon: the platform package (`chordnet-<platform>`), else a local build in
 * the package folder, else fails with an error naming the platform and how to build it.
 *
 * The addon's types are the ones napi-rs generates from the Rust binding (`binding.d.ts`,
 * written by `npm run build:native`; never edited by hand).
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type * as Binding from './binding'

export type NativeBinding = typeof Binding
export type NativeNode = Binding.NativeNode
export type NativeEvent = Binding.JsEvent
export type NativeNodeRef = Binding.JsNodeRef
export type NativePeer = Binding.JsPeer
export type NativeStats = Binding.JsStats
export type NativeStartOptions = Binding.StartOptions
export type NativeLimits = Binding.JsLimits

/** The napi-rs platform suffix of this process, e.g. `linux-x64-gnu`. */
export function platformSuffix(): string {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function isMusl(): boolean {
  try {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    if (report?.header) return !report.header.glibcVersionRuntime
  } catch {
    // fall through to the file check
  }
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    return false
  }
}

function load(): NativeBinding {
  const suffix = platformSuffix()
  const failures: string[] = []
  try {
    return require(`chordnet-${suffix}`) as NativeBinding
  } catch (error) {
    failures.push(`chordnet-${suffix}: ${(error as Error).message.split('\n')[0]}`)
  }
  const local = join(__dirname, '..', `chordnet.${suffix}.node`)
  if (existsSync(local)) {
    try {
      return require(local) as NativeBinding
    } catch (error) {
      failures.push(`${local}: ${(error as Error).message.split('\n')[0]}`)
    }
  } else {
    failures.push(`${local}: not built`)
  }
  throw new Error(
    `chordnet: no native binary for ${suffix} (Node ${process.versions.node}, ABI ${process.versions.modules}).\n` +
      `Tried:\n  ${failures.join('\n  ')}\n` +
      'Build it from source with a Rust toolchain (https://rustup.rs): run `npm run build` in the chordnet package folder, ' +
      'or reinstall with cargo on PATH.',
  )
}

export const native: NativeBinding = load()

/** The engine's limits and defaults (the one home of them is the Rust engine's `config`). */
export const limits: NativeLimits = native.limits()
