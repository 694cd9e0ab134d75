import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { createDb, dropDatabase, ensureDatabase, migrateLatest, type Knex } from '../../src/db';
import { AppError } from '../../src/domain/errors';
import { addMoney } from '../../src/domain/money';
import { ACCOUNTS, capturePosting, voidPendingPosting, type AccountRef, type PostingDraft, type TransferDraft } from '../../src/domain/ledger';
import { LedgerPoster, postInTransaction, type PostResult } from '../../src/ledger/poster';
import { createHold, expireHolds, findHold, postHold, voidHold } from '../../src/ledger/holds';
import { accountBalances, available, pending, verifyLedger } from '../../src/ledger/store';

/**
 * Property tests of the ledger against the real PostgreSQL: random sequences of postings, holds,
 * partial posts, voids and repeats go through the real code paths (SQL function, triggers, unique
 * indexes), and an in-memory model of every account's posted and pending balance must agree.
 * The file uses its own database, created and dropped here.
 */

const database_url = (() => {
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  url.pathname = `/ledger_prop_${randomBytes(6).toString('hex')}`;
  return url.toString();
})();
const M = 'm_prop';
const SELLERS = ['s0', 's1', 's2', 's3', 's4'] as const;
const CURRENCIES = ['USD', 'JPY'] as const;
type Currency = (typeof CURRENCIES)[number];
const HOUR_MS = 3_600_000;

let db: Knex;
let poster: LedgerPoster;

beforeAll(async () => {
  await ensureDatabase(database_url);
  db = createDb(database_url, 16);
  await migrateLatest(db);
  await db('merchant').insert({ id: M, name: 'property-test merchant' });
  poster = new LedgerPoster(db);
});

afterAll(async () => {
  await db?.destroy();
  await dropDatabase(database_url);
});

// ---------------------------------------------------------------------------------------------
// helpers

const seller = (i: number): AccountRef => ACCOUNTS.sellerPayable(M, SELLERS[i % SELLERS.length] as string);
const key = (code: string, currency: string) => `${code}|${currency}`;
let unique = 0;
const uid = (prefix: string) => `${prefix}_${process.pid}_${++unique}`;

/** A capture posting without payment/order ids (those are foreign keys to rows this test has no use for). */
function capture(order_id: string, seller_id: string, currency: string, amount: bigint, commission: bigint, fee: bigint): PostingDraft {
  const draft = capturePosting({
    order_id,
    payment_id: 'unused',
    merchant_id: M,
    seller_id,
    currency,
    amount_minor: amount,
    commission_minor: commission,
    psp_fee_minor: fee,
  });
  return { ...draft, payment_id: null, order_id: null };
}

interface Balance {
  posted: bigint;
  pending: bigint;
}

async function dbBalances(conn: Knex = db): Promise<Map<string, Balance>> {
  const rows: { code: string; currency: string; posted_minor: string; pending_minor: string }[] = await conn('ledger_account').select('code', 'currency', 'posted_minor', 'pending_minor');
  return new Map(rows.map((r) => [key(r.code, r.currency), { posted: BigInt(r.posted_minor), pending: BigInt(r.pending_minor) }]));
}

/** Comparable form: accounts with both balances zero are left out (an account may exist untouched). */
const comparable = (m: Map<string, Balance>) =>
  Object.fromEntries(
    [...m.entries()]
      .filter(([, b]) => b.posted !== 0n || b.pending !== 0n)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, b]) => [k, `posted ${b.posted} pending ${b.pending}`]),
  );

async function expectLedgerClean(conn: Knex = db): Promise<void> {
  const report = await verifyLedger(conn);
  expect(report.breaks).toEqual([]);
  for (const c of report.currencies) {
    expect({ currency: c.currency, posted: c.posted_sum_minor, pending: c.pending_sum_minor }).toEqual({ currency: c.currency, posted: '0', pending: '0' });
  }
  // and from the stored account balances, not only the entries
  const sums: { currency: string; posted: string; pending: string }[] = (
    await conn.raw(`select currency, sum(posted_minor)::text as posted, sum(pending_minor)::text as pending from ledger_account group by currency order by currency`)
  ).rows;
  for (const s of sums) expect(s).toEqual({ currency: s.currency, posted: '0', pending: '0' });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, the call succeeded');
}

