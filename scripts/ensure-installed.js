#!/usr/bin/env node
'use strict'
/**
 * Lets `npm start` and `npm test` work on a fresh clone: if the dependencies (or the built
 * addon and lib/) are missing, run `npm install` first, which builds them.
 */
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')

function installed() {
  const binary = fs.readdirSync(root).some((f) => /^chordnet\..+\.node$/.test(f))
  return fs.existsSync(path.join(root, 'node_modules', 'ava')) && fs.existsSync(path.join(root, 'lib', 'index.js')) && binary
}

function ensureInstalled() {
  if (installed()) return
  process.stderr.write('chordnet: dependencies or build missing; running `npm install` first\n')
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const result = spawnSync(npm, ['install'], { cwd: root, stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
}

module.exports = { ensureInstalled }
if (require.main === module) ensureInstalled()
