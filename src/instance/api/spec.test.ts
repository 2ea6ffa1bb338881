import { test } from 'node:test';
import assert from 'node:assert/strict';
import { API_ERROR_STATUS } from './errors.js';
import { apiSpec, loadApiSpec, locateApiSpec, resolveRef } from './spec.js';
import { responseValidator, validateVmConfig, type ResponseSchemas } from './validate.js';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

interface Operation {
  operationId?: string;
  requestBody?: unknown;
  responses?: Record<string, unknown>;
}

function operations(): Array<{ path: string; method: string; op: Operation }> {
  const out = [];
  for (const [path, item] of Object.entries(apiSpec().paths)) {
    for (const method of METHODS) if (item[method]) out.push({ path, method, op: item[method] as Operation });
  }
  return out;
}

/** Follows `$ref` until it reaches an object that is not one. */
function deref(node: unknown): Record<string, unknown> {
  let n = node as Record<string, unknown>;
  while (typeof n?.$ref === 'string') n = resolveRef(apiSpec(), n.$ref) as Record<string, unknown>;
  return n;
}

test('the spec is found above the compiled module, parses as OpenAPI 3.1, and is read once', () => {
  const file = locateApiSpec();
  assert.match(file, /api[/\\]openapi\.yaml$/);
  const doc = apiSpec();
  assert.equal(doc.openapi, '3.1.0');
  assert.equal(apiSpec(), doc, 'cached: the same object every time');
  assert.deepEqual(loadApiSpec(file), doc);
});

test('every $ref resolves', () => {
  const refs: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === '$ref') refs.push(String(v));
        else walk(v);
      }
    }
  };
  walk(apiSpec());
  assert.ok(refs.length > 50, `found only ${refs.length} references`);
  for (const ref of refs) assert.notEqual(resolveRef(apiSpec(), ref), undefined, `${ref} does not resolve`);
});

test('the component schemas the brief names are all there', () => {
  for (const name of ['Instance', 'PlatformSummary', 'PlatformRecord', 'VmConfig', 'VmInfo', 'VmExit', 'VcpuInfo', 'VmList', 'Error']) {
    assert.ok(apiSpec().components.schemas[name], name);
  }
});

test('every operation has a unique operationId and lists its error responses', () => {
  const ids = new Set<string>();
  const ops = operations();
  assert.equal(ops.length, 16, 'the 13 operations of the instance and VMs, and the 3 of /v1/swap');
  for (const { path, method, op } of ops) {
    const where = `${method.toUpperCase()} ${path}`;
    assert.ok(op.operationId && !ids.has(op.operationId), `${where}: operationId missing or repeated`);
    ids.add(op.operationId);
    const statuses = Object.keys(op.responses ?? {});
    assert.ok(statuses.some((s) => s.startsWith('2') || s === '101'), `${where}: no success response`);
    for (const s of ['405', '500']) assert.ok(statuses.includes(s), `${where}: no ${s} response`);
    if (path.includes('{name}')) for (const s of ['400', '404']) assert.ok(statuses.includes(s), `${where}: no ${s} response`);
    if (op.requestBody) for (const s of ['400', '413', '415']) assert.ok(statuses.includes(s), `${where}: no ${s} response`);
  }
});

test('the console attach answers 101 Switching Protocols', () => {
  const op = apiSpec().paths['/v1/vms/{name}/console']?.get as Operation;
  assert.ok(op.responses?.['101']);
});

test('ErrorCode in the spec is exactly the codes errors.ts knows, and each example sits under its status', () => {
  const codes = (apiSpec().components.schemas.ErrorCode?.enum as string[]).slice().sort();
  assert.deepEqual(codes, Object.keys(API_ERROR_STATUS).sort());
  let examples = 0;
  for (const { path, method, op } of operations()) {
    for (const [status, response] of Object.entries(op.responses ?? {})) {
      const example = (deref(response).content as Record<string, { example?: { error?: { code: keyof typeof API_ERROR_STATUS } } }> | undefined)?.['application/json']?.example;
      if (!example?.error) continue;
      examples++;
      assert.equal(API_ERROR_STATUS[example.error.code], Number(status), `${method.toUpperCase()} ${path} ${status}: example code ${example.error.code}`);
    }
  }
  assert.ok(examples > 40);
});

test('every JSON example in the spec matches its schema', () => {
  let checked = 0;
  for (const { path, method, op } of operations()) {
    const bodies = Object.entries(op.responses ?? {}).map(([status, r]) => [status, deref(r)] as const);
    for (const [status, response] of bodies) {
      const media = (response.content as Record<string, { schema?: { $ref?: string }; example?: unknown }> | undefined)?.['application/json'];
      if (!media || media.example === undefined) continue;
      const name = media.schema?.$ref?.split('/').pop() as keyof ResponseSchemas;
      assert.doesNotThrow(() => responseValidator(name)(media.example), `${method.toUpperCase()} ${path} ${status}`);
      checked++;
    }
    const request = (deref(op.requestBody ?? {}).content as Record<string, { examples?: Record<string, { value: unknown }> }> | undefined)?.['application/json'];
    if (path === '/v1/vms' && method === 'post') {
      for (const [name, ex] of Object.entries(request?.examples ?? {})) {
        assert.doesNotThrow(() => validateVmConfig(ex.value), name);
        checked++;
      }
    }
  }
  assert.ok(checked >= 20, `only ${checked} examples checked`);
});
