#!/usr/bin/env node
'use strict'
/**
 * Finds a Chromium for the browser test of the web view, installing Debian's `chromium` package
 * when it is missing and we can (root, apt-get). Test tools' own browser downloads do not work
 * everywhere this project is built, so the system package is the one source.
 *
 *   node scripts/ensure-chromium.js      prints the path, or why there is none (exit 1)
 *
 * `CHORDNET_CHROMIUM=/path/to/chrome` skips the search. Used by `npm test` before ava and by
 * __test__/view.spec.ts; under CI=true a missing browser is an error, never a skip.
 */
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')

/** Where Debian and other distributions put the binary. */
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable']

function executable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The browser's path, or null. */
function findChromium() {
  const chosen = process.env.CHORDNET_CHROMIUM
  if (chosen) return executable(chosen) ? chosen : null
  return CANDIDATES.find(executable) ?? null
}

/**
 * `{ path }` when a browser is there (installing it first if it can), else `{ reason }`.
 * `log` receives progress lines (apt-get output goes to stderr).
 */
function ensureChromium(log = (line) => process.stderr.write(`${line}\n`)) {
  const found = findChromium()
  if (found) return { path: found }
  if (process.env.CHORDNET_CHROMIUM) return { reason: `CHORDNET_CHROMIUM=${process.env.CHORDNET_CHROMIUM} is not an executable file` }
  if (process.platform !== 'linux') return { reason: 'no Chromium found; install Chromium or Chrome and set CHORDNET_CHROMIUM to its path' }
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return { reason: 'no Chromium found and not root, so it cannot be installed here: run `sudo apt-get install chromium` (Debian/Ubuntu) or set CHORDNET_CHROMIUM' }
  }
  if (spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) {
    return { reason: 'no Chromium found and no apt-get to install it: install Chromium and set CHORDNET_CHROMIUM' }
  }
  log('chordnet: installing Debian chromium for the browser test (apt-get update && apt-get install -y chromium) ...')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const update = spawnSync('apt-get', ['update'], { stdio: ['ignore', 2, 2], env })
  if (update.status !== 0) return { reason: `apt-get update failed (exit ${update.status})` }
  const install = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium', 'fonts-dejavu-core'], { stdio: ['ignore', 2, 2], env })
  if (install.status !== 0) return { reason: `apt-get install chromium failed (exit ${install.status})` }
  const installed = findChromium()
  return installed ? { path: installed } : { reason: 'apt-get installed chromium but no binary was found at /usr/bin/chromium' }
}

module.exports = { ensureChromium, findChromium }

if (require.main === module) {
  const result = ensureChromium()
  if (result.path) {
    process.stdout.write(`${result.path}\n`)
  } else {
    process.stderr.write(`chordnet: no browser for the view test: ${result.reason}\n`)
    process.exit(1)
  }
}
