import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openApiDocument } from '../../src/api/openapi';
import { API_ROUTES } from '../../src/api/routes';

const ROOT = join(__dirname, '..', '..');

/** What `npm run openapi:types` would write, generated now to stdout (nothing written). */
function generatedTypes(): string {
  return execFileSync(join(ROOT, 'node_modules', '.bin', 'tsx'), ['test/support/openapi-files.ts', 'types', '-'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
}

/** The generated client types and the document, checked without any service running. */
describe('the OpenAPI document and the typed client', () => {
  it('the committed client types are what the document generates (run `npm run openapi:types` after an API change)', () => {
    const committed = readFileSync(join(ROOT, 'test', 'support', 'api-types.ts'), 'utf8');
    expect(committed === generatedTypes()).toBe(true);
  });

  it('every registered route is an operation with an id, a tag, a schema for each answer and a 4XX unless it is a service route', () => {
    const document = openApiDocument(API_ROUTES);
    const operations = Object.values(document.paths).flatMap((item) => Object.values(item));
    expect(operations).toHaveLength(API_ROUTES.length);
    expect(new Set(operations.map((o) => o.operationId)).size).toBe(API_ROUTES.length);
    for (const route of API_ROUTES) {
      const responses = Object.entries(document.paths[route.path.replace(/:([A-Za-z_]+)/g, '{$1}')]?.[route.method]?.responses as Record<string, { content?: Record<string, { schema?: unknown }> }>);
      for (const [status, response] of responses) expect([route.operationId, status, Object.values(response.content ?? {})[0]?.schema !== undefined]).toEqual([route.operationId, status, true]);
      if (route.auth !== 'none') expect([route.operationId, responses.some(([status]) => status.startsWith('4'))]).toEqual([route.operationId, true]);
    }
  });
});
