// The platform record as the daemon serves it: loaded (or captured on the first start on this
// machine), restricted to the instance's partition, and pre-rendered for the API and the CLI.

import { treeToJson } from '../state/tree.js';
import type { PlatformSummary } from './api/validate.js';
import { platformRecordToTree } from './platform/record.js';
import { platformSummary, renderPlatformText } from './platform/render.js';
import { sliceForPartition } from './platform/slice.js';
import { loadOrCaptureRecord } from './platform/store.js';

export interface PlatformView {
  captured: boolean;
  summary: PlatformSummary;
  /** The record's sections as JSON (schema PlatformRecord); byte blobs are { $b64 } objects. */
  json: unknown;
  text: string;
}

export function loadPlatform(stateDir: string, partition: { cpus: readonly number[]; memBudgetMib: number }): PlatformView {
  const { record, captured } = loadOrCaptureRecord(stateDir, {});
  const slice = sliceForPartition(record, { cpus: [...partition.cpus], memBudgetMib: partition.memBudgetMib });
  const s = platformSummary(slice);
  return {
    captured,
    summary: {
      cpuModel: s.cpuModel ?? 'unknown', cpuCount: s.cpuCount, numaNodes: s.numaNodeCount,
      kvmFlavor: s.kvmFlavor, kvmApiVersion: s.kvmApiVersion ?? 0, capturedAt: s.capturedAt,
    },
    json: treeToJson(platformRecordToTree(slice)),
    text: renderPlatformText(slice),
  };
}
