// The swap's report: the plan, each phase's start and end, each VM's host pause, what was lost,
// and how it ended. Kept by A during the swap, handed to B at retirement, and saved as the
// swap's timeline in the state dir for `swapvisor swap report`.

import type { VmMove } from './move-vm.js';

export type PhaseName = 'boot-info' | 'partition' | 'launch' | 'move-vm' | 'retire';
export type SwapState = 'running' | 'planned' | 'retiring' | 'done' | 'rolled-back';

export interface SwapReport {
  id: string;
  state: SwapState;
  phase: PhaseName | null;
  startedAt: string;
  from: { version: string; pid: number };
  to: { dir: string; version: string | null; pid: number | null };
  plan: { aCpus: number[]; bCpus: number[]; targetVersion: string; vms: string[] } | null;
  phases: Array<{ name: PhaseName; startMs: number; endMs: number | null }>;
  vms: VmMove[];
  lost: string[];
  /** The canary's outcome, when the swap ran one. */
  canary: { vm: string; ok: boolean; detail: string; pauseUs: number } | null;
  totalMs: number | null;
  /** Bytes of guest RAM that crossed the handover socket: always 0, RAM goes as memfds. */
  guestRamBytesCopied: 0;
  error: { code: string; message: string } | null;
  elapsedMs(): number;
  toJSON(): Omit<SwapReport, 'elapsedMs' | 'toJSON'>;
}

export function newReport(id: string, to: string, fromVersion: string): SwapReport {
  const t0 = performance.now();
  const r: SwapReport = {
    id, state: 'running', phase: null, startedAt: new Date().toISOString(),
    from: { version: fromVersion, pid: process.pid }, to: { dir: to, version: null, pid: null },
    plan: null, phases: [], vms: [], lost: [], canary: null, totalMs: null, guestRamBytesCopied: 0, error: null,
    elapsedMs: () => Math.round((performance.now() - t0) * 1000) / 1000,
    toJSON: () => {
      const { elapsedMs: _e, toJSON: _t, ...plain } = r;
      return JSON.parse(JSON.stringify(plain)) as Omit<SwapReport, 'elapsedMs' | 'toJSON'>;
    },
  };
  return r;
}
