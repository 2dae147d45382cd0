import test from 'ava'
import { execFile } from 'node:child_process'
import { join } from 'node:path'

// The user's install path end to end (scripts/test-package.js): pack the root and the platform
// package, install them offline into a temp project with no cargo on PATH, run two ChordSockets.
// About 10 s; the timeout leaves room for a slow npm.
test('package: the packed tarballs install and run without a Rust toolchain', async (t) => {
  t.timeout(8 * 60_000)
  const root = join(__dirname, '..')
  const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
    execFile(
      process.execPath,
      [join(root, 'scripts', 'test-package.js')],
      { cwd: root, timeout: 8 * 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const status = error ? (typeof error.code === 'number' ? error.code : 1) : 0
        resolve({ code: status, output: `${stdout}${stderr}` })
      },
    )
  })
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(output)
  t.truthy(summary, `no summary line in:\n${output}`)
  t.is(summary?.[2], '0', output)
  t.is(code, 0, output)
})
