// The instance's side of a hot swap as the API sees it: start one (instance A), follow it, abort
// it, and read the last report. It also lends the swap what it needs from the instance (SwapHost).

import { splitCpus } from '../swap/boot-info.js';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { SwapHost } from '../swap/host.js';
import type { SwapReport } from '../swap/report.js';
import { Swap } from '../swap/swap.js';
import { ApiError } from './api/errors.js';
import type { Daemon, DaemonParts } from './daemon.js';
import { packageRoot, packageVersion } from './package-info.js';
import { encodedSliceFor } from './platform-view.js';
import { writeFileAtomicAsync } from './atomic-file.js';
import { sweepStaleCpusets } from './partition/cpuset-cgroup.js';
import { rehearseQuietly } from '../swap/rehearse.js';
import { guestKitPath } from './guest-kit.js';

export type SwapReportJson = ReturnType<SwapReport['toJSON']>;

export interface SwapRequest {
  to: string;
  dryRun: boolean;
  concurrency: number;
  canary?: { vm: string; secs: number; pattern?: string };
}

export function validateSwapRequest(body: unknown): SwapRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('ERR_VALIDATION', 'the body must be a JSON object like {"to": "/path/to/build"}');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!['to', 'dryRun', 'concurrency', 'canary'].includes(k)) throw new ApiError('ERR_VALIDATION', `unknown field "${k}": remove it (the fields are to, dryRun, concurrency, canary)`);
  if (typeof b['to'] !== 'string' || !b['to'].startsWith('/') || b['to'].length > 4096) throw new ApiError('ERR_VALIDATION', 'to must be the absolute path of a built swapvisor');
  if (b['dryRun'] !== undefined && typeof b['dryRun'] !== 'boolean') throw new ApiError('ERR_VALIDATION', 'dryRun must be true or false');
  const c = b['concurrency'] ?? 4;
  if (typeof c !== 'number' || !Number.isInteger(c) || c < 1 || c > 16) throw new ApiError('ERR_VALIDATION', `concurrency must be an integer from 1 to 16 (got ${JSON.stringify(c)})`);
  return { to: b['to'], dryRun: b['dryRun'] === true, concurrency: c, canary: validateCanary(b['canary']) };
}

function validateCanary(c: unknown): SwapRequest['canary'] {
  if (c === undefined) return undefined;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new ApiError('ERR_VALIDATION', 'canary must be an object like {"vm": "web1", "secs": 3}');
  const o = c as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['vm', 'secs', 'pattern'].includes(k)) throw new ApiError('ERR_VALIDATION', `unknown canary field "${k}": the fields are vm, secs, pattern`);
  if (typeof o['vm'] !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(o['vm'])) throw new ApiError('ERR_VALIDATION', 'canary.vm must be the name of a VM');
  const secs = o['secs'] ?? 3;
  if (typeof secs !== 'number' || !Number.isInteger(secs) || secs < 1 || secs > 300) throw new ApiError('ERR_VALIDATION', `canary.secs must be an integer from 1 to 300 (got ${JSON.stringify(secs)})`);
  const pattern = o['pattern'];
  if (pattern !== undefined) {
    if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > 200) throw new ApiError('ERR_VALIDATION', 'canary.pattern must be a regular expression of 1 to 200 characters');
    try {
      new RegExp(pattern, 'm');
    } catch (e) {
      throw new ApiError('ERR_VALIDATION', `canary.pattern is not a valid regular expression: ${(e as Error).message}`);
    }
  }
  return { vm: o['vm'], secs, ...(typeof pattern === 'string' ? { pattern } : {}) };
}

export class SwapControl {
  private current: Swap | undefined;
  private last: SwapReportJson | undefined;

  constructor(private readonly daemon: Daemon, private readonly parts: DaemonParts) {
    // The slice for the usual split is ready before anyone asks for a swap: computing it (reading,
    // decoding, slicing and encoding the record) takes milliseconds on the thread the VMs' exits need.
    // So is the pause window's code (see warmPauseWindow).
    const warm = setTimeout(() => {
      const cpus = parts.partition.cpus;
      if (cpus.length >= 2) this.sliceFor(splitCpus(cpus).bCpus, parts.partition.budget.total);
      void this.warmPauseWindow();
    }, 500);
    warm.unref();
  }

  private warmed: Promise<void> | undefined;

  /**
   * Runs the pause window's code once in this process, on a probe VM (rehearseQuietly), so that the
   * first VM a swap moves does not pay for cold code: measured here, the first run of each step is
   * 3-10x slower than the twentieth. Once per process, soon after start and not during a swap:
   * building the probe holds this thread for 2-10 ms (a kernel thread for its PIT, KVM's I/O bus),
   * and during a swap that stalled every VM's I/O. Daemons keep compiled code (--no-flush-bytecode).
   */
  private warmPauseWindow(): Promise<void> {
    this.warmed ??= Promise.resolve()
      .then(() => rehearseQuietly(new Uint8Array(readFileSync(guestKitPath('heartbeat')))))
      .catch((e: unknown) => this.parts.log.warn({ error: String(e) }, 'swap.rehearsal-failed'));
    return this.warmed;
  }

