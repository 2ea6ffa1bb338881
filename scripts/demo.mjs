// The README's main command: start an instance, run VMs of every guest-kit kind, hot-swap the
// instance to a second build (version 0.1.0 -> a copy labelled one patch higher) and back, and
// print each swap's table and a continuity verdict from what the guests themselves printed.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const stateDir = mkdtempSync(path.join(tmpdir(), 'swapvisor-demo-'));
const second = mkdtempSync(path.join(tmpdir(), 'swapvisor-next-'));
const disk = path.join(stateDir, 'demo-disk.img');
const cli = (dir, args, quiet = false) => {
  const r = spawnSync(process.execPath, [path.join(dir, 'bin', 'swapvisor.cjs'), ...args, '--state-dir', stateDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', quiet ? 'pipe' : 'inherit'] });
  if (r.status !== 0) throw new Error(`swapvisor ${args.join(' ')} failed: ${r.stdout}${r.stderr ?? ''}`);
  return r.stdout;
};
const get = (p) => new Promise((resolve, reject) => {
  request({ socketPath: path.join(stateDir, 'api.sock'), path: p }, (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (d) => { body += d; }).on('end', () => resolve(body));
  }).on('error', reject).end();
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A second build: this one's files, labelled with the next patch version. */
function makeSecondBuild() {
  for (const d of ['bin', 'dist', 'api', 'guest/build', 'native/build/Release']) cpSync(path.join(root, d), path.join(second, d), { recursive: true });
  symlinkSync(path.join(root, 'node_modules'), path.join(second, 'node_modules'));
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const [maj, min, pat] = pkg.version.split('.').map(Number);
  pkg.version = `${maj}.${min}.${pat + 1}`;
  writeFileSync(path.join(second, 'package.json'), JSON.stringify(pkg, null, 2));
  return pkg.version;
}

function verdict(name, text) {
  const hb = [...text.matchAll(/^hb (\d+) (\d+) \d+$/gm)].map((m) => [Number(m[1]), BigInt(m[2])]);
  if (hb.length > 0) {
    const period = Number(/period_us=(\d+)/.exec(text)?.[1] ?? 2000) / 1000;
    // TSC ticks per ms: from the start line if the history still has it, else from the median tick.
    const deltas = hb.slice(1).map(([, t], i) => Number(t - hb[i][1])).sort((a, b) => a - b);
    const khz = Number(/tsc_khz=(\d+)/.exec(text)?.[1] ?? 0) || deltas[Math.floor(deltas.length / 2)] / period;
    const holes = hb.filter(([s], i) => i > 0 && s !== hb[i - 1][0] + 1).length;
    const gap = khz ? Math.max(...hb.slice(1).map(([, t], i) => Number(t - hb[i][1]) / khz - period)) : NaN;
    return `${name}: ${hb.length} heartbeats, ${holes === 0 ? 'none lost or repeated' : `${holes} HOLES`}, largest gap ${gap.toFixed(2)} ms`;
  }
  if (/^mc pass/m.test(text)) return `${name}: ${/FAIL/.test(text) ? 'MEMORY CHECK FAILED' : `${(text.match(/^mc pass \d+ ok$/gm) ?? []).length} verified passes, no error`}`;
  if (/^timer \d+/m.test(text)) {
    const t = [...text.matchAll(/^timer (\d+) (\d+)$/gm)].map((m) => [Number(m[1]), Number(m[2])]).at(-1);
    return `${name}: ${t[0]} timer interrupts in ${(t[1] / 1e6).toFixed(2)} s of guest time`;
  }
  if (/^blk start/m.test(text)) {
    const passes = [...text.matchAll(/^blk pass (\d+) ok (\d+) errors (\d+)$/gm)];
    const bad = /^blk error/m.test(text) || passes.some((m) => m[3] !== '0');
    return `${name}: ${bad ? 'DISK ERRORS' : `${passes.length} passes over its virtio disk written and read back, 0 errors`}`;
  }
  if (/^smp /m.test(text)) {
    if (/^smp done ok$/m.test(text)) return `${name}: atomics and IPIs exact, done ok`;
    const bad = /^smp done BAD.*$/m.exec(text);
    // 20 M atomics per vCPU and 20 000 IPIs take longer than the demo when its CPUs are shared.
    return `${name}: ${bad ? bad[0] : 'still at its atomics and IPIs when the demo ended, no error so far'}`;
  }
  return `${name}: ${text.trim().split('\n').at(-1)}`;
}

try {
  const next = makeSecondBuild();
  writeFileSync(disk, Buffer.alloc(4 << 20)); // blkcheck's virtio disk: its I/O goes on through both swaps
  console.log(`== start an instance (state dir ${stateDir})`);
  cli(root, ['daemon', 'start', '--cpus', '0-1', '--mem-budget', '1G']);
  for (const [name, args] of [
    ['heartbeat', ['--guest', 'heartbeat', '--mem', '16M', '--cmdline', 'period_us=2000']],
    ['memcheck', ['--guest', 'memcheck', '--mem', '64M', '--cmdline', 'mib=16']],
    ['timer', ['--guest', 'timer', '--mem', '16M']],
    ['smp', ['--guest', 'smp', '--vcpus', '2', '--mem', '16M', '--cmdline', 'iters=20000000 ipis=20000']],
    ['blkcheck', ['--guest', 'blkcheck', '--mem', '32M', '--cmdline', 'passes=0', '--disk', `id=vda,path=${disk}`]],
  ]) cli(root, ['vm', 'create', name, ...args, '--start'], true);
  await sleep(1500);
  process.stdout.write(cli(root, ['vm', 'ls']));
  console.log(`\n== swap to a second build (${next}) while the VMs run`);
  process.stdout.write(cli(root, ['swap', '--to', second]));
  await sleep(1000);
  console.log(`\n== and back to the first build`);
  process.stdout.write(cli(second, ['swap', '--to', root]));
  await sleep(3000);
  console.log('\n== continuity, from what the guests printed');
  for (const name of ['heartbeat', 'memcheck', 'timer', 'smp', 'blkcheck']) console.log(`  ${verdict(name, await get(`/v1/vms/${name}/console/log?tailBytes=1048576`))}`);
  process.stdout.write(cli(root, ['host', 'info']));
} finally {
  spawnSync(process.execPath, [path.join(root, 'bin', 'swapvisor.cjs'), 'daemon', 'stop', '--state-dir', stateDir], { stdio: 'ignore' });
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(second, { recursive: true, force: true });
}