async function expectCode(p: Promise<unknown>, ...codes: string[]): Promise<void> {
  const err = await rejection(p);
  expect(err).toBeInstanceOf(AppError);
  expect(codes).toContain((err as AppError).code);
}

async function sellerBalance(seller_id: string, currency = 'USD') {
  const [a] = await accountBalances(db, ACCOUNTS.sellerPayable(M, seller_id).code, currency);
  return a === undefined ? { available: 0n, pending: 0n } : { available: available(a), pending: pending(a) };
}

async function counts(): Promise<{ transactions: string; entries: string; accounts: string; posted: string; pending: string }> {
  return (
    await db.raw(`select (select count(*) from ledger_transaction)::text as transactions, (select count(*) from ledger_entry)::text as entries,
      (select count(*) from ledger_account)::text as accounts,
      (select coalesce(sum(abs(posted_minor)), 0) from ledger_account)::text as posted,
      (select coalesce(sum(abs(pending_minor)), 0) from ledger_account)::text as pending`)
  ).rows[0];
}

// ---------------------------------------------------------------------------------------------
// random operation sequences

interface CaptureSpec {
  order: number; // small pool: the same order (reference) comes back on purpose
  seller: number;
  currency: Currency;
  amount: bigint;
  commission: bigint;
  fee: bigint;
}
type HoldShape = 'seller_to_psp' | 'psp_to_seller' | 'seller_to_seller';
type Op =
  | { t: 'capture'; via: 'poster' | 'direct' | 'trx'; c: CaptureSpec }
  | { t: 'batch'; cs: CaptureSpec[] } // one postInTransaction call, repeats inside the batch included
  | { t: 'burst'; cs: CaptureSpec[]; stale: number | null } // concurrent LedgerPoster.post calls (group commit)
  | { t: 'hold'; shape: HoldShape; a: number; b: number; currency: Currency; amount: bigint }
  | { t: 'post'; hold: number; amount: bigint | 'full' }
  | { t: 'void'; hold: number }
  | { t: 'retry'; hold: number }; // the same resolution again, same reference: a no-op

const AMOUNT_MAX = 10n ** 9n;
const captureSpec: fc.Arbitrary<CaptureSpec> = fc
  .record({
    order: fc.nat({ max: 5 }),
    seller: fc.nat({ max: SELLERS.length - 1 }),
    currency: fc.constantFrom(...CURRENCIES),
    amount: fc.oneof(fc.bigInt({ min: 1n, max: 100n }), fc.bigInt({ min: 1n, max: AMOUNT_MAX })),
    commission: fc.oneof(fc.constant('zero' as const), fc.constant('all' as const), fc.bigInt({ min: 0n, max: AMOUNT_MAX })),
    fee: fc.oneof(fc.constant('zero' as const), fc.constant('all' as const), fc.bigInt({ min: 0n, max: AMOUNT_MAX })),
  })
  .map(({ commission, fee, ...c }) => {
    const within = (x: bigint | 'zero' | 'all') => (x === 'zero' ? 0n : x === 'all' ? c.amount : x % (c.amount + 1n));
    return { ...c, commission: within(commission), fee: within(fee) };
  });

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('capture' as const), via: fc.constantFrom('poster' as const, 'direct' as const, 'trx' as const), c: captureSpec }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('batch' as const), cs: fc.array(captureSpec, { minLength: 1, maxLength: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('burst' as const), cs: fc.array(captureSpec, { minLength: 2, maxLength: 6 }), stale: fc.option(fc.nat(), { nil: null }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('hold' as const),
      shape: fc.constantFrom('seller_to_psp' as const, 'psp_to_seller' as const, 'seller_to_seller' as const),
      a: fc.nat({ max: SELLERS.length - 1 }),
      b: fc.nat({ max: SELLERS.length - 2 }),
      currency: fc.constantFrom(...CURRENCIES),
      amount: fc.oneof(fc.bigInt({ min: 1n, max: 100n }), fc.bigInt({ min: 1n, max: AMOUNT_MAX })),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('post' as const), hold: fc.nat(), amount: fc.oneof(fc.constant('full' as const), fc.bigInt({ min: 1n, max: AMOUNT_MAX })) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('void' as const), hold: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('retry' as const), hold: fc.nat() }) },
);

