'use strict'
/**
 * Reads a built `.node` file without loading it, so a binary for another OS or CPU can be
 * checked on this machine: its format and architecture, the N-API registration symbol it
 * exports, the libraries it needs and (ELF) the newest glibc symbol version it asks for.
 *
 *   inspect(file)                 -> { format: 'elf' | 'macho', arch, kind, exports, needed, glibc }
 *   checkBinary(file, target)     -> a list of problems (empty when the file fits the target)
 *
 * ELF: the ELF-64 little-endian layout of the System V ABI (header, section headers, .dynsym,
 * .dynamic, .gnu.version_r). Mach-O: the 64-bit layout of <mach-o/loader.h> (mach_header_64, load
 * commands, the dyld export trie of LC_DYLD_INFO(_ONLY) / LC_DYLD_EXPORTS_TRIE, LC_SYMTAB).
 * Only what the checks need is read; anything unexpected is an error, never a guess.
 */
const fs = require('node:fs')

/** The symbol Node looks up when it loads an N-API addon (napi_module_register_by_symbol). */
const NAPI_REGISTER = 'napi_register_module_v1'
/** Oldest glibc our gnu binaries promise to run on: the floor napi-rs uses, and Rust's own minimum. */
const GLIBC_FLOOR = '2.17'

const ELF_MACHINES = { 62: 'x64', 183: 'arm64' }
const MACHO_CPUS = { 0x01000007: 'x64', 0x0100000c: 'arm64' }

function cString(buffer, offset) {
  const end = buffer.indexOf(0, offset)
  return buffer.toString('latin1', offset, end < 0 ? buffer.length : end)
}

function inspectElf(buf) {
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error('not a 64-bit little-endian ELF file')
  const type = buf.readUInt16LE(16)
  const machine = buf.readUInt16LE(18)
  const phoff = Number(buf.readBigUInt64LE(32))
  const shoff = Number(buf.readBigUInt64LE(40))
  const phentsize = buf.readUInt16LE(54)
  const phnum = buf.readUInt16LE(56)
  const shentsize = buf.readUInt16LE(58)
  const shnum = buf.readUInt16LE(60)
  const sections = []
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize
    sections.push({
      type: buf.readUInt32LE(at + 4),
      offset: Number(buf.readBigUInt64LE(at + 24)),
      size: Number(buf.readBigUInt64LE(at + 32)),
      link: buf.readUInt32LE(at + 40),
      info: buf.readUInt32LE(at + 44),
      entsize: Number(buf.readBigUInt64LE(at + 56)),
    })
  }
  let interpreter = null
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize
    if (buf.readUInt32LE(at) === 3 /* PT_INTERP */) {
      const offset = Number(buf.readBigUInt64LE(at + 8))
      interpreter = cString(buf, offset)
    }
  }
  const exports = []
  const dynsym = sections.find((section) => section.type === 11 /* SHT_DYNSYM */)
  if (dynsym) {
    const strtab = sections[dynsym.link]
    for (let at = dynsym.offset + 24; at < dynsym.offset + dynsym.size; at += 24) {
      const name = cString(buf, strtab.offset + buf.readUInt32LE(at))
      const bind = buf[at + 4] >> 4
      const shndx = buf.readUInt16LE(at + 6)
      if (shndx !== 0 && (bind === 1 || bind === 2) /* GLOBAL, WEAK */) exports.push(name)
    }
  }
  const needed = []
  const dynamic = sections.find((section) => section.type === 6 /* SHT_DYNAMIC */)
  if (dynamic) {
    const strtab = sections[dynamic.link]
    for (let at = dynamic.offset; at < dynamic.offset + dynamic.size; at += 16) {
      const tag = Number(buf.readBigInt64LE(at))
      if (tag === 0) break
      if (tag === 1 /* DT_NEEDED */) needed.push(cString(buf, strtab.offset + Number(buf.readBigUInt64LE(at + 8))))
    }
  }
  const versions = []
  const verneed = sections.find((section) => section.type === 0x6ffffffe /* SHT_GNU_verneed */)
  if (verneed) {
    const strtab = sections[verneed.link]
    let entry = verneed.offset
    for (let n = 0; n < verneed.info; n++) {
      const count = buf.readUInt16LE(entry + 2)
      let aux = entry + buf.readUInt32LE(entry + 8)
      for (let k = 0; k < count; k++) {
        versions.push(cString(buf, strtab.offset + buf.readUInt32LE(aux + 8)))
        aux += buf.readUInt32LE(aux + 12)
      }
      const next = buf.readUInt32LE(entry + 12)
      if (!next) break
      entry += next
    }
  }
  const glibc = versions
    .map((name) => /^GLIBC_(\d+(?:\.\d+)*)$/.exec(name))
    .filter(Boolean)
    .map((match) => match[1])
    .sort(compareVersions)
    .pop() || null
  return {
    format: 'elf',
    arch: ELF_MACHINES[machine] || `elf-machine-${machine}`,
    kind: type === 3 ? 'shared-object' : `elf-type-${type}`,
    interpreter,
    exports,
    needed,
    glibc,
  }
}

