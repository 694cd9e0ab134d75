import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { createDb, dropDatabase, ensureDatabase, migrateLatest } from '../../src/db';
import { postInTransaction } from '../../src/ledger/poster';
import { capturePosting } from '../../src/domain/ledger';
import { ROOT, tsCommand } from '../../src/dev/run-ts';

const run = promisify(execFile);

async function payctl(args: string[], database_url: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const cmd = tsCommand('src/cli/payctl.ts');
    const { stdout, stderr } = await run(cmd.command, [...cmd.args, ...args], { cwd: ROOT, env: { ...process.env, DATABASE_URL: database_url } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

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
