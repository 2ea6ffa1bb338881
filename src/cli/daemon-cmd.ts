// `swapvisor daemon start|stop|status`: the instance as a service. `start` forks a detached daemon
// and waits until its API answers; `start --foreground` runs it in this process (for systemd).

import { DAEMON_NODE_FLAGS } from '../swap/launch.js';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Daemon } from '../instance/daemon.js';
import { SwapReceiver } from '../instance/swap-receiver.js';
import { parseCpuList } from '../instance/partition/cpu-list.js';
import { ApiClient, DaemonNotRunningError, stateDirFrom } from './api-client.js';
import { UsageError } from './errors.js';
import { parseSizeMib } from './size.js';
import { DAEMON_USAGE } from './usage.js';
import { processRunning } from '../sys/process-state.js';


const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 60_000;

function onlineCpus(): number[] {
  return parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8').trim());
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Serves until SIGTERM/SIGINT (then shuts down) or until a hot swap retired this instance. */
async function serveUntilDone(daemon: Daemon): Promise<number> {
  const stop = (): void => { void daemon.shutdown(); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await daemon.finished;
  process.off('SIGTERM', stop);
  process.off('SIGINT', stop);
  // Nothing of this instance is left to run: VMs, API and partition are gone or handed over.
  setImmediate(() => process.exit(0));
  return 0;
}

async function runForeground(opts: { stateDir: string; cpus: number[]; memBudgetMib: number; restartLost: boolean }): Promise<number> {
  return serveUntilDone(await Daemon.start({ ...opts, foreground: true }));
}

/** The new instance of a hot swap, started by the old one with the handover socket as an fd. */
async function receive(opts: { stateDir: string; cpus: number[]; memBudgetMib: number; handoverFd: number }): Promise<number> {
  const daemon = await SwapReceiver.run(opts);
  if (!daemon) {
    setImmediate(() => process.exit(0));
    return 0;
  }
  return serveUntilDone(daemon);
}

async function startBackground(argv: string[], stateDir: string): Promise<number> {
  const api = new ApiClient(stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const cli = path.resolve(process.argv[1] ?? 'bin/swapvisor.cjs');
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, cli, 'daemon', 'start', '--foreground', ...argv], {
    detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SWAPVISOR_STATE_DIR: stateDir },
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  let exited: number | null | undefined;
  child.on('exit', (code) => { exited = code; });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      process.stderr.write(stderr || `swapvisor: error: the daemon exited with status ${exited} before it was ready; see ${path.join(stateDir, 'daemon.log')}\n`);
      return exited || 1;
    }
    try {
      const info = await api.json<{ pid: number; version: string }>('GET', '/v1/instance');
      if (info.pid === child.pid) {
        child.stderr!.destroy();
        child.unref();
        process.stdout.write(`swapvisor daemon ${info.version} running, pid ${info.pid}, state dir ${stateDir}\n`);
        return 0;
      }
    } catch (e) {
      if (!(e instanceof DaemonNotRunningError)) throw e;
    }
    await sleep(50);
  }
  child.kill('SIGTERM');
  throw new UsageError(`the daemon did not become ready within ${READY_TIMEOUT_MS / 1000} s; see ${path.join(stateDir, 'daemon.log')}`);
}

async function stop(stateDir: string): Promise<number> {
  const api = new ApiClient(stateDir);
  const info = await api.json<{ pid: number }>('GET', '/v1/instance');
  process.kill(info.pid, 'SIGTERM');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (processRunning(info.pid)) {
    if (Date.now() > deadline) throw new UsageError(`daemon pid ${info.pid} did not stop within ${STOP_TIMEOUT_MS / 1000} s`);
    await sleep(50);
  }
  process.stdout.write(`swapvisor daemon (pid ${info.pid}) stopped\n`);
  return 0;
}

async function status(stateDir: string, json: boolean): Promise<number> {
  const api = new ApiClient(stateDir);
  try {
    const info = await api.json<Record<string, unknown> & { pid: number; version: string; uptimeSec: number; partition: { cpus: number[]; memBudgetMib: number; memUsedMib: number } }>('GET', '/v1/instance');
    if (json) process.stdout.write(`${JSON.stringify({ running: true, ...info }, null, 2)}\n`);
    else process.stdout.write(`running: pid ${info.pid}, version ${info.version}, up ${info.uptimeSec.toFixed(0)} s, CPUs ${info.partition.cpus.join(',')}, memory ${info.partition.memUsedMib}/${info.partition.memBudgetMib} MiB\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof DaemonNotRunningError)) throw e;
    if (json) process.stdout.write(`${JSON.stringify({ running: false, stateDir })}\n`);
    else process.stdout.write(`not running (state dir ${stateDir}${existsSync(stateDir) ? '' : ', which does not exist'})\n`);
    return 3;
  }
}

export async function daemonCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parseArgs({
    args: rest, strict: true,
    options: {
      'state-dir': { type: 'string' }, cpus: { type: 'string' }, 'mem-budget': { type: 'string' }, 'handover-fd': { type: 'string' },
      foreground: { type: 'boolean' }, 'restart-lost': { type: 'boolean' }, json: { type: 'boolean' },
    },
  });
  const stateDir = stateDirFrom(values['state-dir']);
  switch (sub) {
    case 'start': {
      let cpus: number[];
      try {
        cpus = values.cpus !== undefined ? parseCpuList(values.cpus) : onlineCpus();
      } catch (e) {
        throw new UsageError(`--cpus "${values.cpus}": ${(e as Error).message}`);
      }
      const memBudgetMib = values['mem-budget'] !== undefined ? parseSizeMib(values['mem-budget'], '--mem-budget')
        : Math.floor(Math.min(totalmem() * 0.75, freemem()) / (1024 * 1024));
      if (values.foreground) return runForeground({ stateDir, cpus, memBudgetMib, restartLost: values['restart-lost'] ?? false });
      const forward = rest.filter((a) => a !== '--foreground');
      return startBackground(forward, stateDir);
    }
    case 'receive': {
      const fd = Number(values['handover-fd']);
      if (!Number.isInteger(fd) || fd < 3 || values.cpus === undefined || values['mem-budget'] === undefined) {
        throw new UsageError('daemon receive is started by a running instance during a hot swap; use swapvisor swap --to DIR');
      }
      return receive({ stateDir, cpus: parseCpuList(values.cpus), memBudgetMib: parseSizeMib(values['mem-budget'], '--mem-budget'), handoverFd: fd });
    }
    case 'stop':
      return stop(stateDir);
    case 'status':
      return status(stateDir, values.json ?? false);
    default:
      throw new UsageError(`unknown daemon command "${sub ?? ''}"\n${DAEMON_USAGE}`);
  }
}
