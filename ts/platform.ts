/**
 * Which native binary fits this process. The decision table itself lives in
 * scripts/platforms.js (plain CommonJS, shared with the install script and the release
 * scripts, and driven by package.json "napi.targets"); this file gives it types for the loader.
 * The relative path holds both in a checkout (ts/ and lib/ sit beside scripts/) and in the
 * published package, whose "files" include scripts/platforms.js.
 */

/** What a process runs on, as Node reports it. `libc` is null off Linux. */
export interface PlatformInfo {
  platform: string
  arch: string
  libc: 'glibc' | 'musl' | null
}

/** One entry of package.json "napi.targets", with the names derived from it. */
export interface TargetInfo extends PlatformInfo {
  triple: string
  abi: string | null
  suffix: string
  packageName: string
  binaryFile: string
  npmDir: string
}

interface PlatformsModule {
  suffixFor(platform: PlatformInfo): string
  libcFrom(reportHeader: unknown, lddText?: string): 'glibc' | 'musl'
  currentPlatform(): PlatformInfo
  currentSuffix(): string
  declaredTargets(): TargetInfo[]
  targetForSuffix(suffix: string): TargetInfo | null
  describePlatform(platform: PlatformInfo): string
  missingBinaryAdvice(suffix: string): string
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const platforms = require('../scripts/platforms.js') as PlatformsModule

/** The napi-rs suffix of the binary that fits `info` (default: this process), e.g. `linux-x64-musl`. */
export function platformSuffix(info: PlatformInfo = platforms.currentPlatform()): string {
  return platforms.suffixFor(info)
}

export const currentPlatform = platforms.currentPlatform
export const libcFrom = platforms.libcFrom
export const declaredTargets = platforms.declaredTargets
export const targetForSuffix = platforms.targetForSuffix
export const describePlatform = platforms.describePlatform
export const missingBinaryAdvice = platforms.missingBinaryAdvice
