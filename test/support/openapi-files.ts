import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import openapiTS, { astToString, COMMENT_HEADER, type OpenAPI3 } from 'openapi-typescript';
import { openApiDocument } from '../../src/api/openapi';
import { API_ROUTES } from '../../src/api/routes';

/**
 * Files made from the route registry, never edited by hand: the OpenAPI document (for Redocly's
 * lint) and the typed client's types (test/support/api-types.ts, committed; a unit test checks it
 * matches what this generates, in a child process: openapi-typescript needs ES modules jest cannot load).
 */

export const API_TYPES_PATH = 'test/support/api-types.ts';

export const documentJson = (): string => `${JSON.stringify(openApiDocument(API_ROUTES), null, 2)}\n`;

export async function apiTypesSource(): Promise<string> {
  const ast = await openapiTS(openApiDocument(API_ROUTES) as unknown as OpenAPI3, { alphabetize: true, arrayLength: true });
  return `${COMMENT_HEADER}${astToString(ast)}`;
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

async function main(what: string | undefined, path: string | undefined): Promise<void> {
  if (what === 'document' && path !== undefined) return write(path, documentJson());
  if (what === 'types' && path === '-') return void process.stdout.write(await apiTypesSource());
  if (what === 'types') return write(path ?? API_TYPES_PATH, await apiTypesSource());
  throw new Error('usage: openapi-files.ts document <file.json> | types [file.ts | - for stdout]');
}

if (require.main === module) {
  main(process.argv[2], process.argv[3]).catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
