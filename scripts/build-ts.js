#!/usr/bin/env node
'use strict'
/**
 * Compile the TypeScript layer (ts/ -> lib/) and copy the napi-generated typings of the addon
 * (ts/binding.d.ts) next to it, since tsc emits declarations that import it but never copies
 * .d.ts inputs. Used by `npm run build:ts`, the install script and `npm test`.
 */
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')

function buildTs() {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' })
  if (result.status !== 0) return false
  fs.copyFileSync(path.join(root, 'ts', 'binding.d.ts'), path.join(root, 'lib', 'binding.d.ts'))
  return true
}

module.exports = { buildTs }

if (require.main === module) process.exit(buildTs() ? 0 : 1)
