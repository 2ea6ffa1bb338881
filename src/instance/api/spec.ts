// Finds and parses api/openapi.yaml, the single source of truth for the daemon's HTTP API, once per process.
// It does not validate anything: validate.ts compiles the schemas found here.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** The parts of an OpenAPI 3.1 document this code reads; everything else stays `unknown`. */
export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, unknown>>;
  components: {
    schemas: Record<string, JsonSchema>;
    parameters?: Record<string, unknown>;
    responses?: Record<string, unknown>;
    requestBodies?: Record<string, unknown>;
  };
}

/** A JSON Schema (2020-12, as OpenAPI 3.1 uses it), kept loose: ajv checks it when it compiles. */
export type JsonSchema = { [keyword: string]: unknown };

/** Thrown when the spec file is missing or is not a usable OpenAPI 3.1 document: the build or install is broken. */
export class ApiSpecError extends Error {
  override readonly name = 'ApiSpecError';
  readonly code = 'ERR_API_SPEC';
}

const SPEC_RELATIVE = path.join('api', 'openapi.yaml');

/**
 * Walks up from this module (dist/src/instance/api/ when compiled, dist/ when bundled) to the first
 * directory that holds api/openapi.yaml.
 */
export function locateApiSpec(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const candidate = path.join(dir, SPEC_RELATIVE);
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new ApiSpecError(`${SPEC_RELATIVE} was not found above ${fileURLToPath(import.meta.url)}: install swapvisor with its api/ folder`);
}

let cached: OpenApiDocument | undefined;

/** The parsed spec. Reads the file the first time only; later calls return the same object, so do not mutate it. */
export function apiSpec(): OpenApiDocument {
  if (!cached) cached = loadApiSpec(locateApiSpec());
  return cached;
}

/** Parses one spec file, uncached. For tests and tools; the daemon uses apiSpec(). */
export function loadApiSpec(file: string): OpenApiDocument {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ApiSpecError(`cannot read the API spec ${file}: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  const d = doc as Partial<OpenApiDocument> | null;
  if (typeof d?.openapi !== 'string' || !d.openapi.startsWith('3.1.')) {
    throw new ApiSpecError(`${file} is not an OpenAPI 3.1 document (openapi: ${String(d?.openapi)})`);
  }
  if (typeof d.paths !== 'object' || typeof d.components?.schemas !== 'object') {
    throw new ApiSpecError(`${file} has no paths or no components.schemas`);
  }
  return d as OpenApiDocument;
}

/**
 * Resolves a local reference such as `#/components/schemas/VmInfo` (RFC 6901 JSON Pointer) in the document.
 * Returns undefined when nothing is there.
 */
export function resolveRef(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}
