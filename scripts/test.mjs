// The test command: sets everything up, fetches Debian's kernel for the slow banner test, then
// runs every compiled *.test.js under dist/ with Node's test runner. Exit code: the runner's.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
process.chdir(root);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.status !== 0) {
    process.stderr.write(`test: ${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})\n`);
    process.exit(r.status || 1);
  }
  return r;
}

run('bash', ['scripts/setup.sh']);
const kernel = run('bash', ['scripts/fetch-debian-kernel.sh'], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
process.env.SWAPVISOR_DEBIAN_VMLINUX = path.resolve(kernel.stdout.trim());

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const only = process.argv.slice(2);
const files = findTests('dist').filter((f) => only.length === 0 || only.some((o) => f.includes(o))).sort();
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
