#!/usr/bin/env node
'use strict'
/**
 * `npm run version:sync`: keeps the platform packages (npm/<suffix>/package.json) at the root
 * package's version, and any `chordnet-<suffix>` optionalDependencies of the root at it too.
 *
 *   node scripts/sync-versions.js              sync npm/*\/package.json versions (and existing
 *                                              chordnet-* optionalDependencies) to the root version
 *   node scripts/sync-versions.js --check      change nothing; exit 1 if anything is out of sync
 *   node scripts/sync-versions.js --publish    release time only: also ADD every platform package
 *                                              to the root optionalDependencies (pinned to the
 *                                              root version), so `npm install chordnet` fetches
 *                                              the matching one. Optional: --binary-host <url>
 *                                              (or CHORDNET_BINARY_HOST) sets binary.host /
 *                                              binary.remote_path for prebuild-install.
 *
 * Why the committed package.json has no optionalDependencies: while the platform packages are
 * not on the registry, npm install skips them (404) but never records them in
 * package-lock.json, and `npm ci` then refuses to run ("Missing: chordnet-linux-x64-gnu@ from
 * lock file"). So they are added only in the release checkout, right before `npm publish` of
 * the root (after the platform packages themselves are published); do not commit that change
 * until the platform packages exist on the registry and `npm install` has updated the lock.
 *
 * Only the fields named above are touched; the files are rewritten with their own indentation.
 */
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const args = process.argv.slice(2)
const check = args.includes('--check')
const publish = args.includes('--publish')
const hostIndex = args.indexOf('--binary-host')
const binaryHost = hostIndex >= 0 ? args[hostIndex + 1] : process.env.CHORDNET_BINARY_HOST

function readJson(file) {
  const text = fs.readFileSync(file, 'utf8')
  const indent = (text.match(/^[ \t]+(?=")/m) || ['  '])[0]
  return { file, text, indent, data: JSON.parse(text) }
}

/** Writes back only when something changed; returns whether it did (or would, with --check). */
function writeJson(doc) {
  const next = JSON.stringify(doc.data, null, doc.indent) + '\n'
  if (next === doc.text) return false
  if (!check) {
    const temporary = `${doc.file}.${process.pid}.tmp`
    fs.writeFileSync(temporary, next)
    fs.renameSync(temporary, doc.file)
  }
  return true
}

function platformPackages() {
  const dir = path.join(root, 'npm')
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && fs.existsSync(path.join(dir, entry.name, 'package.json')))
    .map((entry) => readJson(path.join(dir, entry.name, 'package.json')))
}

function main() {
  const rootDoc = readJson(path.join(root, 'package.json'))
  const { version, name } = rootDoc.data
  const changed = []

  const platforms = platformPackages()
  for (const doc of platforms) {
    const expected = `${name}-${path.basename(path.dirname(doc.file))}`
    if (doc.data.name !== expected) throw new Error(`${path.relative(root, doc.file)}: name is ${doc.data.name}, expected ${expected}`)
    doc.data.version = version
    if (writeJson(doc)) changed.push(path.relative(root, doc.file))
  }

  const optional = rootDoc.data.optionalDependencies || {}
  for (const dep of Object.keys(optional)) {
    if (platforms.some((doc) => doc.data.name === dep)) optional[dep] = version
  }
  if (publish) {
    for (const doc of platforms) optional[doc.data.name] = version
    if (binaryHost) {
      rootDoc.data.binary = { ...rootDoc.data.binary, host: binaryHost.replace(/\/+$/, ''), remote_path: 'v{version}' }
    }
  }
  if (Object.keys(optional).length > 0) rootDoc.data.optionalDependencies = optional
  if (writeJson(rootDoc)) changed.push('package.json')

  // Re-read what was written: every platform package and optional dependency at the root version.
  if (!check) {
    for (const doc of platforms) {
      if (readJson(doc.file).data.version !== version) throw new Error(`${doc.file} was not updated`)
    }
  }

  const verb = check ? 'out of sync' : 'updated'
  if (changed.length === 0) process.stdout.write(`version:sync: ${platforms.length} platform packages at ${version}; nothing to change\n`)
  else process.stdout.write(`version:sync: ${verb} (${version}): ${changed.join(', ')}\n`)
  if (check && changed.length > 0) process.exit(1)
}

try {
  main()
} catch (error) {
  process.stderr.write(`version:sync: ${error.message}\n`)
  process.exit(1)
}
