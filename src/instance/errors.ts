// Errors the instance raises about VMs, each with a stable code that the API maps to a status.

export class InstanceError extends Error {
  constructor(readonly code: 'ERR_NOT_FOUND' | 'ERR_VM_EXISTS' | 'ERR_VM_STATE' | 'ERR_VALIDATION', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
