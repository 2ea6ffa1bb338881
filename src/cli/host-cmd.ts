// `swapvisor host info [--platform] [--json]`: the instance's partition and, with --platform, the
// platform record it was given (its slice of what firmware and the kernel reported).

import { parseArgs } from 'node:util';
import { ApiClient, stateDirFrom } from './api-client.js';
import { UsageError } from './errors.js';
import { HOST_USAGE } from './usage.js';


interface InstanceView {
  version: string;
  pid: number;
  uptimeSec: number;
  stateDir: string;
  partition: { cpus: number[]; memBudgetMib: number; memUsedMib: number; cgroup: string | null };
  platform: { cpuModel: string; cpuCount: number; numaNodes: number; kvmFlavor: string; kvmApiVersion: number; capturedAt: string };
}

export async function hostCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'info') throw new UsageError(HOST_USAGE);
  const { values } = parseArgs({ args: rest, strict: true, options: { 'state-dir': { type: 'string' }, platform: { type: 'boolean' }, json: { type: 'boolean' } } });
  const api = new ApiClient(stateDirFrom(values['state-dir']));
  if (values.platform) {
    if (values.json) process.stdout.write(`${JSON.stringify(await api.json('GET', '/v1/platform'), null, 2)}\n`);
    else process.stdout.write(await api.text('/v1/platform?format=text'));
    return 0;
  }
  const i = await api.json<InstanceView>('GET', '/v1/instance');
  if (values.json) {
    process.stdout.write(`${JSON.stringify(i, null, 2)}\n`);
    return 0;
  }
  const p = i.partition;
  process.stdout.write([
    `instance   swapvisor ${i.version}, pid ${i.pid}, up ${i.uptimeSec.toFixed(0)} s, state dir ${i.stateDir}`,
    `cpus       ${p.cpus.join(',')}${p.cgroup ? ` (cpuset ${p.cgroup})` : ' (sched_setaffinity only)'}`,
    `memory     ${p.memUsedMib} of ${p.memBudgetMib} MiB budget in use`,
    `platform   ${i.platform.cpuModel}, ${i.platform.cpuCount} CPUs, ${i.platform.numaNodes} NUMA node(s), KVM ${i.platform.kvmFlavor} API ${i.platform.kvmApiVersion}, captured ${i.platform.capturedAt}`,
  ].join('\n') + '\n');
  return 0;
}
