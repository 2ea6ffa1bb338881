// Request validation and response checking for the daemon's HTTP API, compiled with ajv from the component
// schemas in api/openapi.yaml (the single source of truth), plus the TypeScript types those schemas describe.
// Not the server: routing, body reading and the handlers live elsewhere in instance/api/.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { ApiError, type ErrorBody } from './errors.js';
import { apiSpec, resolveRef, type JsonSchema, type OpenApiDocument } from './spec.js';

// ---- Types. Hand-written to match components.schemas; validate.test.ts fails if they drift. ----

export const GUEST_NAMES = ['heartbeat', 'memcheck', 'timer', 'smp', 'blkcheck', 'netecho', 'vconecho', 'rngcheck'] as const;
export type GuestName = (typeof GUEST_NAMES)[number];
export const ENTRY_MODES = ['auto', 'long-mode', 'pvh'] as const;
export type EntryMode = (typeof ENTRY_MODES)[number];
export const RESTART_POLICIES = ['never', 'on-lost'] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];
export const VM_STATES = ['created', 'starting', 'running', 'paused', 'stopped', 'crashed', 'lost'] as const;
export type VmState = (typeof VM_STATES)[number];
export const VM_EXIT_REASONS = ['guest-exit', 'fault', 'reset', 'stopped', 'lost'] as const;
export type VmExitReason = (typeof VM_EXIT_REASONS)[number];

/** API input: what to run. Exactly one of `guest` or `kernel`. Schema `VmConfig`. */
export interface VmConfig {
  name: string;
  guest?: GuestName;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  memMib: number;
  vcpus?: number;
  entry?: EntryMode;
  autostart?: boolean;
  restartPolicy?: RestartPolicy;
  disks?: DiskConfig[];
  nets?: NetConfig[];
  vconsole?: boolean;
  rng?: boolean;
}

/** Schema `DiskConfig`: a virtio-blk disk. */
export interface DiskConfig {
  id: string;
  path: string;
  readOnly?: boolean;
  serial?: string;
}

/** Schema `NetConfig`: a virtio-net interface on a tap. */
export interface NetConfig {
  id: string;
  tap: string;
  netns?: string;
  mac?: string;
}

/** A VmConfig after validation: the fields with a default in the schema are filled in. */
export type VmConfigWithDefaults = VmConfig & Required<Pick<VmConfig, 'vcpus' | 'autostart' | 'restartPolicy'>>;

/** Schema `VcpuInfo`. */
export interface VcpuInfo {
  id: number;
  tid: number | null;
  exits: number;
}

/** Why a VM last stopped running. Schema `VmExit`. */
export interface VmExitInfo {
  reason: VmExitReason;
  status: number | null;
  detail: string | null;
  /** Hex, `0x...`. */
  rip: string | null;
}

/** Schema `ConsoleCounters`. */
export interface ConsoleCounters {
  bytesOut: number;
  bytesIn: number;
}

/** Schema `VmInfo`. */
export interface VmInfo {
  name: string;
  state: VmState;
  config: VmConfig;
  memMib: number;
  vcpus: VcpuInfo[];
  createdAt: string;
  startedAt: string | null;
  uptimeSec: number | null;
  exit: VmExitInfo | null;
  console: ConsoleCounters;
}

/** Schema `VmList`. */
export interface VmList {
  vms: VmInfo[];
}

/** Schema `Partition`. */
export interface Partition {
  cpus: number[];
  memBudgetMib: number;
  memUsedMib: number;
  cgroup: string | null;
}

/** Schema `PlatformSummary`. */
export interface PlatformSummary {
  cpuModel: string;
  cpuCount: number;
  numaNodes: number;
  kvmFlavor: string;
  kvmApiVersion: number;
  capturedAt: string;
}

/** Schema `PlatformRecord`: kept loose, sections grow fields over versions. */
export interface PlatformRecord {
  sections: Record<string, Record<string, unknown>>;
}

/** Schema `Instance`. */
export interface Instance {
  version: string;
  pid: number;
  startedAt: string;
  uptimeSec: number;
  stateDir: string;
  partition: Partition;
  platform: PlatformSummary;
}

