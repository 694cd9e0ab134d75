import { randomBytes } from 'node:crypto';
import { createDb, dropDatabase, ensureDatabase, migrateLatest } from '../../src/db';
import { postInTransaction } from '../../src/ledger/poster';
import { capturePosting } from '../../src/domain/ledger';
import { payctl } from '../support/payctl';
import { call, settled, useTestApi, waitForPayment, type TestApi } from '../support/stack';


describe('payctl ledger verify', () => {
  it('passes on the suite\'s ledger', async () => {
    const result = await payctl(['ledger', 'verify'], String(process.env.DATABASE_URL));
    expect(result.stdout).toContain('ledger verify: OK');
    expect(result.code).toBe(0);
  });

  it('refuses edits, then exits non-zero naming the broken transaction and accounts', async () => {
    const url = `postgres://postgres@127.0.0.1:5432/payctl_${randomBytes(4).toString('hex')}`;
    await ensureDatabase(url);
    const db = createDb(url, 2);
    try {
      await migrateLatest(db);
      // payment/order/merchant ids are foreign keys; this database holds only the ledger.
      const posting = capturePosting({ order_id: 'o1', payment_id: 'p1', merchant_id: 'm', seller_id: 's', currency: 'USD', amount_minor: 1000n, commission_minor: 30n, psp_fee_minor: 59n });
      await postInTransaction(db, [{ ...posting, payment_id: null, order_id: null, merchant_id: null, entries: posting.entries.map((e) => ({ ...e, account: { code: e.account.code, type: e.account.type } })) }]);
      expect((await payctl(['ledger', 'verify'], url)).code).toBe(0);
      await expect(db('ledger_entry').update({ amount_minor: '1' })).rejects.toThrow(/append-only/);
      await expect(db('ledger_transaction').delete()).rejects.toThrow(/append-only/);

      const tx = await db('ledger_transaction').first();
      const account = await db('ledger_account').where({ code: 'platform_revenue' }).first();
      // PostgreSQL itself refuses an entry that unbalances a transaction (checked at commit).
      await expect(db('ledger_entry').insert({ transaction_id: tx.id, account_id: account.id, amount_minor: '5', currency: 'USD' })).rejects.toThrow(/unbalanced/);

      // Tamper the way a hand-edit with triggers switched off would: an extra entry, and a stored balance off by one.
      await db.transaction(async (trx) => {
        await trx.raw('set local session_replication_role = replica');
        await trx('ledger_entry').insert({ transaction_id: tx.id, account_id: account.id, amount_minor: '5', currency: 'USD' });
        await trx('ledger_account').where({ code: 'psp_receivable' }).update({ posted_minor: trx.raw('posted_minor + 1') });
      });

      const result = await payctl(['ledger', 'verify'], url);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`BREAK unbalanced_transaction id=${tx.id}`);
      expect(result.stdout).toMatch(/BREAK posted_balance_mismatch .*psp_receivable/);
      expect(result.stdout).toMatch(/BREAK posted_balance_mismatch .*platform_revenue/);
    } finally {
      await db.destroy();
      await dropDatabase(url);
    }
  });

  it('sets and lists a merchant fee rule, refusing a bad amount; shows an account balance', async () => {
    const url = String(process.env.DATABASE_URL);
    const db = createDb(url, 1);
    try {
      const merchant_id = `mer_${randomBytes(6).toString('hex')}`;
      await db('merchant').insert({ id: merchant_id, name: 'fees' });
      const set = await payctl(['merchant', 'fee-rule', 'set', merchant_id, '--percent-bps', '250', '--currency', 'USD', '--fixed', '0.10'], url);
      expect(set.code).toBe(0);
      expect(await db('merchant_fee_rule').where({ merchant_id }).first()).toMatchObject({ currency: 'USD', percent_bps: 250, fixed_minor: '10' });
      expect((await payctl(['merchant', 'fee-rule', 'list', merchant_id], url)).stdout).toContain('USD: 250 bps + 0.10');
      const bad = await payctl(['merchant', 'fee-rule', 'set', merchant_id, '--percent-bps', '250', '--currency', 'USD', '--fixed', '0.101'], url);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('at most 2 decimal places');
      expect((await payctl(['merchant', 'fee-rule', 'set', 'mer_missing', '--percent-bps', '1'], url)).code).toBe(2);
    } finally {
      await db.destroy();
    }
    const balance = await payctl(['ledger', 'balance', 'no_such_account'], url);
    expect(balance.code).toBe(1);
  });

  it('lists PSP webhooks by route and shows a payment\'s status history; the database refuses a move backwards', async () => {
    const url = String(process.env.DATABASE_URL);
    const db = createDb(url, 1);
    try {
      const suffix = randomBytes(6).toString('hex');
      const merchant_id = `mer_${suffix}`;
      const payment_id = `pay_${suffix}`;
      await db('merchant').insert({ id: merchant_id, name: 'history' });
      await db('payment_event').insert({ id: payment_id, merchant_id, buyer_id: 'b', currency: 'USD', amount_minor: '100', status: 'processing', workflow_id: `payment-${payment_id}` });
      await db('payment_event').where({ id: payment_id }).update({ status: 'pending' });
      await db('payment_event').where({ id: payment_id }).update({ status: 'succeeded' });
      await expect(db('payment_event').where({ id: payment_id }).update({ status: 'processing' })).rejects.toThrow(/may not move from succeeded to processing/);
      const history = await payctl(['payment', 'history', payment_id], url);
      expect(history.code).toBe(0);
      expect(history.stdout.trim().split('\n').map((l) => l.split(' ').slice(2).join(' '))).toEqual(['(new) -> processing', 'processing -> pending', 'pending -> succeeded']);
      expect((await payctl(['payment', 'history', 'pay_missing'], url)).code).toBe(1);

      const event_id = `evt_unknown_${suffix}`;
      await db('psp_event').insert({ id: event_id, type: 'charge.succeeded', object_id: `ch_${suffix}`, route: 'unknown', note: 'no order ord_x', payload: '{}' });
      const unknown = await payctl(['psp-events', 'list', '--route', 'unknown', '--unapplied'], url);
      expect(unknown.code).toBe(0);
      expect(unknown.stdout).toContain(`${event_id} charge.succeeded unknown ch_${suffix} x1 NOT APPLIED (no order ord_x)`);
      expect((await payctl(['psp-events', 'list', '--route', 'order', '--limit', '100'], url)).stdout).not.toContain(event_id);
      expect((await payctl(['psp-events', 'list', '--route', 'dispute', '--limit', '1'], url)).code).toBe(0);
      expect((await payctl(['psp-events', 'list', '--route', 'bogus'], url)).code).toBe(2);
    } finally {
      await db.destroy();
    }
  });

  it('answers a usage error with exit code 2', async () => {
    const result = await payctl(['ledger', 'frobnicate'], String(process.env.DATABASE_URL));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('usage: payctl');
    expect((await payctl(['ledger', 'verify', '--bogus'], String(process.env.DATABASE_URL))).code).toBe(2);
  });
});

