// Fault injection for the swap's tests: SWAPVISOR_FAULT names points (comma-separated) at which
// an instance misbehaves on purpose. Unset in production, where every check is a no-op.

export type FaultPoint =
  | 'b-exit-before-ready' | 'b-unhealthy' | 'b-crash-after-shell' | 'b-crash-on-state' | 'b-hang-on-state'
  | 'b-reject-state' | 'corrupt-state' | 'truncate-state' | 'a-crash-after-first-vm' | 'a-crash-before-retire';

export function faultArmed(point: FaultPoint): boolean {
  const spec = process.env['SWAPVISOR_FAULT'];
  return spec !== undefined && spec.split(',').map((s) => s.trim()).includes(point);
}

/** Dies at once, as a SIGKILL would: no clean-up, no exit handlers. */
export function crashNow(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}