function readUleb(buf, at) {
  let value = 0
  let shift = 0
  for (;;) {
    const byte = buf[at++]
    value += (byte & 0x7f) * 2 ** shift
    shift += 7
    if (byte < 0x80) return [value, at]
  }
}

/** Every name in a dyld export trie (each node: terminal info, then edges of label + child offset). */
function exportTrieNames(buf, start, size) {
  const names = []
  const seen = new Set()
  const walk = (offset, prefix) => {
    if (offset >= size || seen.has(offset)) return
    seen.add(offset)
    let at = start + offset
    const [terminalSize, afterSize] = readUleb(buf, at)
    at = afterSize
    if (terminalSize > 0) names.push(prefix)
    at += terminalSize
    const children = buf[at++]
    for (let i = 0; i < children; i++) {
      const label = cString(buf, at)
      at += Buffer.byteLength(label, 'latin1') + 1
      const [child, next] = readUleb(buf, at)
      at = next
      walk(child, prefix + label)
    }
  }
  walk(0, '')
  return names
}

function inspectMachO(buf) {
  const cputype = buf.readUInt32LE(4)
  const filetype = buf.readUInt32LE(12)
  const ncmds = buf.readUInt32LE(16)
  let at = 32
  const exports = new Set()
  const needed = []
  for (let i = 0; i < ncmds; i++) {
    const cmd = buf.readUInt32LE(at)
    const cmdsize = buf.readUInt32LE(at + 4)
    if (cmd === 0x22 || cmd === 0x80000022 /* LC_DYLD_INFO(_ONLY) */) {
      const off = buf.readUInt32LE(at + 40)
      const size = buf.readUInt32LE(at + 44)
      if (size) for (const name of exportTrieNames(buf, off, size)) exports.add(name)
    } else if (cmd === 0x80000033 /* LC_DYLD_EXPORTS_TRIE */) {
      const off = buf.readUInt32LE(at + 8)
      const size = buf.readUInt32LE(at + 12)
      if (size) for (const name of exportTrieNames(buf, off, size)) exports.add(name)
    } else if (cmd === 0x2 /* LC_SYMTAB */) {
      const symoff = buf.readUInt32LE(at + 8)
      const nsyms = buf.readUInt32LE(at + 12)
      const stroff = buf.readUInt32LE(at + 16)
      for (let k = 0; k < nsyms; k++) {
        const entry = symoff + k * 16
        const type = buf[entry + 4]
        // N_EXT set, N_STAB clear, defined in a section (N_SECT).
        if ((type & 0x01) && !(type & 0xe0) && (type & 0x0e) === 0x0e) exports.add(cString(buf, stroff + buf.readUInt32LE(entry)))
      }
    } else if (cmd === 0xc || cmd === 0x80000018 /* LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB */) {
      needed.push(cString(buf, at + buf.readUInt32LE(at + 8)))
    }
    at += cmdsize
  }
  return {
    format: 'macho',
    arch: MACHO_CPUS[cputype] || `macho-cpu-0x${cputype.toString(16)}`,
    kind: filetype === 6 ? 'dylib' : filetype === 8 ? 'bundle' : `macho-filetype-${filetype}`,
    interpreter: null,
    // Mach-O C symbols carry a leading underscore; report the C name.
    exports: [...exports].map((name) => (name.startsWith('_') ? name.slice(1) : name)),
    needed,
    glibc: null,
  }
}

