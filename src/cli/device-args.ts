// Parses the device options of `swapvisor vm create` into the API's DiskConfig and NetConfig:
//   --disk id=vda,path=/img[,ro][,serial=TEXT]     --net id=eth0,tap=NAME[,netns=NS][,mac=02:..]
// Only the shape is checked here; the daemon validates the values against the API schema.

import type { DiskConfig, NetConfig } from '../instance/api/validate.js';
import { UsageError } from './errors.js';

function fields(option: string, text: string, allowed: readonly string[], flags: readonly string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (eq < 0 && flags.includes(key)) { out.set(key, ''); continue; }
    if (eq < 0 || !allowed.includes(key)) {
      throw new UsageError(`${option} "${text}": "${part}" is not one of ${[...allowed.map((k) => `${k}=…`), ...flags].join(', ')}`);
    }
    if (out.has(key)) throw new UsageError(`${option} "${text}" gives ${key} twice`);
    out.set(key, part.slice(eq + 1));
  }
  return out;
}

function need(option: string, text: string, f: Map<string, string>, key: string): string {
  const v = f.get(key);
  if (v === undefined || v === '') throw new UsageError(`${option} "${text}" needs ${key}=…`);
  return v;
}

export function parseDiskOption(text: string): DiskConfig {
  const f = fields('--disk', text, ['id', 'path', 'serial'], ['ro']);
  const disk: DiskConfig = { id: need('--disk', text, f, 'id'), path: need('--disk', text, f, 'path') };
  if (f.has('ro')) disk.readOnly = true;
  if (f.has('serial')) disk.serial = f.get('serial')!;
  return disk;
}

export function parseNetOption(text: string): NetConfig {
  const f = fields('--net', text, ['id', 'tap', 'netns', 'mac']);
  const net: NetConfig = { id: need('--net', text, f, 'id'), tap: need('--net', text, f, 'tap') };
  if (f.has('netns')) net.netns = f.get('netns')!;
  if (f.has('mac')) net.mac = f.get('mac')!;
  return net;
}
