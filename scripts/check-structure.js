#!/usr/bin/env node
'use strict'
/**
 * The structural rules the compiler does not check by itself, checked on every `npm test`:
 *
 * 1. The engine crate is pure: `cargo tree -p chord` shows no tokio, fjall, snow or argon2,
 *    and `cargo check -p chord` builds it alone (so no feature another crate turns on, such
 *    as rand's OS entropy, is silently relied upon).
 * 2. No import cycle between the files of crates/<crate>/src (Rust `use`/paths through
 *    `crate::`, `super::`, `self::`) or of ts/ (`import`/`export … from`/`require`). Test code
 *    (`#[cfg(test)]` modules, tests.rs) is left out: a test may look at anything.
 *
 *   node scripts/check-structure.js [--no-cargo]   (--no-cargo: only the import graphs)
 */
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const FORBIDDEN_IN_ENGINE = ['tokio', 'fjall', 'snow', 'argon2']

function walk(dir, ext) {
  const out = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...walk(full, ext))
    else if (entry.name.endsWith(ext)) out.push(full)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Rust: a file is a module; its path from the crate root follows the file layout.

/** Module path (array of segments) of a source file under `src`. */
function moduleOf(src, file) {
  const parts = path.relative(src, file).replace(/\.rs$/, '').split(path.sep)
  const last = parts[parts.length - 1]
  if (last === 'lib' || last === 'main' || last === 'mod') parts.pop()
  return parts
}

/** The source without test code: `#[cfg(test)]` items (to the end of their braces) removed. */
function withoutTests(source) {
  let out = source
  for (;;) {
    const at = out.search(/#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{/)
    if (at < 0) return out
    let depth = 0
    let i = out.indexOf('{', at)
    for (; i < out.length; i++) {
      if (out[i] === '{') depth++
      else if (out[i] === '}' && --depth === 0) break
    }
    out = out.slice(0, at) + out.slice(i + 1)
  }
}

/** Expand a `use` tree (`a::{b, c::{d, e}}`) into full paths. */
function expandUse(tree) {
  tree = tree.replace(/\s+/g, '')
  const brace = tree.indexOf('{')
  if (brace < 0) return [tree.replace(/::self$/, '').replace(/\bas\w+$/, '')]
  const prefix = tree.slice(0, brace)
  const inner = tree.slice(brace + 1, tree.lastIndexOf('}'))
  const items = []
  let depth = 0
  let start = 0
  for (let i = 0; i <= inner.length; i++) {
    const c = inner[i]
    if (c === '{') depth++
    else if (c === '}') depth--
    else if ((c === ',' || i === inner.length) && depth === 0) {
      if (i > start) items.push(inner.slice(start, i))
      start = i + 1
    }
  }
  return items.flatMap((item) => (item === 'self' ? [prefix.replace(/::$/, '')] : expandUse(prefix + item)))
}

/** Every crate-internal path a file names, as absolute module paths. */
function rustReferences(source, here) {
  const code = withoutTests(source).replace(/\/\/.*$/gm, '')
  const paths = []
  for (const m of code.matchAll(/\buse\s+((?:crate|super|self)\b[^;]*);/g)) paths.push(...expandUse(m[1]))
  for (const m of code.matchAll(/\b((?:crate|super|self)(?:::\w+)+)/g)) paths.push(m[1])
  const absolute = []
  for (const p of paths) {
    const segments = p.split('::').map((s) => s.replace(/\sas\s.*$/, ''))
    let base = [...here]
    let i = 0
    if (segments[0] === 'crate') {
      base = []
      i = 1
    }
    for (; segments[i] === 'super' || segments[i] === 'self'; i++) if (segments[i] === 'super') base.pop()
    absolute.push([...base, ...segments.slice(i)])
  }
  return absolute
}

function rustGraph(crateDir) {
  const src = path.join(crateDir, 'src')
  const files = walk(src, '.rs').filter((f) => path.basename(f) !== 'tests.rs')
  const byModule = new Map(files.map((f) => [moduleOf(src, f).join('::'), f]))
  const graph = new Map()
  for (const file of files) {
    const here = moduleOf(src, file)
    // `super::` in a file module refers to its parent module.
    const edges = new Set()
    for (const target of rustReferences(fs.readFileSync(file, 'utf8'), here)) {
      for (let n = target.length; n >= 0; n--) {
        const owner = byModule.get(target.slice(0, n).join('::'))
        if (owner) {
          if (owner !== file) edges.add(owner)
          break
        }
      }
    }
    graph.set(file, edges)
  }
  return graph
}

// ---------------------------------------------------------------------------------------------
// TypeScript: relative imports between files of ts/.

function tsGraph(dir) {
  const files = walk(dir, '.ts').filter((f) => !f.endsWith('.d.ts'))
  const graph = new Map()
  for (const file of files) {
    const source = fs.readFileSync(file, 'utf8')
    const edges = new Set()
    const specs = [...source.matchAll(/\bfrom\s+'(\.[^']*)'|\brequire\('(\.[^']*)'\)|\bimport\('(\.[^']*)'\)/g)].map((m) => m[1] ?? m[2] ?? m[3])
    for (const spec of specs) {
      const base = path.resolve(path.dirname(file), spec)
      const target = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f))
      if (target && target !== file) edges.add(target)
    }
    graph.set(file, edges)
  }
  return graph
}