/** What a binary file is, read from its bytes. Throws on a format it does not know. */
function inspect(file) {
  const buf = fs.readFileSync(file)
  if (buf.length >= 64 && buf.readUInt32BE(0) === 0x7f454c46) return inspectElf(buf)
  if (buf.length >= 32 && buf.readUInt32LE(0) === 0xfeedfacf) return inspectMachO(buf)
  if (buf.length >= 64 && buf.toString('latin1', 0, 2) === 'MZ') throw new Error('a PE (Windows) file: not inspected here')
  throw new Error('neither an ELF nor a 64-bit Mach-O file')
}

function compareVersions(a, b) {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0)
  }
  return 0
}

/**
 * Problems that keep `file` from being the binary of `target` (a scripts/platforms.js target):
 * wrong format or CPU, not a library, no N-API registration symbol, the wrong C library, or a
 * glibc symbol newer than GLIBC_FLOOR. Returns [] when it fits, plus the facts it read.
 */
function checkBinary(file, target) {
  let info
  try {
    info = inspect(file)
  } catch (error) {
    return { problems: [error.message], info: null }
  }
  const problems = []
  const wantFormat = target.platform === 'darwin' ? 'macho' : target.platform === 'linux' ? 'elf' : null
  if (!wantFormat) problems.push(`no check for ${target.platform} binaries`)
  if (wantFormat && info.format !== wantFormat) problems.push(`is ${info.format}, expected ${wantFormat}`)
  if (info.arch !== target.arch) problems.push(`is built for ${info.arch}, expected ${target.arch}`)
  if (!['shared-object', 'dylib', 'bundle'].includes(info.kind)) problems.push(`is a ${info.kind}, not a loadable library`)
  if (info.interpreter) problems.push(`has a program interpreter (${info.interpreter}): an executable, not an addon`)
  if (!info.exports.includes(NAPI_REGISTER)) problems.push(`does not export ${NAPI_REGISTER}`)
  if (target.platform === 'linux') {
    const glibcLib = info.needed.includes('libc.so.6')
    const muslLib = info.needed.some((name) => name === 'libc.so' || name.startsWith('libc.musl-'))
    if (target.libc === 'glibc' && !glibcLib) problems.push(`does not link glibc (needs ${info.needed.join(', ') || 'nothing'})`)
    if (target.libc === 'musl' && (!muslLib || glibcLib)) problems.push(`is not linked against musl's libc dynamically (needs ${info.needed.join(', ') || 'nothing'})`)
    if (target.libc === 'glibc' && info.glibc && compareVersions(info.glibc, GLIBC_FLOOR) > 0) {
      problems.push(`needs glibc ${info.glibc}, newer than the promised floor ${GLIBC_FLOOR}`)
    }
  }
  if (target.platform === 'darwin' && !info.needed.some((name) => name.startsWith('/usr/lib/libSystem'))) {
    problems.push(`does not link libSystem (needs ${info.needed.join(', ') || 'nothing'})`)
  }
  return { problems, info }
}

/** One line describing what was read, for logs. */
function summary(info) {
  const parts = [`${info.format} ${info.kind} ${info.arch}`]
  if (info.exports.includes(NAPI_REGISTER)) parts.push(`exports ${NAPI_REGISTER}`)
  if (info.needed.length) parts.push(`needs ${info.needed.join(' ')}`)
  if (info.glibc) parts.push(`newest glibc symbol ${info.glibc}`)
  return parts.join(', ')
}

module.exports = { inspect, checkBinary, summary, NAPI_REGISTER, GLIBC_FLOOR }

if (require.main === module) {
  const platforms = require('./platforms.js')
  const [file, triple] = process.argv.slice(2)
  if (!file || !triple) {
    process.stderr.write('usage: node scripts/binary-check.js <file.node> <target triple>\n')
    process.exit(2)
  }
  const { problems, info } = checkBinary(file, platforms.parseTriple(triple))
  if (info) process.stdout.write(`${summary(info)}\n`)
  for (const problem of problems) process.stdout.write(`problem: ${problem}\n`)
  process.exit(problems.length ? 1 : 0)
}
