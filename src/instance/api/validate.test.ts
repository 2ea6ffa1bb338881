import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ApiError, type ErrorBody } from './errors.js';
import { apiSpec } from './spec.js';
import {
  type DiskConfig, type NetConfig, ENTRY_MODES, GUEST_NAMES, RESTART_POLICIES, VM_EXIT_REASONS, VM_STATES, ResponseSchemaError, parseForce, parseTailBytes,
  responseValidator, validateActionBody, validateVmConfig, validateVmName,
  type ConsoleCounters, type Instance, type Partition, type PlatformRecord, type PlatformSummary, type VcpuInfo, type VmConfig,
  type VmExitInfo, type VmInfo, type VmList,
} from './validate.js';

const RUNS = { numRuns: 2000 };

// ---- The hand-written types against the schema. ----

type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
/** Every key of T, each marked as the type has it: the compiler rejects a missing, extra or mis-marked key. */
type Shape<T> = { [K in keyof T]-?: K extends RequiredKeys<T> ? 'required' : 'optional' };

const SHAPES = {
  VmConfig: {
    name: 'required', guest: 'optional', kernel: 'optional', initrd: 'optional', cmdline: 'optional', memMib: 'required',
    vcpus: 'optional', entry: 'optional', autostart: 'optional', restartPolicy: 'optional', disks: 'optional', nets: 'optional',
    vconsole: 'optional', rng: 'optional',
  } satisfies Shape<VmConfig>,
  DiskConfig: { id: 'required', path: 'required', readOnly: 'optional', serial: 'optional' } satisfies Shape<DiskConfig>,
  NetConfig: { id: 'required', tap: 'required', netns: 'optional', mac: 'optional' } satisfies Shape<NetConfig>,
  VmInfo: {
    name: 'required', state: 'required', config: 'required', memMib: 'required', vcpus: 'required', createdAt: 'required',
    startedAt: 'required', uptimeSec: 'required', exit: 'required', console: 'required',
  } satisfies Shape<VmInfo>,
  VmExit: { reason: 'required', status: 'required', detail: 'required', rip: 'required' } satisfies Shape<VmExitInfo>,
  VcpuInfo: { id: 'required', tid: 'required', exits: 'required' } satisfies Shape<VcpuInfo>,
  ConsoleCounters: { bytesOut: 'required', bytesIn: 'required' } satisfies Shape<ConsoleCounters>,
  VmList: { vms: 'required' } satisfies Shape<VmList>,
  Partition: { cpus: 'required', memBudgetMib: 'required', memUsedMib: 'required', cgroup: 'required' } satisfies Shape<Partition>,
  PlatformSummary: {
    cpuModel: 'required', cpuCount: 'required', numaNodes: 'required', kvmFlavor: 'required', kvmApiVersion: 'required', capturedAt: 'required',
  } satisfies Shape<PlatformSummary>,
  PlatformRecord: { sections: 'required' } satisfies Shape<PlatformRecord>,
  Instance: {
    version: 'required', pid: 'required', startedAt: 'required', uptimeSec: 'required', stateDir: 'required', partition: 'required', platform: 'required',
  } satisfies Shape<Instance>,
  Error: { error: 'required' } satisfies Shape<ErrorBody>,
};

test('the hand-written types have exactly the schema\'s properties, required where the schema requires them', () => {
  for (const [name, shape] of Object.entries(SHAPES)) {
    const schema = apiSpec().components.schemas[name] as { properties: object; required?: string[] };
    assert.deepEqual(Object.keys(shape).sort(), Object.keys(schema.properties).sort(), `${name}: properties`);
    const required = Object.entries(shape).filter(([, v]) => v === 'required').map(([k]) => k).sort();
    assert.deepEqual(required, (schema.required ?? []).slice().sort(), `${name}: required`);
  }
});

test('the enums in the types are the enums in the schema', () => {
  const s = apiSpec().components.schemas;
  const props = (name: string) => s[name]?.properties as Record<string, { enum?: string[] }>;
  assert.deepEqual(props('VmConfig').guest?.enum, [...GUEST_NAMES]);
  assert.deepEqual(props('VmConfig').entry?.enum, [...ENTRY_MODES]);
  assert.deepEqual(props('VmConfig').restartPolicy?.enum, [...RESTART_POLICIES]);
  assert.deepEqual(s.VmState?.enum, [...VM_STATES]);
  assert.deepEqual(props('VmExit').reason?.enum, [...VM_EXIT_REASONS]);
});