interface ModelHold {
  reference: string;
  debit: AccountRef;
  credit: AccountRef;
  currency: Currency;
  amount: bigint;
  resolution: null | { kind: 'post'; reference: string; amount: bigint } | { kind: 'void'; reference: string };
}

/** The model: balances per account (debit-positive), references already posted, holds made. */
class Model {
  references = new Set<string>();
  holds: ModelHold[] = [];
  constructor(readonly balances: Map<string, Balance>) {}

  move(account: AccountRef, currency: string, posted: bigint, pending_delta: bigint): void {
    const k = key(account.code, currency);
    const b = this.balances.get(k) ?? { posted: 0n, pending: 0n };
    this.balances.set(k, { posted: b.posted + posted, pending: b.pending + pending_delta });
  }

  /** Applies a posting if its reference is new; returns whether it was created. */
  apply(p: PostingDraft): boolean {
    if (this.references.has(p.reference)) return false;
    this.references.add(p.reference);
    for (const e of p.entries) this.move(e.account, p.currency, e.phase === 'posted' ? e.amount_minor : 0n, e.phase === 'pending' ? e.amount_minor : 0n);
    return true;
  }
}

let run = 0;

async function runSequence(ops: Op[]): Promise<void> {
  const prefix = `run${++run}`;
  const model = new Model(await dbBalances());
  const draftOf = (c: CaptureSpec) =>
    capture(`${prefix}_o${c.order}`, SELLERS[c.seller] as string, c.currency, c.amount, c.commission, c.fee);
  const expectResult = (result: PostResult, draft: PostingDraft, created: boolean) => {
    expect({ reference: result.reference, created: result.created }).toEqual({ reference: draft.reference, created });
    expect(result.transaction_id).toMatch(/^[0-9]+$/);
  };

  for (const [i, o] of ops.entries()) {
    switch (o.t) {
      case 'capture': {
        const draft = draftOf(o.c);
        const result =
          o.via === 'poster'
            ? await poster.post(draft)
            : o.via === 'direct'
              ? ((await postInTransaction(db, [draft]))[0] as PostResult)
              : await db.transaction(async (trx) => (await postInTransaction(trx, [draft]))[0] as PostResult);
        expectResult(result, draft, model.apply(draft));
        break;
      }
      case 'batch': {
        const drafts = o.cs.map(draftOf);
        const results = await postInTransaction(db, drafts);
        expect(results).toHaveLength(drafts.length);
        drafts.forEach((d, j) => expectResult(results[j] as PostResult, d, model.apply(d)));
        break;
      }
      case 'burst': {
        const drafts = o.cs.map(draftOf);
        // Optionally one bad posting among them: a void of a hold that is already resolved. It must
        // fail alone; its neighbours in the same group-commit batch must still land.
        const resolved = model.holds.filter((h) => h.resolution !== null);
        const stale_hold = o.stale === null || resolved.length === 0 ? null : (resolved[o.stale % resolved.length] as ModelHold);
        const stale = stale_hold === null ? null : voidPendingPosting(await findHold(db, stale_hold.reference), `${stale_hold.reference}:stale${i}`);
        const promises = drafts.map((d) => poster.post(d));
        const stale_promise = stale === null ? null : rejection(poster.post(stale));
        const results = await Promise.all(promises);
        drafts.forEach((d, j) => expectResult(results[j] as PostResult, d, model.apply(d)));
        if (stale_promise !== null) expect(await stale_promise).toMatchObject({ constraint: 'ledger_transaction_resolves_once' });
        break;
      }
      case 'hold': {
        const psp: AccountRef = ACCOUNTS.psp_receivable;
        const [debit, credit] =
          o.shape === 'seller_to_psp' ? [seller(o.a), psp] : o.shape === 'psp_to_seller' ? [psp, seller(o.a)] : [seller(o.a), seller(o.a + 1 + o.b)];
        const transfer: TransferDraft = { reference: `${prefix}_hold${i}`, description: 'property hold', currency: o.currency, debit, credit, amount_minor: o.amount, merchant_id: M };
        const result = await createHold(db, transfer, HOUR_MS);
        expect(result.created).toBe(true);
        model.references.add(transfer.reference);
        model.move(debit, o.currency, 0n, o.amount);
        model.move(credit, o.currency, 0n, -o.amount);
        model.holds.push({ reference: transfer.reference, debit, credit, currency: o.currency, amount: o.amount, resolution: null });
        break;
      }
      case 'post':
      case 'void': {
        if (model.holds.length === 0) break;
        const h = model.holds[o.hold % model.holds.length] as ModelHold;
        const reference = `${h.reference}:${o.t}${i}`;
        if (h.resolution !== null) {
          // already posted or voided: refused, and nothing changes
          await expectCode(o.t === 'post' ? postHold(db, h.reference, 1n, reference) : voidHold(db, h.reference, reference), 'hold_already_resolved');
          break;
        }
        if (o.t === 'post') {
          const amount = o.amount === 'full' ? h.amount : 1n + ((o.amount - 1n) % h.amount);
          expect((await postHold(db, h.reference, amount, reference)).created).toBe(true);
          h.resolution = { kind: 'post', reference, amount };
          model.move(h.debit, h.currency, amount, -h.amount);
          model.move(h.credit, h.currency, -amount, h.amount);
        } else {
          expect((await voidHold(db, h.reference, reference)).created).toBe(true);
          h.resolution = { kind: 'void', reference };
          model.move(h.debit, h.currency, 0n, -h.amount);
          model.move(h.credit, h.currency, 0n, h.amount);
        }
        model.references.add(reference);
        break;
      }
      case 'retry': {
        const resolved = model.holds.filter((h) => h.resolution !== null);
        if (resolved.length === 0) break;
        const h = resolved[o.hold % resolved.length] as ModelHold;
        const r = h.resolution as NonNullable<ModelHold['resolution']>;
        const result = r.kind === 'post' ? await postHold(db, h.reference, r.amount, r.reference) : await voidHold(db, h.reference, r.reference);
        expect(result.created).toBe(false);
        break;
      }
    }
  }

  await expectLedgerClean();
  expect(comparable(await dbBalances())).toEqual(comparable(model.balances));
}