describe('payctl payment show', () => {
  let api: TestApi;
  let key: string;
  useTestApi((a, k) => {
    api = a;
    key = k;
  });
  const UI = { TEMPORAL_UI_URL: 'http://temporal-ui.test:8233' };

  it('shows a real payment: its orders, ledger transactions with entries, status history and workflow link', async () => {
    const buyer = `buyer_${randomBytes(4).toString('hex')}`;
    const created = await call(`${api.url}/v1/payments`, {
      key,
      idempotency_key: `show-${randomBytes(8).toString('hex')}`,
      body: { buyer: { id: buyer }, currency: 'USD', payment_method: 'tok_success', orders: [{ seller_id: 'seller_a', amount: '12.34' }, { seller_id: 'seller_b', amount: '5.00' }] },
    });
    expect(created.status).toBe(201);
    const payment_id: string = created.body.id;
    await waitForPayment(api, key, payment_id, (p) => settled(p) && p.orders.every((o: { ledger_updated: boolean }) => o.ledger_updated));
    const { merchant_id } = await api.db('payment_event').where({ id: payment_id }).first();
    const [order_a, order_b] = (await api.db('payment_order').where({ payment_id }).orderBy('seller_id')).map((o: { id: string }) => o.id);

    const shown = await payctl(['payment', 'show', payment_id], String(process.env.DATABASE_URL), UI);
    expect(shown.code).toBe(0);
    const lines = shown.stdout.split('\n');
    expect(lines[0]).toBe(`payment ${payment_id} succeeded 17.34 USD`);
    expect(lines).toContain(`  merchant ${merchant_id} (test merchant), buyer ${buyer}`);
    expect(lines).toContain(`  workflow payment-${payment_id} http://temporal-ui.test:8233/namespaces/default/workflows/payment-${payment_id}`);
    expect(lines).toContain('orders (2):');
    expect(shown.stdout).toMatch(new RegExp(`^  ${order_a} succeeded 12\\.34 USD seller seller_a psp_reference ch_\\S+ charge_attempts 1 psp_version \\d+ books written$`, 'm'));
    expect(shown.stdout).toMatch(new RegExp(`^  ${order_b} succeeded 5\\.00 USD seller seller_b psp_reference ch_\\S+ charge_attempts 1 psp_version \\d+ books written$`, 'm'));
    expect(shown.stdout).toMatch(/^psp events \(\d+\):$/m);
    // One capture posting per order; the seller gets the amount less the 3 % commission (half-even).
    expect(lines).toContain('ledger transactions (2):');
    expect(shown.stdout).toMatch(new RegExp(`^  \\d+ order:${order_a}:capture posting \\S+ `, 'm'));
    expect(shown.stdout).toMatch(new RegExp(`^  \\d+ order:${order_b}:capture posting \\S+ `, 'm'));
    expect(lines).toContain(`    credit seller_payable:${merchant_id}:seller_a 11.97 USD posted`);
    expect(lines).toContain(`    credit seller_payable:${merchant_id}:seller_b 4.85 USD posted`);
    expect(lines).toContain('    credit platform_revenue 0.37 USD posted');
    expect(lines.filter((l) => l.startsWith('    debit  psp_receivable '))).toHaveLength(2);
    expect(shown.stdout).toMatch(/^status history \(\d+\):$/m);
    expect(shown.stdout).toMatch(new RegExp(`^  \\S+ ${payment_id} \\(new\\) -> processing$`, 'm'));
    expect(shown.stdout).toMatch(new RegExp(`^  \\S+ ${payment_id} \\S+ -> succeeded$`, 'm'));
    expect(shown.stdout).toMatch(new RegExp(`^  \\S+ ${order_a} \\S+ -> succeeded$`, 'm'));

    const json = await payctl(['payment', 'show', payment_id, '--json'], String(process.env.DATABASE_URL), UI);
    expect(json.code).toBe(0);
    const facts = JSON.parse(json.stdout);
    expect(facts.payment).toMatchObject({ id: payment_id, status: 'succeeded', amount: '17.34', currency: 'USD', merchant_id, failure_code: null });
    expect(facts.temporal_ui_url).toBe(`http://temporal-ui.test:8233/namespaces/default/workflows/payment-${payment_id}`);
    expect(facts.orders.map((o: { amount: string }) => o.amount).sort()).toEqual(['12.34', '5.00']);
    expect(facts.ledger_transactions).toHaveLength(2);
    for (const t of facts.ledger_transactions) {
      expect(t.entries.length).toBeGreaterThanOrEqual(3);
      for (const e of t.entries) expect(e.amount).toMatch(/^[0-9]+\.[0-9]{2}$/);
    }
    expect(facts.status_history.length).toBeGreaterThanOrEqual(4);
  });

  it('shows a parked order\'s failure and the PSP events received for it; exit 1 for an unknown id, 2 for bad usage', async () => {
    // A database of its own, so the hand-made PSP events do not show up in other tests' counts.
    const url = `postgres://postgres@127.0.0.1:5432/payctl_${randomBytes(4).toString('hex')}`;
    await ensureDatabase(url);
    const db = createDb(url, 2);
    try {
      await migrateLatest(db);
      const suffix = randomBytes(6).toString('hex');
      const merchant_id = `mer_${suffix}`;
      const payment_id = `pay_${suffix}`;
      await db('merchant').insert({ id: merchant_id, name: 'show' });
      await db('payment_event').insert({ id: payment_id, merchant_id, buyer_id: 'b', currency: 'JPY', amount_minor: '2500', status: 'processing', workflow_id: `payment-${payment_id}`, workflow_started_at: db.fn.now() });
      const order = { payment_id, merchant_id, currency: 'JPY', commission_minor: '0', status: 'executing' };
      await db('payment_order').insert([
        { ...order, id: `ord_${suffix}_a`, seller_id: 'sa', amount_minor: '1500', charge_attempts: 3 },
        { ...order, id: `ord_${suffix}_b`, seller_id: 'sb', amount_minor: '1000', charge_attempts: 1 },
      ]);
      await db('payment_order').where({ id: `ord_${suffix}_a` }).update({ status: 'needs_attention', failure_code: 'retries_exhausted', failure_message: 'Psp_retryable: psp_unavailable' });
      await db('payment_order').where({ id: `ord_${suffix}_b` }).update({ status: 'failed', psp_reference: `ch_${suffix}_b`, psp_version: 2, failure_code: 'card_declined', failure_message: 'Your card was declined' });
      await db('payment_event').where({ id: payment_id }).update({ status: 'needs_attention' });
      await db('psp_event').insert([
        { id: `evt_${suffix}_1`, type: 'charge.pending', object_id: `ch_${suffix}_a`, route: 'order', payment_id, order_id: `ord_${suffix}_a`, payload: '{}' },
        { id: `evt_${suffix}_2`, type: 'charge.failed', object_id: `ch_${suffix}_b`, route: 'ignored', order_id: `ord_${suffix}_b`, note: 'order already failed', deliveries: 2, applied_at: db.fn.now(), payload: '{}' },
        { id: `evt_${suffix}_3`, type: 'charge.succeeded', object_id: 'ch_other', route: 'unknown', note: 'no order ord_other', payload: '{}' },
      ]);

      const shown = await payctl(['payment', 'show', payment_id], url, UI);
      expect(shown.code).toBe(0);
      const lines = shown.stdout.split('\n');
      expect(lines[0]).toBe(`payment ${payment_id} needs_attention 2500 JPY`);
      expect(lines).toContain(`  ord_${suffix}_a needs_attention 1500 JPY seller sa psp_reference - charge_attempts 3 psp_version - books not written`);
      expect(lines).toContain('    failure retries_exhausted: Psp_retryable: psp_unavailable');
      expect(lines).toContain(`  ord_${suffix}_b failed 1000 JPY seller sb psp_reference ch_${suffix}_b charge_attempts 1 psp_version 2 books not written`);
      expect(lines).toContain('    failure card_declined: Your card was declined');
      // Its two events (the unknown one belongs to nobody here), oldest first.
      expect(lines).toContain('psp events (2):');
      expect(shown.stdout).toMatch(new RegExp(`^  \\S+ evt_${suffix}_1 charge.pending order ord_${suffix}_a x1 NOT APPLIED$`, 'm'));
      expect(shown.stdout).toMatch(new RegExp(`^  \\S+ evt_${suffix}_2 charge.failed ignored ord_${suffix}_b x2 applied \\S+ \\(order already failed\\)$`, 'm'));
      expect(shown.stdout).not.toContain('ch_other');
      expect(lines).toContain('ledger transactions (0):');
      expect(shown.stdout).toMatch(new RegExp(`^  \\S+ ${payment_id} processing -> needs_attention$`, 'm'));
      expect(shown.stdout).toMatch(new RegExp(`^  \\S+ ord_${suffix}_a executing -> needs_attention$`, 'm'));

      const json = JSON.parse((await payctl(['payment', 'show', payment_id, '--json'], url)).stdout);
      expect(json.psp_events.map((e: { id: string; applied: boolean }) => [e.id, e.applied])).toEqual([
        [`evt_${suffix}_1`, false],
        [`evt_${suffix}_2`, true],
      ]);

      const missing = await payctl(['payment', 'show', 'pay_missing'], url);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('no payment pay_missing');
      expect(missing.stdout).toBe('');
      for (const bad of [['payment', 'show'], ['payment', 'show', payment_id, 'extra'], ['payment', 'show', payment_id, '--bogus']]) {
        const usage = await payctl(bad, url);
        expect(usage.code).toBe(2);
        expect(usage.stderr).toContain('payment show <payment_id> [--json]');
      }
    } finally {
      await db.destroy();
      await dropDatabase(url);
    }
  });
});