// ---- Generators. ----

const vmName = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,62}$/);
const absPath = fc.stringMatching(/^\/[ -~]{0,200}$/);
const validConfig: fc.Arbitrary<VmConfig> = fc.tuple(
  fc.oneof(fc.record({ guest: fc.constantFrom(...GUEST_NAMES) }), fc.record({ kernel: absPath, initrd: absPath }, { requiredKeys: ['kernel'] })),
  fc.record({
    name: vmName,
    cmdline: fc.string({ maxLength: 2048 }),
    memMib: fc.integer({ min: 2, max: 65536 }),
    vcpus: fc.integer({ min: 1, max: 32 }),
    entry: fc.constantFrom(...ENTRY_MODES),
    autostart: fc.boolean(),
    restartPolicy: fc.constantFrom(...RESTART_POLICIES),
  }, { requiredKeys: ['name', 'memMib'] }),
).map(([source, rest]) => ({ ...rest, ...source }) as VmConfig);

const KNOWN = Object.keys(SHAPES.VmConfig);

/** Runs validateVmConfig and returns the message of the ApiError it must throw; anything else fails the test. */
function rejection(body: unknown): string {
  try {
    validateVmConfig(body);
  } catch (e) {
    assert.ok(e instanceof ApiError, `threw ${String(e)}, not an ApiError`);
    assert.equal(e.status, 400);
    assert.equal(e.code, 'ERR_VALIDATION');
    assert.ok(e.message.length > 0 && !/[\r\n]/.test(e.message), `not a single line: ${JSON.stringify(e.message)}`);
    return e.message;
  }
  assert.fail(`accepted ${JSON.stringify(body)}`);
}

// ---- Requests. ----

test('valid configs are accepted, defaults are filled in, the input is not changed', () => {
  assert.deepEqual(validateVmConfig({ name: 'hb0', guest: 'heartbeat', memMib: 16 }), {
    name: 'hb0', guest: 'heartbeat', memMib: 16, vcpus: 1, autostart: false, restartPolicy: 'never',
  });
  const full = { name: 'web-1', kernel: '/k/vmlinux', initrd: '/k/initrd', cmdline: 'console=ttyS0', memMib: 512, vcpus: 4, entry: 'pvh', autostart: true, restartPolicy: 'on-lost' };
  assert.deepEqual(validateVmConfig(full), full);
  fc.assert(fc.property(validConfig, (config) => {
    const before = structuredClone(config);
    const out = validateVmConfig(config);
    assert.deepEqual(config, before);
    assert.deepEqual(out, { vcpus: 1, autostart: false, restartPolicy: 'never', ...config });
    responseValidator('VmConfig')(out);
  }), RUNS);
});

test('random JSON values are rejected with a one-line 400, never with anything else', () => {
  fc.assert(fc.property(fc.jsonValue(), (value) => { rejection(value); }), RUNS);
  fc.assert(fc.property(fc.dictionary(fc.constantFrom(...KNOWN, 'x'), fc.jsonValue()), (value) => { rejection(value); }), RUNS);
});

