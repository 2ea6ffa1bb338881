// Reads of a device's config space (virtio 1.2 §2.5) from a byte image of it: any width, any
// offset; bytes past the end read as zero. Shared by every device's readConfig.

export function readConfigSpace(config: Uint8Array, offset: number, data: Uint8Array): void {
  for (let i = 0; i < data.byteLength; i++) data[i] = offset + i < config.byteLength ? config[offset + i]! : 0;
}

