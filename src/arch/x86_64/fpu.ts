// The FPU/SSE state a vCPU starts with: FCW 0x37f and MXCSR 0x1f80, the values after FNINIT
// and reset. Layout of struct kvm_fpu (416 bytes):
//   0 u8 fpr[8][16] | 128 u16 fcw | 130 u16 fsw | 132 u8 ftwx | 133 pad | 134 u16 last_opcode
//   136 u64 last_ip | 144 u64 last_dp | 152 u8 xmm[16][16] | 408 u32 mxcsr | 412 u32 pad

export const KVM_FPU_FCW = 128;
export const KVM_FPU_MXCSR = 408;

export function bootFpu(): Uint8Array {
  const b = new Uint8Array(416);
  const v = new DataView(b.buffer);
  v.setUint16(KVM_FPU_FCW, 0x37f, true);
  v.setUint32(KVM_FPU_MXCSR, 0x1f80, true);
  return b;
}
