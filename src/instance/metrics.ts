// /metrics in the Prometheus text exposition format (version 0.0.4): instance gauges and, per VM,
// its state, vCPU exits, console bytes and pause totals. Counters are monotonic across VM restarts.

import type { InstanceVm } from './vm.js';

export interface InstanceGauges {
  version: string;
  uptimeSec: number;
  memBudgetMib: number;
  memUsedMib: number;
  cpus: readonly number[];
}

function esc(label: string): string {
  return label.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

class Exposition {
  private lines: string[] = [];
  family(name: string, type: 'gauge' | 'counter', help: string, samples: Array<[Record<string, string>, number | bigint]>): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`).join(',');
      this.lines.push(`${name}${l ? `{${l}}` : ''} ${value.toString()}`);
    }
  }
  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

export function renderMetrics(g: InstanceGauges, vms: readonly InstanceVm[]): string {
  const e = new Exposition();
  e.family('swapvisor_instance_info', 'gauge', 'The running instance, labelled with its version.', [[{ version: g.version }, 1]]);
  e.family('swapvisor_uptime_seconds', 'gauge', 'Seconds since the instance started.', [[{}, g.uptimeSec]]);
  e.family('swapvisor_partition_cpus', 'gauge', 'Host CPUs in the instance partition.', [[{}, g.cpus.length]]);
  e.family('swapvisor_memory_budget_mib', 'gauge', 'Memory budget of the partition.', [[{}, g.memBudgetMib]]);
  e.family('swapvisor_memory_used_mib', 'gauge', 'Guest memory reserved by running VMs.', [[{}, g.memUsedMib]]);
  const states = ['created', 'running', 'paused', 'stopped', 'crashed', 'lost'];
  e.family('swapvisor_vms', 'gauge', 'VMs by state.', states.map((s) => [{ state: s }, vms.filter((v) => v.state === s).length]));
  const per = (f: (v: InstanceVm) => number | bigint): Array<[Record<string, string>, number | bigint]> => vms.map((v) => [{ vm: v.name }, f(v)]);
  const live = (v: InstanceVm) => v.running?.vcpus ?? [];
  e.family('swapvisor_vm_running', 'gauge', '1 if the VM is running or paused.', per((v) => (v.running ? 1 : 0)));
  e.family('swapvisor_vm_memory_mib', 'gauge', 'Guest RAM of the VM.', per((v) => v.config.memMib));
  e.family('swapvisor_vm_exits_total', 'counter', 'vCPU exits to userspace.', per((v) => v.totals.exits + live(v).reduce((n, c) => n + c.exitsTotal, 0)));
  e.family('swapvisor_vm_io_exits_total', 'counter', 'Port I/O exits to userspace in the current run.', per((v) => live(v).reduce((n, c) => n + c.counters.ioExits, 0)));
  e.family('swapvisor_vm_console_out_bytes_total', 'counter', 'Bytes the guest wrote to its console.', per((v) => v.console.bytesOut));
  e.family('swapvisor_vm_console_in_bytes_total', 'counter', 'Bytes sent to the guest console.', per((v) => v.console.bytesIn));
  e.family('swapvisor_vm_pauses_total', 'counter', 'Pauses of the VM.', per((v) => v.totals.pauses));
  e.family('swapvisor_vm_pause_seconds_total', 'counter', 'Time spent bringing vCPUs to a pause.', per((v) => Number(v.totals.pauseNs) / 1e9));
  e.family('swapvisor_virtio_events_total', 'counter', 'virtio device events in the current run of the VM (requests, bytes, errors, NEEDS_RESET), by device and event.', virtioSamples(vms));
  return e.text();
}

function virtioSamples(vms: readonly InstanceVm[]): Array<[Record<string, string>, number]> {
  const out: Array<[Record<string, string>, number]> = [];
  for (const v of vms) {
    for (const d of v.running?.virtioDevices?.metrics() ?? []) {
      const events: Record<string, unknown> = { ...d.transport, ...(typeof d.device === 'object' && d.device !== null ? d.device : {}) };
      for (const [event, value] of Object.entries(events)) {
        if (typeof value === 'number') out.push([{ vm: v.name, device: d.id, kind: d.kind, event }, value]);
      }
    }
  }
  return out;
}