  private readonly slices = new Map<string, Uint8Array>();

  /** The platform record restricted to `cpus`, computed once per (cpus, budget). */
  private sliceFor(cpus: readonly number[], budgetMib: number): Uint8Array {
    const key = `${cpus.join(',')}/${budgetMib}`;
    let slice = this.slices.get(key);
    if (!slice) {
      slice = encodedSliceFor(this.parts.stateDir.dir, { cpus, memBudgetMib: budgetMib });
      this.slices.set(key, slice);
    }
    return slice;
  }

  get inProgress(): boolean {
    return this.current !== undefined;
  }

  private host(): SwapHost {
    const { stateDir, partition, registry, log } = this.parts;
    return {
      stateDir: stateDir.dir,
      version: packageVersion(),
      packageRoot: packageRoot(),
      startedAtMs: Date.now() - process.uptime() * 1000,
      partition,
      budgetMib: partition.budget.total,
      platformSliceFor: (cpus, budgetMib) => this.sliceFor(cpus, budgetMib),
      vmStateSettled: () => registry.settled(),
      runningVms: () => registry.list().filter((v) => v.running !== undefined),
      forgetMoved: (name) => registry.forgetMoved(name),
      retirementFds: () => ({ apiListenFd: this.daemon.listenFd(), lockFd: stateDir.lockFd }),
      rehearsePauseWindow: () => this.warmPauseWindow(),
      cleanUpAfterB: () => {
        const removed = sweepStaleCpusets();
        if (removed.length > 0) log.info({ removed }, 'swap.cleaned-up-after-b');
      },
      log: (event, fields) => log.info(fields, event),
    };
  }

  /** Starts a swap; a dry run resolves with the plan, a real one with its first report at once. */
  async start(req: SwapRequest): Promise<{ status: number; report: SwapReportJson }> {
    if (this.current) throw new ApiError('ERR_VM_STATE', 'a swap is already in progress; follow it with GET /v1/swap or stop it with DELETE /v1/swap');
    const swap = new Swap(this.host(), { id: `swap-${Date.now()}`, to: req.to, dryRun: req.dryRun, concurrency: req.concurrency, canary: req.canary });
    if (req.dryRun) return { status: 200, report: (await swap.run()).toJSON() };
    this.current = swap;
    this.parts.log.info({ to: req.to }, 'swap.start');
    void swap.run().then(
      async (report) => {
        this.last = report.toJSON();
        this.current = undefined;
        this.parts.log.info({ report: this.last }, 'swap.done');
        await this.daemon.retire();
      },
      (e: unknown) => {
        this.last = swap.report.toJSON();
        this.current = undefined;
        this.save(this.last);
        this.parts.log.error({ err: e instanceof Error ? e.message : String(e), report: this.last }, 'swap.failed');
      },
    );
    return { status: 202, report: swap.report.toJSON() };
  }

  status(): SwapReportJson {
    const r = this.current?.report.toJSON() ?? this.last ?? this.loadLast();
    if (!r) throw new ApiError('ERR_NOT_FOUND', 'no swap has run on this state dir yet; start one with swapvisor swap --to DIR');
    return r;
  }

  abort(): SwapReportJson {
    if (!this.current) throw new ApiError('ERR_VM_STATE', 'no swap is in progress');
    this.current.abort();
    return this.current.report.toJSON();
  }

  /** B: the report A handed over, completed by B's own end of the retirement. */
  completeReceived(report: SwapReportJson): void {
    this.last = report;
    this.save(report);
  }

  /** The last report write: each waits for the one before, so the newest report is what stays. */
  private saving: Promise<void> = Promise.resolve();

  /**
   * Saves a report in <state-dir>/swaps/ on the thread pool: in B this happens right after the last
   * VM moved, and the synchronous fsyncs held B's main thread (and its VMs' I/O) for milliseconds.
   */
  private save(r: SwapReportJson): void {
    const dir = path.join(this.parts.stateDir.dir, 'swaps');
    const text = `${JSON.stringify(r, null, 2)}\n`;
    this.saving = this.saving.then(async () => {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      await writeFileAtomicAsync(path.join(dir, `${r.id}.json`), text);
    }).catch((e: unknown) => this.parts.log.warn({ swap: r.id, error: (e as Error).message }, 'swap.report-save-failed'));
  }

  private loadLast(): SwapReportJson | undefined {
    const dir = path.join(this.parts.stateDir.dir, 'swaps');
    try {
      const last = readdirSync(dir).filter((f) => f.endsWith('.json')).sort().at(-1);
      return last ? (JSON.parse(readFileSync(path.join(dir, last), 'utf8')) as SwapReportJson) : undefined;
    } catch {
      return undefined;
    }
  }
}
