/**
 * The benchmark's smoke mode: chordnet in memory and on disk (4 nodes, 50 operations) and, if fast, hyperdht at the same
 * size, correctness only (no timing assertions). Ports are picked by the OS on 127.0.0.1; output
 * goes to a temporary directory, never to bench/results.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const root = join(__dirname, '..')

function runSmoke(out: string, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bench', 'run.js'), '--smoke', '--out', out], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, output })
    })
  })
}

test('bench --smoke: every value read back matches and the run exits 0', async (t) => {
  t.timeout(150_000)
  const out = mkdtempSync(join(tmpdir(), 'chordnet-bench-smoke-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const { code, signal, output } = await runSmoke(out, 120_000)
  t.is(signal, null, `the smoke run was killed after 120 s:\n${output}`)
  t.is(code, 0, output)

  // chordnet's row: the correctness column says every value read back matched.
  const markdown = readFileSync(join(out, 'bench.md'), 'utf8')
  const rows = markdown.split('\n').filter((line) => line.startsWith('| ') && /\| \d+ \|/.test(line))
  const chordnetRows = rows.filter((line) => line.includes('chordnet'))
  t.is(chordnetRows.length, 2, `chordnet in memory and on disk:\n${markdown}`)
  for (const row of chordnetRows) {
    const correct = row.split(' | ').find((cell) => /^\d+\/\d+ /.test(cell))
    t.truthy(correct, `no correctness cell in: ${row}`)
    const [, ok, total] = /^(\d+)\/(\d+) /.exec(correct!)!
    t.true(Number(total) >= 50, correct)
    t.is(ok, total, correct)
    t.regex(correct!, /all matched/)
  }

  // Every implementation that ran (hyperdht only if it was fast enough): no wrong value.
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))
  for (const ours of results.rows.filter((row: { ours: boolean }) => row.ours)) {
    t.true(ours.ok, JSON.stringify(ours.statuses))
    t.is(ours.correctness.errors, 0)
  }
  for (const row of results.rows) t.is(row.correctness.wrong, 0, `${row.label}: ${row.correctness.firstWrong}`)
})
