// The --disk and --net option parsers: the forms the usage text shows, and one clear error for
// everything else (property-tested with random text).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseDiskOption, parseNetOption } from './device-args.js';
import { UsageError } from './errors.js';

test('--disk and --net take key=value lists', () => {
  assert.deepEqual(parseDiskOption('id=vda,path=/img,ro,serial=abc'), { id: 'vda', path: '/img', readOnly: true, serial: 'abc' });
  assert.deepEqual(parseDiskOption('path=/img,id=vdb'), { id: 'vdb', path: '/img' });
  assert.deepEqual(parseNetOption('id=eth0,tap=tap0,netns=ns1,mac=02:00:00:00:00:01'), { id: 'eth0', tap: 'tap0', netns: 'ns1', mac: '02:00:00:00:00:01' });
  for (const bad of ['path=/img', 'id=vda', 'id=vda,path=/img,size=3', 'id=vda,path=/img,id=x', 'id=,path=/x', 'ro']) {
    assert.throws(() => parseDiskOption(bad), (e: unknown) => e instanceof UsageError && e.message.startsWith('--disk'), bad);
  }
  assert.throws(() => parseNetOption('id=eth0'), /--net "id=eth0" needs tap=/);
});

test('property: any text either parses or is refused with a UsageError naming the option', () => {
  fc.assert(fc.property(fc.string({ maxLength: 60 }), (text) => {
    for (const [parse, opt] of [[parseDiskOption, '--disk'], [parseNetOption, '--net']] as const) {
      try {
        parse(text);
      } catch (e) {
        assert.ok(e instanceof UsageError && e.message.startsWith(opt), String(e));
      }
    }
  }), { numRuns: 2000 });
});
