// Decoding of struct kvm_run exits that end a guest: triple faults, emulation failures and the like,
// into a VcpuFault that names the reason and the guest RIP. Reference: api.rst, "kvm_run".

import * as abi from '../sys/kvm-abi.js';

export type VcpuFaultKind =
  | 'triple-fault'
  | 'emulation-failure'
  | 'internal-error'
  | 'entry-failure'
  | 'guest-crash'
  | 'unexpected-exit'
  | 'run-error';

export interface VcpuFault {
  kind: VcpuFaultKind;
  vcpu: number;
  rip: bigint | undefined;
  detail: string;
}

// Layout of the exit union at KVM_RUN_EXIT_DATA (offset 32):
//   internal:     0 u32 suberror | 4 u32 ndata | 8 u64 data[16]
//   fail_entry:   0 u64 hardware_entry_failure_reason | 8 u32 cpu
//   system_event: 0 u32 type | 4 u32 ndata | 8 u64 data[16]
const INTERNAL_SUBERRORS: Record<number, string> = {
  [abi.KVM_INTERNAL_ERROR_EMULATION]: 'instruction emulation failed',
  [abi.KVM_INTERNAL_ERROR_SIMUL_EX]: 'exception while delivering an exception',
  [abi.KVM_INTERNAL_ERROR_DELIVERY_EV]: 'event delivery failed',
};

export function describeFatalExit(run: DataView, vcpu: number, rip: bigint | undefined): VcpuFault {
  const reason = run.getUint32(abi.KVM_RUN_EXIT_REASON, true);
  const data = abi.KVM_RUN_EXIT_DATA;
  switch (reason) {
    case abi.KVM_EXIT_SHUTDOWN:
      return { kind: 'triple-fault', vcpu, rip, detail: 'the guest triple-faulted (KVM_EXIT_SHUTDOWN)' };
    case abi.KVM_EXIT_INTERNAL_ERROR: {
      const sub = run.getUint32(data, true);
      const kind = sub === abi.KVM_INTERNAL_ERROR_EMULATION ? 'emulation-failure' : 'internal-error';
      return { kind, vcpu, rip, detail: `KVM internal error ${sub}: ${INTERNAL_SUBERRORS[sub] ?? 'unknown suberror'}` };
    }
    case abi.KVM_EXIT_FAIL_ENTRY:
      return { kind: 'entry-failure', vcpu, rip, detail: `VM entry failed, hardware reason 0x${run.getBigUint64(data, true).toString(16)}` };
    case abi.KVM_EXIT_SYSTEM_EVENT:
      return { kind: 'guest-crash', vcpu, rip, detail: `guest system event ${run.getUint32(data, true)}` };
    default:
      return { kind: 'unexpected-exit', vcpu, rip, detail: `unexpected KVM exit reason ${reason}` };
  }
}