test('an unknown field is named in the message', () => {
  assert.equal(rejection({ name: 'a', guest: 'timer', memMib: 4, turbo: true }).split(':')[0], 'unknown field "turbo"');
  const extraKey = fc.string({ minLength: 1 }).filter((k) => !KNOWN.includes(k));
  fc.assert(fc.property(validConfig, extraKey, fc.jsonValue(), (config, key, value) => {
    const message = rejection(Object.fromEntries([...Object.entries(config), [key, value]]));
    assert.ok(message.startsWith('unknown field "'), message);
    assert.ok(message.includes(JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}...` : key)), message);
  }), RUNS);
});

test('a field of the wrong type is named in the message', () => {
  const types: Record<string, (v: unknown) => boolean> = {
    name: (v) => typeof v === 'string', guest: (v) => typeof v === 'string', kernel: (v) => typeof v === 'string', initrd: (v) => typeof v === 'string',
    cmdline: (v) => typeof v === 'string', entry: (v) => typeof v === 'string', restartPolicy: (v) => typeof v === 'string',
    memMib: (v) => Number.isInteger(v), vcpus: (v) => Number.isInteger(v), autostart: (v) => typeof v === 'boolean',
    vconsole: (v) => typeof v === 'boolean', rng: (v) => typeof v === 'boolean',
    // An array is the right type; an array's bad items get their own messages.
    disks: (v) => Array.isArray(v), nets: (v) => Array.isArray(v),
  };
  const wrong = fc.constantFrom(...KNOWN).chain((field) => fc.tuple(fc.constant(field), fc.jsonValue().filter((v) => !types[field]!(v))));
  fc.assert(fc.property(validConfig, wrong, (config, [field, value]) => {
    const message = rejection({ ...config, [field]: value });
    assert.ok(message.startsWith(`${field} must be `), message);
  }), RUNS);
});

test('numbers out of range are rejected, naming the field and the range', () => {
  assert.equal(rejection({ name: 'a', guest: 'timer', memMib: 3.5 }), 'memMib must be an integer from 2 to 65536 (got 3.5)');
  const outOfRange = fc.oneof(
    fc.tuple(fc.constant('memMib'), fc.oneof(fc.integer({ max: 1 }), fc.integer({ min: 65537 }), fc.double({ noNaN: true }).filter((d) => !Number.isInteger(d)))),
    fc.tuple(fc.constant('vcpus'), fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 33 }), fc.double({ min: 1.01, max: 31.99, noNaN: true }))),
  );
  fc.assert(fc.property(validConfig, outOfRange, (config, [field, value]) => {
    const message = rejection({ ...config, [field]: value });
    const range = field === 'memMib' ? 'from 2 to 65536' : 'from 1 to 32';
    assert.ok(message.startsWith(`${field} must be an integer ${range} (got `), message);
  }), RUNS);
});

test('oversized strings are rejected, naming the field', () => {
  const oversized = fc.oneof(
    fc.tuple(fc.constant('cmdline'), fc.string({ minLength: 2049, maxLength: 3000 })),
    fc.tuple(fc.constant('kernel'), fc.string({ minLength: 4096, maxLength: 5000 }).map((s) => `/${s}`)),
    fc.tuple(fc.constant('initrd'), fc.string({ minLength: 4096, maxLength: 5000 }).map((s) => `/${s}`)),
    fc.tuple(fc.constant('name'), fc.stringMatching(/^[a-z]{64,100}$/)),
  );
  fc.assert(fc.property(validConfig, oversized, (config, [field, value]) => {
    const body: Record<string, unknown> = { ...config, [field]: value };
    if (field === 'initrd') { delete body.guest; body.kernel = '/vmlinux'; }
    const message = rejection(body);
    assert.ok(message.startsWith(`${field} must be `), message);
  }), RUNS);
});

test('exactly one of guest and kernel', () => {
  assert.match(rejection({ name: 'a', guest: 'smp', kernel: '/vmlinux', memMib: 8 }), /^give either guest .* or kernel .*, not both$/);
  assert.match(rejection({ name: 'a', memMib: 8 }), /^give one of guest \(one of heartbeat, memcheck, timer, smp, blkcheck, netecho, vconecho, rngcheck\) or kernel/);
  fc.assert(fc.property(validConfig, fc.constantFrom(...GUEST_NAMES), absPath, fc.boolean(), (config, guest, kernel, both) => {
    const body: Record<string, unknown> = { ...config, guest, kernel };
    if (!both) { delete body.guest; delete body.kernel; delete body.initrd; }
    assert.match(rejection(body), both ? /not both$/ : /^give one of guest/);
  }), RUNS);
});

test('other fields: name, enums, missing required fields', () => {
  assert.match(rejection({ name: 'Web', guest: 'timer', memMib: 4 }), /^name must be 1 to 63 characters .* \(got "Web"\)$/);
  assert.equal(rejection({ name: 'a', guest: 'nope', memMib: 4 }), 'guest must be one of heartbeat, memcheck, timer, smp, blkcheck, netecho, vconecho, rngcheck (got "nope")');
  assert.equal(rejection({ name: 'a', kernel: 'vmlinux', memMib: 4 }).split(' (got')[0], 'kernel must be an absolute path on the daemon\'s host (starting with /) of at most 4096 characters');
  assert.equal(rejection({ name: 'a', guest: 'timer' }), 'memMib is required: it must be an integer from 2 to 65536');
  assert.equal(rejection([]), 'the request body must be a JSON object with the VmConfig fields (got an array)');
  assert.equal(rejection({ name: 'a', guest: 'timer', memMib: 4, cmdline: 'x'.repeat(3000) }), 'cmdline must be a string of at most 2048 characters (got 3000 characters)');
});

test('names in paths, action bodies and query parameters', () => {
  assert.equal(validateVmName('hb0'), 'hb0');
  for (const bad of ['', 'A', '-a', 'a/b', 'a'.repeat(64)]) assert.throws(() => validateVmName(bad), (e: unknown) => e instanceof ApiError && e.status === 400);
  validateActionBody(undefined);
  validateActionBody({});
  fc.assert(fc.property(fc.jsonValue().filter((v) => !(v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)), (v) => {
    assert.throws(() => validateActionBody(v), (e: unknown) => e instanceof ApiError && e.code === 'ERR_VALIDATION' && !/\n/.test(e.message));
  }), RUNS);
  assert.equal(parseForce(null), false);
  assert.equal(parseForce('false'), false);
  assert.equal(parseForce('true'), true);
  assert.throws(() => parseForce('yes'), ApiError);
  assert.equal(parseTailBytes(null), 65536);
  assert.equal(parseTailBytes('1'), 1);
  assert.equal(parseTailBytes('1048576'), 1048576);
  fc.assert(fc.property(fc.string(), (s) => {
    try {
      const n = parseTailBytes(s);
      assert.ok(Number.isInteger(n) && n >= 1 && n <= 1048576 && String(n) === s.replace(/^0+(?=.)/, ''));
    } catch (e) {
      assert.ok(e instanceof ApiError && e.status === 400, String(e));
    }
  }), RUNS);
});

// ---- Responses. ----

const timestamp = fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01') }).map((d) => d.toISOString());
const vmInfo: fc.Arbitrary<VmInfo> = fc.record({
  name: vmName,
  state: fc.constantFrom(...VM_STATES),
  config: validConfig,
  memMib: fc.integer({ min: 2, max: 65536 }),
  vcpus: fc.array(fc.record({ id: fc.nat(31), tid: fc.option(fc.integer({ min: 1, max: 4194304 })), exits: fc.nat() }), { maxLength: 4 }),
  createdAt: timestamp,
  startedAt: fc.option(timestamp),
  uptimeSec: fc.option(fc.double({ min: 0, max: 1e9, noNaN: true })),
  exit: fc.option(fc.record({
    reason: fc.constantFrom(...VM_EXIT_REASONS),
    status: fc.option(fc.integer()),
    detail: fc.option(fc.string()),
    rip: fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((n) => `0x${n.toString(16)}`)),
  })),
  console: fc.record({ bytesOut: fc.nat(), bytesIn: fc.nat() }),
});

test('responseValidator accepts well-formed responses and does not change them', () => {
  const check = responseValidator('VmInfo');
  fc.assert(fc.property(vmInfo, (info) => {
    const before = structuredClone(info);
    assert.equal(check(info), info);
    assert.deepEqual(info, before, 'no defaults filled into a response');
  }), RUNS);
  responseValidator('VmList')({ vms: [] });
  responseValidator('Error')({ error: { code: 'ERR_NOT_FOUND', message: 'no VM named "x"' } });
  responseValidator('PlatformRecord')({ sections: { cpu: { model: 'x', flags: ['sse'] } } });
});

test('responseValidator rejects malformed responses with every problem listed', () => {
  const check = responseValidator('VmInfo');
  fc.assert(fc.property(vmInfo, fc.constantFrom('state', 'createdAt', 'console', 'exit', 'extra'), (info, field) => {
    const broken: Record<string, unknown> = { ...info };
    if (field === 'extra') broken.extra = 1;
    else if (field === 'state') broken.state = 'exploded';
    else if (field === 'createdAt') broken.createdAt = 'yesterday';
    else if (field === 'console') delete broken.console;
    else broken.exit = { reason: 'fault' };
    assert.throws(() => check(broken), (e: unknown) => e instanceof ResponseSchemaError && e.schemaName === 'VmInfo' && e.problems.length > 0);
  }), RUNS);
  assert.throws(() => responseValidator('Error')({ error: { code: 'ERR_NOPE', message: 'x' } }), ResponseSchemaError);
});
