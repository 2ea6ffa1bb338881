// `swapvisor swap`: replace the running instance with another build while its VMs keep running.
//   swap --to DIR [--dry-run] [--concurrency N] [--json]   start one and follow it to the end
//   swap --abort                                           stop a swap in progress (it rolls back)
//   swap report [--json] [--html FILE]                     the last swap's timeline
// The API socket moves to the new instance during the swap; following it needs no reconnect.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { SwapReportJson } from '../instance/swap-control.js';
import { ApiClient, stateDirFrom } from './api-client.js';
import { UsageError } from './errors.js';
import { renderSwapHtml } from './swap-html.js';
import { table } from './table.js';
import { SWAP_USAGE } from './usage.js';


const POLL_MS = 50;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ms = (n: number | null): string => (n === null ? '-' : n < 10 ? n.toFixed(2) : n.toFixed(0));

function pauseSteps(p: SwapReportJson['vms'][number]['pauseStepsUs']): string {
  if (!p) return '-';
  const n = (x: number | undefined): string => (x === undefined ? '?' : x.toFixed(0));
  return `${n(p.vcpuStop)} | ${n(p.saveEncode)} ${n(p.send)} | ${n(p.transfer)} ${n(p.decode)} ${n(p.restore)}`;
}

export function swapSummary(r: SwapReportJson): string {
  const phases = table(['PHASE', 'START MS', 'DURATION MS'], r.phases.map((p) => [p.name, ms(p.startMs), p.endMs === null ? '-' : ms(p.endMs - p.startMs)]));
  const vms = table(['VM', 'HOST PAUSE US', 'SHELL MS', 'STATE BYTES', 'PAUSE STEPS US (stop | save+encode send | transfer decode restore)'],
    r.vms.map((v) => [v.name, v.hostPauseUs.toFixed(0), ms(v.shellMs), String(v.stateBytes), pauseSteps(v.pauseStepsUs)]));
  const head = `swap ${r.id}: ${r.from.version} (pid ${r.from.pid}) -> ${r.to.version ?? '?'} (pid ${r.to.pid ?? '?'}): ${r.state}` +
    `${r.totalMs !== null ? `, ${ms(r.totalMs)} ms` : ''}, guest RAM copied: ${r.guestRamBytesCopied} bytes`;
  const canary = r.canary ? `canary ${r.canary.vm}: ${r.canary.ok ? 'healthy' : 'FAILED'} (${r.canary.detail}); original paused ${r.canary.pauseUs.toFixed(0)} us for the clone\n` : '';
  const tail = [canary.trimEnd(), r.lost.length > 0 ? `lost: ${r.lost.join(', ')}` : '', r.error ? `error: ${r.error.message}` : ''].filter(Boolean).join('\n');
  return `${head}\n\n${phases}\n${r.vms.length > 0 ? vms : 'no VMs were running\n'}${tail ? `\n${tail}\n` : ''}`;
}

async function follow(api: ApiClient, json: boolean): Promise<number> {
  let seenPhase = '';
  let seenVms = 0;
  for (let transient = 0; ; ) {
    let r: SwapReportJson;
    try {
      r = await api.json<SwapReportJson>('GET', '/v1/swap');
      transient = 0;
    } catch (e) {
      // The old instance may exit between accepting a request and answering it: ask again.
      // (or its socket path may be briefly gone before the new instance names it again).
      const code = (e as { code?: string }).code;
      if ((code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_DAEMON_NOT_RUNNING') && ++transient < 100) { await sleep(POLL_MS); continue; }
      throw e;
    }
    if (!json) {
      if (r.phase && r.phase !== seenPhase) { process.stderr.write(`phase ${r.phase}\n`); seenPhase = r.phase; }
      for (const v of r.vms.slice(seenVms)) process.stderr.write(`  moved ${v.name}: host pause ${v.hostPauseUs.toFixed(0)} us\n`);
      seenVms = r.vms.length;
    }
    if (r.state === 'done' || r.state === 'rolled-back') {
      process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : swapSummary(r));
      return r.state === 'done' ? 0 : 1;
    }
    await sleep(POLL_MS);
  }
}

export async function swapCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, strict: true, allowPositionals: true,
    options: {
      'state-dir': { type: 'string' }, to: { type: 'string' }, 'dry-run': { type: 'boolean' }, abort: { type: 'boolean' },
      json: { type: 'boolean' }, html: { type: 'string' }, concurrency: { type: 'string' },
      canary: { type: 'string' }, 'canary-secs': { type: 'string' }, 'canary-pattern': { type: 'string' },
    },
  });
  const api = new ApiClient(stateDirFrom(values['state-dir']));
  if (positionals[0] === 'report') {
    const r = await api.json<SwapReportJson>('GET', '/v1/swap');
    if (values.html !== undefined) {
      writeFileSync(values.html, renderSwapHtml(r));
      process.stderr.write(`wrote ${path.resolve(values.html)}\n`);
    }
    process.stdout.write(values.json ? `${JSON.stringify(r, null, 2)}\n` : swapSummary(r));
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unknown swap command "${positionals[0]}"\n${SWAP_USAGE}`);
  if (values.abort) {
    await api.json('DELETE', '/v1/swap');
    process.stdout.write('abort requested; the swap rolls back\n');
    return 0;
  }
  if (values.to === undefined) throw new UsageError(`give the build to swap to with --to DIR\n${SWAP_USAGE}`);
  const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
  const canary = values.canary === undefined ? undefined : {
    vm: values.canary,
    ...(values['canary-secs'] !== undefined ? { secs: Number(values['canary-secs']) } : {}),
    ...(values['canary-pattern'] !== undefined ? { pattern: values['canary-pattern'] } : {}),
  };
  const body = { to: path.resolve(values.to), ...(values['dry-run'] ? { dryRun: true } : {}), ...(concurrency !== undefined ? { concurrency } : {}), ...(canary ? { canary } : {}) };
  const first = await api.json<SwapReportJson>('POST', '/v1/swap', body);
  if (values['dry-run']) {
    const p = first.plan!;
    process.stdout.write(values.json ? `${JSON.stringify(first, null, 2)}\n`
      : `plan: swap ${first.from.version} -> ${p.targetVersion} at ${first.to.dir}\n  keep CPUs ${p.aCpus.join(',')} for the running instance, start the new one on CPUs ${p.bCpus.join(',')}\n  move ${p.vms.length} VM(s): ${p.vms.join(', ') || '(none)'}\n  then hand over the API socket and the state-dir lock, and retire pid ${first.from.pid}\n`);
    return 0;
  }
  return follow(api, values.json ?? false);
}