// ---------------------------------------------------------------------------------------------

describe('ledger properties against PostgreSQL', () => {
  it('random posting sequences keep every invariant and match an in-memory model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30, size: 'max' }), runSequence),
      { numRuns: 15 },
    );
  });

  it('hold → partial post → the rest is released; a later void is refused', async () => {
    const s = uid('s_partial');
    const reference = uid('hold_partial');
    const psp_before = (await accountBalances(db, 'psp_receivable', 'USD'))[0];
    await createHold(db, { reference, description: 'partial', currency: 'USD', debit: ACCOUNTS.psp_receivable, credit: ACCOUNTS.sellerPayable(M, s), amount_minor: 1000n, merchant_id: M }, HOUR_MS);
    expect(await sellerBalance(s)).toEqual({ available: 0n, pending: 1000n });

    expect((await postHold(db, reference, 600n, `${reference}:post`)).created).toBe(true);
    expect(await sellerBalance(s)).toEqual({ available: 600n, pending: 0n });
    const psp_after = (await accountBalances(db, 'psp_receivable', 'USD'))[0];
    expect((psp_after?.posted_minor ?? 0n) - (psp_before?.posted_minor ?? 0n)).toBe(600n);
    expect((psp_after?.pending_minor ?? 0n) - (psp_before?.pending_minor ?? 0n)).toBe(0n);

    await expectCode(voidHold(db, reference, `${reference}:void`), 'hold_already_resolved');
    await expectCode(postHold(db, reference, 400n, `${reference}:post2`), 'hold_already_resolved');
    expect(await sellerBalance(s)).toEqual({ available: 600n, pending: 0n });
    await expectLedgerClean();
  });

  it('hold → void → pending back to 0, available unchanged; posting after the void is refused', async () => {
    const s = uid('s_void');
    await postInTransaction(db, [capture(uid('ord'), s, 'USD', 5000n, 500n, 100n)]);
    const reference = uid('hold_void');
    await createHold(db, { reference, description: 'void', currency: 'USD', debit: ACCOUNTS.psp_receivable, credit: ACCOUNTS.sellerPayable(M, s), amount_minor: 1000n, merchant_id: M }, HOUR_MS);
    expect(await sellerBalance(s)).toEqual({ available: 4500n, pending: 1000n });
    expect((await voidHold(db, reference, `${reference}:void`)).created).toBe(true);
    expect(await sellerBalance(s)).toEqual({ available: 4500n, pending: 0n });
    await expectCode(postHold(db, reference, 1000n, `${reference}:post`), 'hold_already_resolved');
    expect(await sellerBalance(s)).toEqual({ available: 4500n, pending: 0n });
    await expectLedgerClean();
  });

  it('an expired hold is voided by expireHolds and cannot be posted afterwards', async () => {
    const s = uid('s_expire');
    const reference = uid('hold_expire');
    await createHold(db, { reference, description: 'expires', currency: 'USD', debit: ACCOUNTS.psp_receivable, credit: ACCOUNTS.sellerPayable(M, s), amount_minor: 700n, merchant_id: M }, 1);
    await new Promise((r) => setTimeout(r, 50));
    // past its expiry but not yet swept: posting it is refused as expired
    await expectCode(postHold(db, reference, 700n, `${reference}:early_post`), 'hold_expired');
    expect(await sellerBalance(s)).toEqual({ available: 0n, pending: 700n });
    expect(await expireHolds(db, 10)).toBeGreaterThanOrEqual(1);
    expect(await sellerBalance(s)).toEqual({ available: 0n, pending: 0n });
    const [expiry] = await db('ledger_transaction').where({ reference: `${reference}:expired` }).select('kind');
    expect(expiry).toEqual({ kind: 'void_pending' });
    await expectCode(postHold(db, reference, 700n, `${reference}:post`), 'hold_expired', 'hold_already_resolved');
    await expectCode(voidHold(db, reference, `${reference}:void`), 'hold_already_resolved');
    expect(await expireHolds(db, 10)).toBe(0);
    expect(await sellerBalance(s)).toEqual({ available: 0n, pending: 0n });
    await expectLedgerClean();
  });

  it('a post and a void racing for the same hold: exactly one wins, the other is refused', async () => {
    const s = uid('s_race');
    const holds = Array.from({ length: 12 }, () => uid('hold_race'));
    for (const reference of holds) {
      await createHold(db, { reference, description: 'race', currency: 'USD', debit: ACCOUNTS.psp_receivable, credit: ACCOUNTS.sellerPayable(M, s), amount_minor: 100n, merchant_id: M }, HOUR_MS);
    }
    const outcomes = await Promise.all(holds.map((h) => Promise.allSettled([postHold(db, h, 60n, `${h}:post`), voidHold(db, h, `${h}:void`)])));
    let posted = 0n;
    for (const [post, void_] of outcomes) {
      expect([post?.status, void_?.status].sort()).toEqual(['fulfilled', 'rejected']);
      const loser = (post?.status === 'rejected' ? post : void_) as PromiseRejectedResult;
      expect(loser.reason).toBeInstanceOf(AppError);
      expect((loser.reason as AppError).code).toBe('hold_already_resolved');
      if (post?.status === 'fulfilled') posted += 60n;
    }
    expect(await sellerBalance(s)).toEqual({ available: posted, pending: 0n });
    await expectLedgerClean();
  });

  it('concurrent expiry sweeps void each expired hold exactly once', async () => {
    const s = uid('s_sweep');
    const holds = Array.from({ length: 10 }, () => uid('hold_sweep'));
    for (const reference of holds) {
      await createHold(db, { reference, description: 'sweep', currency: 'USD', debit: ACCOUNTS.psp_receivable, credit: ACCOUNTS.sellerPayable(M, s), amount_minor: 100n, merchant_id: M }, 1);
    }
    await new Promise((r) => setTimeout(r, 50));
    await Promise.all([0, 1, 2, 3].map(() => expireHolds(db, 100)));
    const voids: { n: number }[] = (await db.raw(`select count(*)::int as n from ledger_transaction where kind = 'void_pending' and reference = any(?)`, [holds.map((h) => `${h}:expired`)])).rows;
    expect(voids).toEqual([{ n: holds.length }]);
    expect(await sellerBalance(s)).toEqual({ available: 0n, pending: 0n });
    await expectLedgerClean();
  });

  it('concurrent expiry sweeps together report each expired hold once', async () => {
    const s = uid('s_sweep_count');
    const holds = Array.from({ length: 20 }, () => uid('hold_sweep_count'));
    for (const reference of holds) {
      await createHold(db, { reference, description: 'sweep', currency: 'USD', debit: ACCOUNTS.psp_receivable, credit: ACCOUNTS.sellerPayable(M, s), amount_minor: 100n, merchant_id: M }, 1);
    }
    await new Promise((r) => setTimeout(r, 50));
    const expired_before = Number((await db('ledger_transaction').where('reference', 'like', '%:expired').count<{ n: string }[]>('* as n'))[0]?.n);
    const reported = (await Promise.all([0, 1, 2, 3].map(() => expireHolds(db, 100)))).reduce((a, b) => a + b, 0);
    const expired_after = Number((await db('ledger_transaction').where('reference', 'like', '%:expired').count<{ n: string }[]>('* as n'))[0]?.n);
    expect(expired_after - expired_before).toBe(holds.length);
    expect(reported).toBe(expired_after - expired_before); // fails today: 4 overlapping sweeps report up to 80 for 20 holds
  });

  describe('32 parallel postings to one seller over a pool of 16 connections land exactly', () => {
    const N = 32;
    const drafts = (s: string) =>
      Array.from({ length: N }, (_, i) => {
        const amount = BigInt(1_000 + i * 37);
        return capture(uid(`par_${s}`), s, 'USD', amount, BigInt(i * 3), BigInt(i));
      });
    const expected = (ds: PostingDraft[], s: string) =>
      ds.reduce((sum, d) => sum - d.entries.filter((e) => e.account.code === ACCOUNTS.sellerPayable(M, s).code).reduce((a, e) => a + e.amount_minor, 0n), 0n);

    // One LedgerPoster has one batch in flight at a time (group commit), so 32 posts through it
    // reach PostgreSQL as a few batches; four posters sharing the pool (as four worker processes
    // would) and bare postInTransaction calls make the statements really race for the rows.
    // A fresh seller each time: the first postings also race to create the seller's account.
    it.each(['LedgerPoster.post (one poster)', 'LedgerPoster.post (four posters)', 'postInTransaction'] as const)('%s', async (via) => {
      const s = uid('s_parallel');
      const ds = drafts(s);
      const posters = via === 'LedgerPoster.post (four posters)' ? [0, 1, 2, 3].map(() => new LedgerPoster(db)) : [poster];
      const results = await Promise.allSettled(
        ds.map((d, i) => (via === 'postInTransaction' ? postInTransaction(db, [d]).then((r) => r[0] as PostResult) : (posters[i % posters.length] as LedgerPoster).post(d))),
      );
      const failures = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
      expect(failures).toEqual([]); // no deadlock, no serialization error, nothing lost
      expect(results.every((r) => r.status === 'fulfilled' && r.value.created)).toBe(true);
      expect(await sellerBalance(s)).toEqual({ available: expected(ds, s), pending: 0n });
      const [{ n }] = (await db.raw(`select count(*)::int as n from ledger_transaction where reference = any(?)`, [ds.map((d) => d.reference)])).rows;
      expect(n).toBe(N);
      await expectLedgerClean();
    });
  });

  describe('PostgreSQL itself refuses an unbalanced transaction at commit', () => {
    async function accountId(code: string, currency: string, type: 'asset' | 'liability' | 'revenue' | 'expense'): Promise<string> {
      await db.raw(
        `insert into ledger_account (code, currency, type, normal_balance) values (?, ?, ?, ?) on conflict (code, currency) do nothing`,
        [code, currency, type, type === 'asset' || type === 'expense' ? 'debit' : 'credit'],
      );
      return String((await db('ledger_account').where({ code, currency }).first('id')).id);
    }
    type RawEntry = { account: 'psp_receivable' | 'platform_revenue'; currency: Currency; phase: 'posted' | 'pending'; amount: bigint };
    const rawEntry: fc.Arbitrary<RawEntry> = fc.record({
      account: fc.constantFrom('psp_receivable' as const, 'platform_revenue' as const),
      currency: fc.constantFrom(...CURRENCIES),
      phase: fc.constantFrom('posted' as const, 'pending' as const),
      amount: fc.oneof(fc.bigInt({ min: -1000n, max: 1000n }), fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n })).filter((a) => a !== 0n),
    });
    // Unbalanced in some (currency, phase) group — which includes one entry alone, or +x posted/−x pending,
    // or +x USD/−x JPY: sums that are zero only when currencies or phases are mixed.
    const unbalanced = fc.oneof(
      fc.array(rawEntry, { minLength: 1, maxLength: 6 }),
      fc.tuple(rawEntry, fc.boolean()).map(([e, by_currency]): RawEntry[] => [
        e,
        by_currency ? { ...e, account: 'platform_revenue', currency: e.currency === 'USD' ? 'JPY' : 'USD', amount: -e.amount } : { ...e, account: 'platform_revenue', phase: e.phase === 'posted' ? 'pending' : 'posted', amount: -e.amount },
      ]),
    ).filter((es) => {
      const sums = new Map<string, bigint>();
      for (const e of es) sums.set(`${e.currency}|${e.phase}`, (sums.get(`${e.currency}|${e.phase}`) ?? 0n) + e.amount);
      return [...sums.values()].some((s) => s !== 0n);
    });

    it('for any unbalanced set of entries the commit fails and nothing is stored', async () => {
      const ids = new Map<string, string>();
      for (const c of CURRENCIES) {
        ids.set(`psp_receivable|${c}`, await accountId('psp_receivable', c, 'asset'));
        ids.set(`platform_revenue|${c}`, await accountId('platform_revenue', c, 'revenue'));
      }
      const before = await counts();
      await fc.assert(
        fc.asyncProperty(unbalanced, async (entries) => {
          const reference = uid('raw_unbalanced');
          const err = await rejection(
            db.transaction(async (trx) => {
              const [{ id }] = await trx('ledger_transaction').insert({ reference, description: 'raw unbalanced', kind: 'posting' }).returning('id');
              await trx('ledger_entry').insert(
                entries.map((e) => ({ transaction_id: id, account_id: ids.get(`${e.account}|${e.currency}`), amount_minor: e.amount.toString(), currency: e.currency, phase: e.phase })),
              );
            }),
          );
          expect(String((err as Error).message)).toMatch(/unbalanced|fewer than two entries/);
          expect(await db('ledger_transaction').where({ reference }).first()).toBeUndefined();
        }),
        { numRuns: 25 },
      );
      expect(await counts()).toEqual(before);
      await expectLedgerClean();
    });
    // The check at commit must see every entry of the transaction, including entries added after
    // an earlier check of the same transaction passed (SET CONSTRAINTS ALL IMMEDIATE runs the
    // deferred checks early; the trigger is DEFERRABLE, so any session may do that). The probe
    // always rolls back, so nothing unbalanced is left behind even when the check is missed.
    async function lateEntryProbe(late_entry_id: number | null): Promise<void> {
      const ids = [await accountId('psp_receivable', 'USD', 'asset'), await accountId('platform_revenue', 'USD', 'revenue')];
      const before = await counts();
      const err = await rejection(
        db.transaction(async (trx) => {
          const [{ id }] = await trx('ledger_transaction').insert({ reference: uid('raw_late'), description: 'late entry', kind: 'posting' }).returning('id');
          await trx('ledger_entry').insert([
            { transaction_id: id, account_id: ids[0], amount_minor: '100', currency: 'USD', phase: 'posted' },
            { transaction_id: id, account_id: ids[1], amount_minor: '-100', currency: 'USD', phase: 'posted' },
          ]);
          await trx.raw('set constraints all immediate'); // balanced so far: passes
          await trx.raw('set constraints all deferred');
          await trx('ledger_entry').insert({ ...(late_entry_id === null ? {} : { id: late_entry_id }), transaction_id: id, account_id: ids[0], amount_minor: '50', currency: 'USD', phase: 'posted' });
          await trx.raw('set constraints all immediate'); // must raise now (else commit would let it through)
          throw new Error('not refused: probe rolls back');
        }),
      );
      expect(String((err as Error).message)).toMatch(/unbalanced/);
      expect(await counts()).toEqual(before);
    }

    it('an unbalanced entry added after an early check passed is still refused', async () => {
      await lateEntryProbe(null);
    });

    it('an unbalanced entry with an explicit lower id added after an early check is still refused', async () => {
      await lateEntryProbe(-1);
    });

    it('a transaction with no entries at all is refused at commit too', async () => {
      const err = await rejection(
        db.transaction(async (trx) => {
          await trx('ledger_transaction').insert({ reference: uid('raw_empty'), description: 'no entries', kind: 'posting' });
          await trx.raw('set constraints all immediate');
          throw new Error('probe only: roll back');
        }),
      );
      expect(String((err as Error).message)).toMatch(/fewer than two entries/); // fails today: "probe only: roll back"
    });
  });

  describe('a draft built by code that is not balanced is refused before anything is written', () => {
    const good = () => capture(uid('ord_good'), 's0', 'USD', 1000n, 30n, 20n);
    const bad = fc.oneof(
      // one entry's amount changed: the posting no longer sums to zero
      fc.tuple(fc.nat(), fc.bigInt({ min: 1n, max: 10n ** 9n })).map(([i, delta]) => {
        const d = good();
        const j = i % d.entries.length;
        return { ...d, entries: d.entries.map((e, k) => (k === j ? { ...e, amount_minor: e.amount_minor + delta } : e)) };
      }),
      // balanced in total but across phases (+x posted, −x pending)
      fc.bigInt({ min: 1n, max: 10n ** 9n }).map((x): PostingDraft => ({
        ...good(),
        entries: [
          { account: ACCOUNTS.psp_receivable, amount_minor: x, phase: 'posted' },
          { account: seller(0), amount_minor: -x, phase: 'pending' },
        ],
      })),
      // a single entry, or a zero entry
      fc.bigInt({ min: 1n, max: 10n ** 9n }).map((x): PostingDraft => ({ ...good(), entries: [{ account: ACCOUNTS.psp_receivable, amount_minor: x, phase: 'posted' }] })),
      fc.constant(0n).map((): PostingDraft => ({ ...good(), entries: [...good().entries, { account: seller(1), amount_minor: 0n, phase: 'posted' }] })),
    );

    it('postInTransaction and LedgerPoster.post throw an assertion, alone or in a batch with good postings', async () => {
      const before = await counts();
      await fc.assert(
        fc.asyncProperty(bad, fc.boolean(), async (draft, with_good) => {
          const batch = with_good ? [good(), draft, good()] : [draft];
          expect(String(await rejection(postInTransaction(db, batch)))).toMatch(/assertion failed/);
          expect(String(await rejection(db.transaction((trx) => postInTransaction(trx, batch))))).toMatch(/assertion failed/);
          expect(() => void poster.post(draft)).toThrow(/assertion failed/); // synchronously, before queueing
        }),
        { numRuns: 40 },
      );
      expect(await counts()).toEqual(before);
    });

    it('mixing currencies is refused by the money arithmetic drafts are built from (assertion)', () => {
      // A PostingDraft has one currency for all its entries, so a mixed-currency posting cannot be
      // expressed; the amounts going into one are summed with addMoney, which refuses to mix.
      expect(() => addMoney({ amount_minor: 100n, currency: 'USD' }, { amount_minor: 100n, currency: 'JPY' })).toThrow(/assertion failed/);
    });
  });
});
