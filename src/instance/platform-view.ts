// The platform record as the daemon serves it: loaded (or captured on the first start on this
// machine), restricted to the instance's partition, and pre-rendered for the API and the CLI.

import { treeToJson } from '../state/tree.js';
import type { PlatformSummary } from './api/validate.js';
import { type PlatformRecord, decodePlatformRecord, encodePlatformRecord, platformRecordToTree } from './platform/record.js';
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
  return viewOf(record, captured, partition);
}

/** The record restricted to `cpus`, encoded: what A hands B in a swap. */
export function encodedSliceFor(stateDir: string, partition: { cpus: readonly number[]; memBudgetMib: number }): Uint8Array {
  const { record } = loadOrCaptureRecord(stateDir, {});
  return encodePlatformRecord(sliceForPartition(record, { cpus: [...partition.cpus], memBudgetMib: partition.memBudgetMib }));
}

/** The view of a record received from the previous instance (B does not probe again). */
export function platformFromBytes(bytes: Uint8Array, partition: { cpus: readonly number[]; memBudgetMib: number }): PlatformView {
  return viewOf(decodePlatformRecord(bytes), false, partition);
}

function viewOf(record: PlatformRecord, captured: boolean, partition: { cpus: readonly number[]; memBudgetMib: number }): PlatformView {
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
