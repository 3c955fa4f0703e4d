// The status page is tested in a real headless Chromium (test/server/status-browser.test.ts).
// `npm test` runs this first so that the README's one command sets a fresh machine up:
// Debian's chromium package is installed when it is missing and we may (root, apt-get).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const candidates = ['/usr/bin/chromium', '/usr/bin/chromium-browser']
if (candidates.some((path) => existsSync(path))) process.exit(0)

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
if (!isRoot || !existsSync('/usr/bin/apt-get')) {
  console.error(
    'Chromium is missing: the status page test needs it. Install it with `sudo apt-get install chromium` (Debian) and run again.',
  )
  process.exit(1)
}
console.log("Installing Debian's chromium for the status page test (once per machine)…")
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
for (const args of [
  ['update', '-qq'],
  ['install', '-y', '-qq', '--no-install-recommends', 'chromium'],
]) {
  const result = spawnSync('apt-get', args, { stdio: 'inherit', env })
  if (result.status !== 0) {
    console.error(`apt-get ${args.join(' ')} failed (exit ${result.status}).`)
    process.exit(1)
  }
}
