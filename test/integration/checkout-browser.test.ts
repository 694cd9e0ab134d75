import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { createDb, type Knex } from '../../src/db';
import { startAsyncStack, type AsyncStack } from '../support/async-stack';
import { checkoutBody, createPayment, sequenceOf, statusHistory } from '../support/flows';
import { ROOT } from '../support/processes';
import { settled, waitForPayment } from '../support/stack';

/**
 * A buyer in a real (headless) browser: Debian's chromium opens the PSP-hosted checkout page,
 * types a test card and is sent back to the merchant's return_url; the payment completes through
 * the payment_method.attached webhook. Then the card numbers are searched for everywhere we and
 * the sandbox keep anything: both databases, every log of the stack, Temporal's SQLite file.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUT = path.join(ROOT, 'test-output', 'checkout-browser');
const CARDS = { success: '4242424242424242', decline: '4000000000000002', bad_luhn: '4242424242424241' } as const;

let stack: AsyncStack;
let browser: Browser;
let shop: http.Server;
let shop_url: string;
const returns: string[] = [];

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  // The merchant's "thank you" page: it records where the PSP sent the buyer back.
  shop = http.createServer((req, res) => {
    returns.push(String(req.url));
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Thanks</title><h1>Thank you</h1>');
  });
  await new Promise<void>((resolve) => shop.listen(0, '127.0.0.1', () => resolve()));
  shop_url = `http://127.0.0.1:${(shop.address() as AddressInfo).port}`;
  [stack, browser] = await Promise.all([
    startAsyncStack('browser', { api_env: { CHECKOUT_TIMEOUT_MS: '120000', PSP_POLL_INITIAL_MS: '30000' } }),
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] }),
  ]);
});
afterAll(async () => {
  await browser?.close();
  await stack?.close();
  await new Promise<void>((resolve) => (shop ? shop.close(() => resolve()) : resolve()));
});

async function payInBrowser(card_number: string, screenshot: string | null): Promise<{ payment_id: string; landed: string }> {
  const created = await createPayment(stack.api.url, stack.key, checkoutBody({ return_url: `${shop_url}/thanks?cart=7` }));
  expect(created.body.status).toBe('requires_payment_method');
  const page = await browser.newPage();
  try {
    await page.goto(created.body.checkout_url!);
    // A mistyped number first: the page says so and no token is made.
    await page.fill('#card_number', CARDS.bad_luhn);
    await page.fill('#expiry', '12/34');
    await page.fill('#cvc', '123');
    await page.fill('#name', 'Ada Lovelace');
    await page.click('button[type=submit]');
    await expect(page.locator('.error[role=alert]').first().textContent()).resolves.toMatch(/card number/i);
    expect(page.url().startsWith(shop_url)).toBe(false);
    await page.fill('#card_number', card_number.replace(/(\d{4})(?=\d)/g, '$1 '));
    await page.fill('#cvc', '123');
    if (screenshot !== null) await page.screenshot({ path: path.join(OUT, screenshot), fullPage: true });
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.toString().startsWith(shop_url), { timeout: 15_000 });
    await expect(page.locator('h1').textContent()).resolves.toBe('Thank you');
    return { payment_id: created.body.id, landed: page.url() };
  } finally {
    await page.close();
  }
}

it('a success card: the buyer lands on return_url and the payment succeeds through the webhook', async () => {
  const { payment_id, landed } = await payInBrowser(CARDS.success, 'checkout-page.png');
  const back = new URL(landed);
  expect(back.pathname).toBe('/thanks');
  expect(back.searchParams.get('cart')).toBe('7');
  expect(back.searchParams.get('checkout_session')).toMatch(/^cs_/);
  expect(returns.some((r) => r.startsWith('/thanks?'))).toBe(true);
  const done = await waitForPayment(stack.api, stack.key, payment_id, settled);
  expect(done.status).toBe('succeeded');
  expect(sequenceOf(await statusHistory(stack.api.db, payment_id), null)).toEqual(['requires_payment_method', 'processing', 'succeeded']);
  const [attached] = await stack.api.db('psp_event').where({ payment_id, type: 'payment_method.attached' });
  expect(attached).toMatchObject({ route: 'payment', note: null });
  expect(fs.statSync(path.join(OUT, 'checkout-page.png')).size).toBeGreaterThan(1_000);
});

it('a decline card: the buyer lands on return_url and the payment fails', async () => {
  const { payment_id } = await payInBrowser(CARDS.decline, null);
  const done = await waitForPayment(stack.api, stack.key, payment_id, settled);
  expect(done.status).toBe('failed');
  expect(done.orders[0].failure_code).toBe('card_declined');
});

describe('no card number is kept anywhere', () => {
  const needles = Object.values(CARDS).flatMap((n) => [n, n.replace(/(\d{4})(?=\d)/g, '$1 ')]);

  async function tablesContaining(db: Knex, text: string): Promise<string[]> {
    const tables = await db('information_schema.tables').where({ table_schema: 'public', table_type: 'BASE TABLE' }).pluck('table_name');
    const hits: string[] = [];
    for (const table of tables as string[]) {
      const found = await db.raw(`select 1 from ?? t where t::text like ? limit 1`, [table, `%${text}%`]);
      if (found.rows.length > 0) hits.push(table);
    }
    return hits;
  }

  function filesContaining(files: string[], text: string): string[] {
    return files.filter((f) => fs.existsSync(f) && fs.readFileSync(f).includes(Buffer.from(text)));
  }

  it('in PostgreSQL (ours and the sandbox PSP\'s), in every log, in Temporal\'s SQLite file', async () => {
    const temporal_db = String(process.env.TEMPORAL_DB_FILE);
    const files = [...stack.log_files, path.join(ROOT, 'test-output', 'worker.log'), path.join(ROOT, 'test-output', 'sandbox-psp.log'), temporal_db, `${temporal_db}-wal`];
    const sandbox_db = createDb(stack.sandbox_database_url, 1);
    try {
      // The search can find things: the last4 and the payment ids are stored in these places.
      expect(await tablesContaining(sandbox_db, '4242')).toContain('sandbox_payment_method');
      const any_payment = (await stack.api.db('psp_event').where({ type: 'payment_method.attached' }).first()).payment_id as string;
      expect(filesContaining(files, any_payment).length).toBeGreaterThan(0);
      for (const needle of needles) {
        expect({ needle, hits: await tablesContaining(stack.api.db, needle) }).toEqual({ needle, hits: [] });
        expect({ needle, hits: await tablesContaining(sandbox_db, needle) }).toEqual({ needle, hits: [] });
        expect({ needle, hits: filesContaining(files, needle) }).toEqual({ needle, hits: [] });
      }
    } finally {
      await sandbox_db.destroy();
    }
  });
});
