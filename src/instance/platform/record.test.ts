// The platform record's codec: round trips (fake machine, this machine), tolerance of older and
// newer writers (missing and unknown sections and fields), and rejection of a wrong kind.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StateKind, decodeEnvelope, encodeEnvelope } from '../../state/index.js';
import { buildFakeSysfs } from './fake-sysfs.js';
import { probePlatform } from './probe.js';
import { PLATFORM_SECTIONS, decodePlatformRecord, encodePlatformRecord, platformRecordFromTree, platformRecordToTree } from './record.js';

function fakeRecord() {
  const fake = buildFakeSysfs();
  try {
    return probePlatform({ sysfsRoot: fake.root, kvmDevice: '/nonexistent/kvm' });
  } finally {
    fake.cleanup();
  }
}

describe('platform record codec', () => {
  it('round-trips a fake machine', () => {
    const r = fakeRecord();
    assert.deepStrictEqual(decodePlatformRecord(encodePlatformRecord(r)), r);
  });

  it('round-trips this machine with one section per source', () => {
    const r = probePlatform();
    const bytes = encodePlatformRecord(r);
    assert.deepStrictEqual(decodePlatformRecord(bytes), r);
    const { content } = decodeEnvelope(bytes, { expectKind: StateKind.PlatformRecord });
    assert.deepEqual(Object.keys(content.sections).sort(), ['platform/acpi', 'platform/cpus', 'platform/dmi', 'platform/host', 'platform/kvm', 'platform/memmap', 'platform/numa']);
    for (const s of Object.values(content.sections)) assert.equal(s.v, 1);
  });

  it('reads a record from a newer writer: unknown sections and fields are skipped', () => {
    const r = fakeRecord();
    const tree = platformRecordToTree(r);
    const cpus = tree.sections[PLATFORM_SECTIONS.cpus.id];
    const newer = {
      sections: {
        ...tree.sections,
        [PLATFORM_SECTIONS.cpus.id]: { v: 2, f: { ...cpus.f, smtActive: true, caches: [{ level: 3, sizeKib: 32768 }] } },
        'platform/pci': { v: 1, f: { devices: [] } },
      },
    };
    assert.deepStrictEqual(platformRecordFromTree(newer), r);
  });

  it('reads a record from an older writer: missing sections are absent, missing fields take defaults', () => {
    const r = fakeRecord();
    const tree = platformRecordToTree(r);
    const { [PLATFORM_SECTIONS.numa.id]: _numa, [PLATFORM_SECTIONS.dmi.id]: _dmi, ...rest } = tree.sections;
    const host = rest[PLATFORM_SECTIONS.host.id];
    const { bootId: _bootId, ...olderHost } = host.f;
    const decoded = platformRecordFromTree({ sections: { ...rest, [PLATFORM_SECTIONS.host.id]: { v: 1, f: olderHost } } });
    assert.equal(decoded.numa.present, false);
    assert.match(decoded.numa.present ? '' : decoded.numa.reason, /platform\/numa is missing/);
    assert.equal(decoded.dmi.table.present, false);
    assert.equal(decoded.host.bootId.present, false);
    assert.deepStrictEqual(decoded.cpus, r.cpus);
  });

  it('rejects other kinds of state and corrupt fields', () => {
    const tree = platformRecordToTree(fakeRecord());
    assert.throws(() => decodePlatformRecord(encodeEnvelope(StateKind.VmState, tree)), { code: 'ERR_STATE_KIND' });
    const memmap = { v: 1, f: { present: true, entries: [{ index: 0, start: 'zero', end: '0x1', type: 'x' }] } };
    assert.throws(() => decodePlatformRecord(encodeEnvelope(StateKind.PlatformRecord, { sections: { ...tree.sections, 'platform/memmap': memmap } })), { code: 'ERR_STATE_CONTENT' });
  });
});