/** Every cycle's files (strongly connected components with more than one file; Tarjan). */
function cycles(graph) {
  let index = 0
  const indices = new Map()
  const low = new Map()
  const stack = []
  const onStack = new Set()
  const found = []
  const visit = (v) => {
    indices.set(v, index)
    low.set(v, index++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v), low.get(w)))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), indices.get(w)))
    }
    if (low.get(v) === indices.get(v)) {
      const component = []
      let w
      do {
        w = stack.pop()
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1) found.push(component)
    }
  }
  for (const v of graph.keys()) if (!indices.has(v)) visit(v)
  return found
}

function checkEnginePurity(problems) {
  const tree = spawnSync('cargo', ['tree', '-p', 'chord', '-e', 'normal', '--prefix', 'none'], { cwd: root, encoding: 'utf8' })
  if (tree.status !== 0) return problems.push(`cargo tree -p chord failed: ${tree.stderr}`)
  const names = new Set(tree.stdout.split('\n').map((line) => line.split(' ')[0]))
  for (const name of FORBIDDEN_IN_ENGINE) if (names.has(name)) problems.push(`the engine crate depends on ${name} (cargo tree -p chord): it must stay sans-I/O`)
  const alone = spawnSync('cargo', ['check', '--quiet', '-p', 'chord', '--lib'], { cwd: root, encoding: 'utf8' })
  if (alone.status !== 0) problems.push(`the engine crate does not build on its own (cargo check -p chord):\n${alone.stderr}`)
}

function main() {
  const problems = []
  if (!process.argv.includes('--no-cargo')) checkEnginePurity(problems)
  const graphs = fs
    .readdirSync(path.join(root, 'crates'))
    .map((name) => [`crates/${name}/src`, rustGraph(path.join(root, 'crates', name))])
  graphs.push(['ts/', tsGraph(path.join(root, 'ts'))])
  let files = 0
  let edges = 0
  for (const [where, graph] of graphs) {
    files += graph.size
    for (const targets of graph.values()) edges += targets.size
    for (const cycle of cycles(graph)) problems.push(`import cycle in ${where}: ${cycle.map((f) => path.relative(root, f)).join(' <-> ')}`)
  }
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n`)
    process.exit(1)
  }
  process.stdout.write(`structure ok: engine crate pure (no ${FORBIDDEN_IN_ENGINE.join(', ')}); no import cycle among ${files} files (${edges} imports)\n`)
}

if (require.main === module) main()

module.exports = { cycles, rustGraph, tsGraph }