/** Every schema a response can be checked against, by its name in components.schemas. */
export interface ResponseSchemas {
  Instance: Instance;
  PlatformSummary: PlatformSummary;
  PlatformRecord: PlatformRecord;
  Partition: Partition;
  VmList: VmList;
  VmInfo: VmInfo;
  VmConfig: VmConfig;
  VmExit: VmExitInfo;
  VcpuInfo: VcpuInfo;
  ConsoleCounters: ConsoleCounters;
  Error: ErrorBody;
}

/** Request bodies above this many bytes are answered with 413 ERR_BODY_TOO_LARGE. */
export const MAX_BODY_BYTES = 64 * 1024;

// ---- Compiling the spec. ----

const SCHEMAS_ID = 'https://swapvisor.invalid/api/openapi.yaml';
const OPENAPI_REF = '#/components/schemas/';

/**
 * components.schemas as one JSON Schema document with `$defs`, references rewritten to match.
 * The spec's own object is never touched: this is a deep copy.
 */
function schemasDocument(doc: OpenApiDocument): JsonSchema {
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (node === null || typeof node !== 'object') return node;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] = k === '$ref' && typeof v === 'string' && v.startsWith(OPENAPI_REF) ? `#/$defs/${v.slice(OPENAPI_REF.length)}` : rewrite(v);
    }
    return out;
  };
  return { $id: SCHEMAS_ID, $defs: rewrite(doc.components.schemas) };
}

interface Compiled {
  /** Fills defaults in the data it checks: use on a copy of a request body only. */
  request: Ajv2020;
  /** Never changes the data. */
  response: Ajv2020;
}

let compiled: Compiled | undefined;

function ajvFor(doc: OpenApiDocument, useDefaults: boolean): Ajv2020 {
  // allErrors: so the message can be chosen by priority rather than by ajv's traversal order.
  // verbose: errors carry the schema that failed, which is what the message describes.
  // strictRequired off: `oneOf: [{required: [guest]}, {required: [kernel]}]` names properties defined beside it.
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true, allErrors: true, verbose: true, useDefaults });
  addFormatsModule.default(ajv, ['date-time']);
  ajv.addVocabulary(['example', 'discriminator', 'xml', 'externalDocs']); // OpenAPI annotations: no assertions
  ajv.addSchema(schemasDocument(doc));
  return ajv;
}

function compiledSpec(): Compiled {
  if (!compiled) {
    const doc = apiSpec();
    compiled = { request: ajvFor(doc, true), response: ajvFor(doc, false) };
  }
  return compiled;
}

function validatorFor(ajv: Ajv2020, schemaName: string): ValidateFunction {
  const v = ajv.getSchema(`${SCHEMAS_ID}#/$defs/${schemaName}`);
  if (!v) throw new Error(`api/openapi.yaml has no components.schemas.${schemaName}`);
  return v;
}

// ---- Requests. ----

/**
 * Checks a parsed request body against `VmConfig` and returns it with defaults filled in (the input is not
 * changed). Throws ApiError ERR_VALIDATION (400) with one line naming the field and the problem.
 */
export function validateVmConfig(body: unknown): VmConfigWithDefaults {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError('ERR_VALIDATION', `the request body must be a JSON object with the VmConfig fields (got ${preview(body)})`);
  }
  const config: Record<string, unknown> = { ...body }; // ajv fills defaults in place; only top-level fields have any
  const validate = validatorFor(compiledSpec().request, 'VmConfig');
  const valid = validate(config);
  const errors = (validate.errors ?? []).filter((e) => e.keyword !== 'oneOf' && !e.schemaPath.includes('/oneOf/'));
  if (errors.length > 0) throw new ApiError('ERR_VALIDATION', requestErrorMessage(errors));
  // The schema says this with oneOf; say it again here, with a message that explains the choice.
  const hasGuest = config.guest !== undefined;
  const hasKernel = config.kernel !== undefined;
  if (hasGuest && hasKernel) {
    throw new ApiError('ERR_VALIDATION', 'give either guest (a built-in test guest) or kernel (a kernel image path), not both');
  }
  if (!hasGuest && !hasKernel) {
    throw new ApiError('ERR_VALIDATION', `give one of guest (one of ${GUEST_NAMES.join(', ')}) or kernel (an absolute path to a kernel image)`);
  }
  if (!valid) throw new ApiError('ERR_VALIDATION', 'the VmConfig does not match the API schema'); // unreachable unless the spec grows
  checkDeviceIds(config as unknown as VmConfig);
  return config as unknown as VmConfigWithDefaults;
}

