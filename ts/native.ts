/**
 * Loads the native addon: the platform package (`chordnet-<suffix>`), else a local build in
 * the package folder, else fails with an error naming the platform it looked for and what to
 * do. Which suffix fits this process is decided in one place, ts/platform.ts.
 *
 * The addon's types are the ones napi-rs generates from the Rust binding (`binding.d.ts`,
 * written by `npm run build:native`; never edited by hand).
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type * as Binding from './binding'
import { currentPlatform, describePlatform, missingBinaryAdvice, platformSuffix } from './platform'

export type NativeBinding = typeof Binding
export type NativeNode = Binding.NativeNode
export type NativeEvent = Binding.JsEvent
export type NativeNodeRef = Binding.JsNodeRef
export type NativePeer = Binding.JsPeer
export type NativeStats = Binding.JsStats
export type NativeStartOptions = Binding.StartOptions
/** Every limit and default of the engine, with its documentation (generated from its one home, crates/chord/src/config.rs). */
export type Limits = Binding.JsLimits
export type NativeHistogram = Binding.JsHistogram
export type NativeOpMetrics = Binding.JsOpMetrics
export type NativeMetrics = Binding.JsMetrics
export type NativeMemberInfo = Binding.JsMemberInfo
export type NativeHistogramLayout = Binding.JsHistogramLayout

function load(): NativeBinding {
  const info = currentPlatform()
  const suffix = platformSuffix(info)
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
    `chordnet: no native binary for ${suffix} (${describePlatform(info)}, Node ${process.versions.node}, ABI ${process.versions.modules}).\n` +
      `Tried:\n  ${failures.join('\n  ')}\n` +
      `${missingBinaryAdvice(suffix)}\n` +
      'In a checkout of the chordnet repository, `npm run build` builds it.',
  )
}

export const native: NativeBinding = load()

/** The engine's limits and defaults (the one home of them is the Rust engine's `config`). */
export const limits: Limits = Object.freeze(native.limits())
