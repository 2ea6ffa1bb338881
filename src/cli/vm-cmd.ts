// `swapvisor vm create|start|pause|resume|stop|rm|ls|show`: VMs of the running daemon, over its API.

import { parseArgs } from 'node:util';
import type { VmInfo } from '../instance/vm.js';
import { ApiClient, stateDirFrom } from './api-client.js';
import { UsageError } from './errors.js';
import { parseSizeMib } from './size.js';
import { table } from './table.js';
import { VM_USAGE } from './usage.js';
import { parseDiskOption, parseNetOption } from './device-args.js';


function uptime(sec: number | null): string {
  if (sec === null) return '-';
  if (sec < 60) return `${sec.toFixed(0)}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m${Math.floor(sec % 60)}s`;
  return `${Math.floor(sec / 3600)}h${Math.floor((sec % 3600) / 60)}m`;
}

function describeExit(v: VmInfo): string {
  if (!v.exit) return '';
  const e = v.exit;
  if (e.reason === 'guest-exit') return `exit status ${e.status}`;
  if (e.reason === 'fault') return `crashed at rip ${e.rip ?? '?'}: ${e.detail ?? ''}`;
  return e.detail ?? e.reason;
}

export function vmTable(vms: readonly VmInfo[]): string {
  return table(['NAME', 'STATE', 'VCPUS', 'MEMORY', 'UPTIME', 'IMAGE', 'LAST EXIT'], vms.map((v) => [
    v.name, v.state, String(v.config.vcpus ?? 1), `${v.memMib}M`, uptime(v.uptimeSec),
    v.config.guest !== undefined ? `guest:${v.config.guest}` : v.config.kernel ?? '', describeExit(v),
  ]));
}

function vmDetails(v: VmInfo): string {
  const rows: Array<[string, string]> = [
    ['name', v.name], ['state', v.state], ['image', v.config.guest !== undefined ? `guest-kit ${v.config.guest}` : v.config.kernel ?? ''],
    ['cmdline', v.config.cmdline ?? ''], ['memory', `${v.memMib} MiB`], ['vcpus', v.vcpus.length > 0 ? v.vcpus.map((c) => `${c.id} (tid ${c.tid ?? '-'}, ${c.exits} exits)`).join(', ') : String(v.config.vcpus ?? 1)],
    ['created', v.createdAt], ['started', v.startedAt ?? '-'], ['uptime', uptime(v.uptimeSec)],
    ['last exit', describeExit(v) || '-'], ['console', `${v.console.bytesOut} bytes out, ${v.console.bytesIn} bytes in`],
  ];
  return rows.map(([k, val]) => `${k.padEnd(10)} ${val}`).join('\n') + '\n';
}

export async function vmCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest, strict: true, allowPositionals: true,
    options: {
      'state-dir': { type: 'string' }, json: { type: 'boolean' }, force: { type: 'boolean' },
      guest: { type: 'string' }, kernel: { type: 'string' }, initrd: { type: 'string' }, mem: { type: 'string' },
      vcpus: { type: 'string' }, cmdline: { type: 'string' }, entry: { type: 'string' }, start: { type: 'boolean' },
      'restart-on-lost': { type: 'boolean' }, disk: { type: 'string', multiple: true }, net: { type: 'string', multiple: true },
      vconsole: { type: 'boolean' }, rng: { type: 'boolean' },
    },
  });
  const api = new ApiClient(stateDirFrom(values['state-dir']));
  const name = positionals[0];
  const needName = (): string => {
    if (name === undefined || positionals.length !== 1) throw new UsageError(`give exactly one VM name\n${VM_USAGE}`);
    return name;
  };
  const print = (v: VmInfo): void => { process.stdout.write(values.json ? `${JSON.stringify(v, null, 2)}\n` : vmDetails(v)); };
  switch (sub) {
    case 'create': {
      const body: Record<string, unknown> = { name: needName(), memMib: parseSizeMib(values.mem ?? '64M', '--mem') };
      if (values.guest !== undefined) body['guest'] = values.guest;
      if (values.kernel !== undefined) body['kernel'] = values.kernel;
      if (values.initrd !== undefined) body['initrd'] = values.initrd;
      if (values.cmdline !== undefined) body['cmdline'] = values.cmdline;
      if (values.entry !== undefined) body['entry'] = values.entry;
      if (values.vcpus !== undefined) {
        if (!/^\d+$/.test(values.vcpus)) throw new UsageError(`--vcpus "${values.vcpus}" is not a whole number`);
        body['vcpus'] = Number(values.vcpus);
      }
      if (values.disk) body['disks'] = values.disk.map(parseDiskOption);
      if (values.net) body['nets'] = values.net.map(parseNetOption);
      if (values.vconsole) body['vconsole'] = true;
      if (values.rng) body['rng'] = true;
      if (values.start) body['autostart'] = true;
      if (values['restart-on-lost']) body['restartPolicy'] = 'on-lost';
      print(await api.json<VmInfo>('POST', '/v1/vms', body));
      return 0;
    }
    case 'start': case 'pause': case 'resume': case 'stop':
      print(await api.json<VmInfo>('POST', `/v1/vms/${encodeURIComponent(needName())}/${sub}`));
      return 0;
    case 'rm':
      await api.json('DELETE', `/v1/vms/${encodeURIComponent(needName())}${values.force ? '?force=true' : ''}`);
      return 0;
    case 'ls': {
      const { vms } = await api.json<{ vms: VmInfo[] }>('GET', '/v1/vms');
      process.stdout.write(values.json ? `${JSON.stringify(vms, null, 2)}\n` : vmTable(vms));
      return 0;
    }
    case 'show':
      print(await api.json<VmInfo>('GET', `/v1/vms/${encodeURIComponent(needName())}`));
      return 0;
    default:
      throw new UsageError(`unknown vm command "${sub ?? ''}"\n${VM_USAGE}`);
  }
}