/** Device ids key the devices' saved state: they must be unique within the VM (and not the reserved ones). */
function checkDeviceIds(config: VmConfig): void {
  const seen = new Set<string>(config.vconsole ? ['vconsole'] : []);
  if (config.rng) seen.add('rng');
  for (const d of [...(config.disks ?? []), ...(config.nets ?? [])]) {
    if (seen.has(d.id)) throw new ApiError('ERR_VALIDATION', `device id "${d.id}" is used twice (or is reserved for the vconsole or rng device): give every disk and net its own id`);
    seen.add(d.id);
  }
  const taps = (config.nets ?? []).map((n) => n.tap);
  if (new Set(taps).size !== taps.length) throw new ApiError('ERR_VALIDATION', 'two nets use the same tap: give each net its own tap');
}

/** Checks a VM name from a URL path; throws ERR_VALIDATION (400). */
export function validateVmName(name: string): string {
  const validate = validatorFor(compiledSpec().response, 'VmName');
  if (!validate(name)) throw new ApiError('ERR_VALIDATION', requestErrorMessage(validate.errors ?? [], 'the VM name'));
  return name;
}

/** Lifecycle actions (start, pause, resume, stop) take no body, or `{}`; `undefined` means no body was sent. */
export function validateActionBody(body: unknown): void {
  if (body === undefined) return;
  if (body !== null && typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0) return;
  throw new ApiError('ERR_VALIDATION', `this action takes no body: send none, or {} (got ${preview(body)})`);
}

/** The `force` query parameter of DELETE /v1/vms/{name}: absent means false. */
export function parseForce(value: string | null | undefined): boolean {
  if (value === null || value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new ApiError('ERR_VALIDATION', `force must be true or false (got ${preview(value)})`);
}

/** The `tailBytes` query parameter of GET /v1/vms/{name}/console/log; bounds and default come from the spec. */
export function parseTailBytes(value: string | null | undefined): number {
  const schema = queryParameterSchema('/v1/vms/{name}/console/log', 'get', 'tailBytes');
  const min = schema.minimum as number;
  const max = schema.maximum as number;
  if (value === null || value === undefined) return schema.default as number;
  const n = /^[0-9]{1,8}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) {
    throw new ApiError('ERR_VALIDATION', `tailBytes must be an integer from ${min} to ${max} (got ${preview(value)})`);
  }
  return n;
}

function queryParameterSchema(path: string, method: string, name: string): JsonSchema {
  const op = apiSpec().paths[path]?.[method] as { parameters?: Array<{ name?: string; in?: string; schema?: JsonSchema }> } | undefined;
  const param = op?.parameters?.find((p) => p.name === name && p.in === 'query');
  if (!param?.schema) throw new Error(`api/openapi.yaml has no query parameter ${name} on ${method.toUpperCase()} ${path}`);
  return param.schema;
}

// ---- Responses. ----

/** A response body that does not match its schema: a bug in the daemon, never the client's fault. */
export class ResponseSchemaError extends Error {
  override readonly name = 'ResponseSchemaError';
  readonly code = 'ERR_RESPONSE_SCHEMA';
  constructor(readonly schemaName: string, readonly problems: string[]) {
    super(`response does not match schema ${schemaName}: ${problems.join('; ')}`);
  }
}

/**
 * A checker for response bodies of one schema (a name in components.schemas). It returns the body, typed,
 * or throws ResponseSchemaError listing every mismatch. It never changes the body.
 */
