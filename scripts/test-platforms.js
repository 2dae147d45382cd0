#!/usr/bin/env node
'use strict'
/**
 * `npm run test:platforms`: every target of package.json "napi.targets", as far as this machine
 * can take it. For each target:
 *
 *   build   `npm run artifacts -- --target <triple>` (installs its tools first, see
 *           scripts/cross-tools.js), then the shipped binary, taken back out of both tarballs,
 *           is read by scripts/binary-check.js: format, CPU, C library, glibc floor, and the
 *           N-API registration export.
 *   run     for the Linux targets: scripts/test-package.js's install test with that target's
 *           own Node (natively for x64 glibc, on musl's loader for x64 musl, under qemu-aarch64
 *           for arm64): npm installs the packed tarballs into an empty project with no cargo on
 *           PATH, and two ChordSockets set and get through the installed copy.
 *
 * A target this machine cannot build or run is listed with the reason, and counted neither as
 * passed nor as failed. Ends with a table and `N passed, M failed`.
 *
 *   node scripts/test-platforms.js [--target <triple>]... [--skip-build] [--keep]
 *
 * Took 12 minutes on 2 cores from a machine without the tools or a cross-build cache (each
 * target is a full release build with LTO); runs one build at a time.
 */
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const platforms = require('./platforms.js')
const crossTools = require('./cross-tools.js')
const { checkBinary, summary } = require('./binary-check.js')
const { runPackageTests, packRoot, createRecorder, distTarballs } = require('./test-package.js')

const root = path.resolve(__dirname, '..')
const args = process.argv.slice(2)
const keep = args.includes('--keep')
const skipBuild = args.includes('--skip-build')
const only = args.flatMap((arg, i) => (args[i - 1] === '--target' ? [arg] : []))

function log(message) {
  process.stdout.write(`test-platforms: ${message}\n`)
}

function seconds(since) {
  return `${((Date.now() - since) / 1000).toFixed(0)} s`
}

/** The binary inside a tarball (npm's package/<file> or the prebuild's top-level <file>). */
function extractBinary(tarball, fileName, scratch) {
  const dir = fs.mkdtempSync(path.join(scratch, 'extract-'))
  const result = spawnSync('tar', ['-xzf', tarball, '-C', dir], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`tar -xzf ${path.basename(tarball)} failed: ${result.stderr}`)
  for (const candidate of [path.join(dir, 'package', fileName), path.join(dir, fileName)]) {
    if (fs.existsSync(candidate)) return candidate
  }
  throw new Error(`${path.basename(tarball)} holds no ${fileName}`)
}

async function main() {
  const started = Date.now()
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'chordnet-test-platforms-'))
  const rows = []
  const allResults = []
  try {
    const targets = platforms.declaredTargets().filter((target) => only.length === 0 || only.includes(target.triple))
    if (targets.length === 0) throw new Error(`no declared target matches ${only.join(', ')}`)
    log(`targets: ${targets.map((target) => target.triple).join(', ')}; host ${platforms.currentSuffix()}`)

    const rootRecorder = createRecorder('[root] ')
    allResults.push(rootRecorder.results)
    const tarballs = path.join(scratch, 'tarballs')
    fs.mkdirSync(tarballs)
    const rootTarball = packRoot(scratch, tarballs, rootRecorder)

    for (const target of targets) {
      const recorder = createRecorder(`[${target.suffix}] `)
      allResults.push(recorder.results)
      const row = { suffix: target.suffix, triple: target.triple, built: 'no', run: 'no', note: '' }
      rows.push(row)
      const targetStarted = Date.now()

      const buildReason = crossTools.unsupportedReason(target)
      if (buildReason) {
        row.note = `not built here: ${buildReason}; built only by the release workflow`
        recorder.log(row.note)
        continue
      }

      // Build, unless reusing dist/ from an earlier run.
      let built = true
      if (!skipBuild) {
        built = recorder.check(`npm run artifacts -- --target ${target.triple}`, () => {
          const buildStarted = Date.now()
          const result = spawnSync(process.execPath, [path.join(root, 'scripts', 'artifacts.js'), '--target', target.triple], {
            cwd: root,
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'pipe'],
            maxBuffer: 64 * 1024 * 1024,
          })
          const output = `${result.stdout || ''}${result.stderr || ''}`
          fs.writeFileSync(path.join(scratch, `artifacts-${target.suffix}.log`), output)
          if (result.status !== 0) throw new Error(`exit ${result.status}:\n    ${output.trim().split('\n').slice(-12).join('\n    ')}`)
          return `built in ${seconds(buildStarted)}`
        })
      }
      let tarballsOf = null
      if (built) {
        recorder.check('artifacts are in dist/', () => {
          tarballsOf = distTarballs(target)
          return `${path.basename(tarballsOf.platformTarball)}, ${path.basename(tarballsOf.prebuildTarball)}`
        })
      }
      let binaryOk = false
      if (tarballsOf) {
        binaryOk = recorder.check('the shipped binary fits the target (read from both tarballs)', () => {
          const fromNpm = extractBinary(tarballsOf.platformTarball, target.binaryFile, scratch)
          const fromPrebuild = extractBinary(tarballsOf.prebuildTarball, target.binaryFile, scratch)
          if (!fs.readFileSync(fromNpm).equals(fs.readFileSync(fromPrebuild))) throw new Error('the npm and prebuild tarballs hold different binaries')
          const { problems, info } = checkBinary(fromNpm, target)
          if (problems.length) throw new Error(problems.join('; '))
          return summary(info)
        })
      }
      row.built = binaryOk ? 'yes' : 'FAILED'

      const runReason = crossTools.unrunnableReason(target)
      if (runReason) {
        row.note = `not run here: ${runReason}`
        recorder.log(row.note)
        continue
      }
      if (!binaryOk || !rootTarball) {
        row.run = 'FAILED'
        row.note = 'not run: the build or the root package failed'
        continue
      }
      let runtime = null
      recorder.check('a Node for the target runs here', () => {
        runtime = crossTools.ensureRuntime(target)
        return `${runtime.description}; reports ${runtime.version}`
      })
      if (runtime) {
        const before = recorder.results.length
        const targetScratch = fs.mkdtempSync(path.join(scratch, `${target.suffix}-`))
        await runPackageTests({ target, runtime: { ...runtime, emulated: target.arch !== process.arch }, rootTarball, ...tarballsOf, scratch: targetScratch, recorder })
        const failed = recorder.results.slice(before).filter((result) => !result.ok).length
        row.run = failed === 0 ? 'yes' : 'FAILED'
        row.note = `${runtime.description}; Node ${runtime.version}`
      } else {
        row.run = 'FAILED'
      }
      recorder.log(`done in ${seconds(targetStarted)}`)
    }
  } catch (error) {
    allResults.push([{ name: 'setup', ok: false }])
    log(`FAIL ${error.message}`)
  } finally {
    if (keep) log(`kept ${scratch}`)
    else fs.rmSync(scratch, { recursive: true, force: true })
  }

  const results = allResults.flat()
  const failed = results.filter((result) => !result.ok).length
  process.stdout.write('\ntarget            built here  run here  how / why not\n')
  for (const row of rows) {
    process.stdout.write(`${row.suffix.padEnd(18)}${row.built.padEnd(12)}${row.run.padEnd(10)}${row.note}\n`)
  }
  process.stdout.write(`\ntook ${seconds(started)}\n${results.length - failed} passed, ${failed} failed\n`)
  process.exit(failed === 0 ? 0 : 1)
}

main()
