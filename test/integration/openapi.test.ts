import type { Express } from 'express';
import { chromium } from 'playwright-core';
import { openApiPath } from '../../src/api/openapi';
import { type TestApi, useTestApi } from '../support/stack';

/** /openapi.json describes every route express serves; /docs renders it. */
let api: TestApi;
useTestApi((a) => {
  api = a;
});

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
  rawPath?: string;
}

/** "METHOD /path" of every route in an express stack, mounted routers included. */
function mountedRoutes(stack: Layer[], prefix = ''): string[] {
  return stack.flatMap((layer) => {
    if (layer.route !== undefined) return Object.keys(layer.route.methods).map((method) => `${method} ${prefix}${layer.route?.path ?? ''}`);
    if (layer.handle.stack === undefined) return [];
    const mount = layer.rawPath === undefined || layer.rawPath === '/' ? '' : layer.rawPath;
    return mountedRoutes(layer.handle.stack, `${prefix}${mount}`);
  });
}

it('every route express has mounted is an operation of /openapi.json, and nothing more', async () => {
  const document = (await (await fetch(`${api.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  const documented = Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`));
  const mounted = mountedRoutes((api.app as Express & { router: { stack: Layer[] } }).router.stack).map((r) => openApiPath(r));
  expect(mounted.length).toBeGreaterThan(25);
  expect([...mounted].sort()).toEqual([...documented].sort());
});

it('/docs answers the API reference page, its assets from this server, under a policy of its own', async () => {
  const page = await fetch(`${api.url}/docs`);
  expect(page.status).toBe(200);
  expect(page.headers.get('content-type')).toMatch(/^text\/html/);
  const html = await page.text();
  expect(html).toContain('<div id="swagger-ui"></div>');
  const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1] ?? '');
  expect(scripts).toEqual(['/docs/swagger-ui-bundle.js', '/docs/swagger-ui-standalone-preset.js', '/docs/swagger-ui-init.js']);
  for (const script of scripts) expect((await fetch(`${api.url}${script}`)).status).toBe(200);
  expect(page.headers.get('content-security-policy')).not.toContain('upgrade-insecure-requests');
  const json = await fetch(`${api.url}/openapi.json`);
  expect(json.headers.get('content-security-policy')).toContain('upgrade-insecure-requests');
});

it('/docs renders every operation in a real browser, offline, with no content policy violation', async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('requestfailed', (request) => problems.push(`${request.url()} failed`));
    await page.goto(`${api.url}/docs`);
    await page.waitForSelector('.opblock', { timeout: 20_000 });
    const operations = await page.locator('.opblock').count();
    expect({ operations, problems }).toEqual({ operations: expect.any(Number), problems: [] });
    expect(operations).toBeGreaterThan(25);
  } finally {
    await browser.close();
  }
});