export function responseValidator<N extends keyof ResponseSchemas>(schemaName: N): (body: unknown) => ResponseSchemas[N] {
  const validate = validatorFor(compiledSpec().response, schemaName);
  return (body: unknown) => {
    if (validate(body)) return body as ResponseSchemas[N];
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}`);
    throw new ResponseSchemaError(schemaName, problems);
  };
}

// ---- Messages. One line, names the field, says what is expected and what was sent. ----

/**
 * Picks the most useful of ajv's errors (unknown fields first, then missing ones, then bad values) and
 * says it in words. `subject` names the whole value when the error is at its root.
 */
function requestErrorMessage(errors: ErrorObject[], subject = 'the request body'): string {
  const unknown = errors.find((e) => e.keyword === 'additionalProperties');
  if (unknown) {
    const key = String((unknown.params as { additionalProperty: string }).additionalProperty);
    const allowed = Object.keys((unknown.parentSchema?.properties ?? {}) as object);
    const where = unknown.instancePath ? ` in ${fieldName(unknown.instancePath)}` : '';
    return `unknown field ${quote(key)}${where}: remove it (the fields are ${allowed.join(', ')})`;
  }
  const missing = errors.find((e) => e.keyword === 'required');
  if (missing) {
    const key = String((missing.params as { missingProperty: string }).missingProperty);
    const fieldSchema = (missing.parentSchema?.properties as Record<string, JsonSchema> | undefined)?.[key];
    const path = fieldName(`${missing.instancePath}/${key}`);
    return fieldSchema ? `${path} is required: it must be ${expectation(fieldSchema)}` : `${path} is required`;
  }
  const bad = errors[0];
  if (!bad) return `${subject} is not valid`;
  const name = bad.instancePath ? fieldName(bad.instancePath) : subject;
  const got = bad.keyword === 'maxLength' && typeof bad.data === 'string' ? `${bad.data.length} characters` : preview(bad.data);
  return `${name} must be ${expectation(bad.parentSchema ?? {})} (got ${got})`;
}

/** What a schema accepts, in words: "an integer from 2 to 65536", "one of never, on-lost". */
function expectation(schema: JsonSchema): string {
  const target = resolveSchemaRef(schema);
  if (Array.isArray(target.enum)) return `one of ${target.enum.map(String).join(', ')}`;
  if (typeof target.pattern === 'string' && typeof target.description === 'string') return singleLine(target.description);
  const min = typeof target.minimum === 'number' ? target.minimum : undefined;
  const max = typeof target.maximum === 'number' ? target.maximum : undefined;
  const range = min !== undefined && max !== undefined ? ` from ${min} to ${max}` : min !== undefined ? ` of at least ${min}` : max !== undefined ? ` of at most ${max}` : '';
  switch (target.type) {
    case 'integer': return `an integer${range}`;
    case 'number': return `a number${range}`;
    case 'boolean': return 'true or false';
    case 'object': return 'a JSON object';
    case 'array': return 'an array';
    case 'string': {
      const maxLength = typeof target.maxLength === 'number' ? ` of at most ${target.maxLength} characters` : '';
      const pattern = typeof target.pattern === 'string' ? ` matching ${target.pattern}` : '';
      return `a string${maxLength}${pattern}`;
    }
    default: return 'a valid value';
  }
}

/** A property that is only a `$ref` (plus annotations) is described by its target. */
function resolveSchemaRef(schema: JsonSchema): JsonSchema {
  if (typeof schema.$ref !== 'string') return schema;
  const name = schema.$ref.replace(/^#\/\$defs\//, '');
  const target = resolveRef(apiSpec(), `${OPENAPI_REF}${name}`);
  return target !== null && typeof target === 'object' ? (target as JsonSchema) : schema;
}

/** `/vcpus/0/id` → `vcpus[0].id` (JSON Pointer, RFC 6901). */
function fieldName(instancePath: string): string {
  let out = '';
  for (const raw of instancePath.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^[0-9]+$/.test(part)) out += `[${part}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${quote(part)}]`;
  }
  return out;
}

/** A short, single-line rendering of a value the client sent. */
function preview(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `a ${typeof value}`;
}

/** JSON-quoted (so control characters and newlines are escaped) and cut to a readable length. */
function quote(s: string): string {
  const cut = s.length > 40 ? `${s.slice(0, 40)}...` : s;
  return JSON.stringify(cut);
}

function singleLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
