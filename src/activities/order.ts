import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { PspError, type PspCharge, type PspClient } from '../psp/client';
import { assert } from '../domain/assert';
import { assertOrderMove, type OrderStatus } from '../domain/status';
import { capturePosting } from '../domain/ledger';
import { splitCommission } from '../domain/money';
import { postTransaction } from '../ledger/store';
import type { ChargeOutcome } from './types';

export interface OrderDeps {
  db: Knex;
  psp: PspClient;
  log: Logger;
}

interface OrderRow {
  id: string;
  payment_id: string;
  merchant_id: string;
  seller_id: string;
  amount_minor: string;
  currency: string;
  status: OrderStatus;
  psp_reference: string | null;
  failure_code: string | null;
  failure_message: string | null;
  charge_attempts: number;
  commission_bps: number;
  wallet_updated: boolean;
  ledger_updated: boolean;
}

const HEARTBEAT_EVERY_MS = 1_000;

async function loadOrder(db: Knex, order_id: string): Promise<OrderRow & { payment_method: string | null }> {
  const row = await db('payment_order as o')
    .join('payment_event as p', 'p.id', 'o.payment_id')
    .select('o.*', 'p.payment_method')
    .where('o.id', order_id)
    .first();
  assert(row !== undefined, `order ${order_id} exists`);
  return row;
}

function outcomeOf(row: Pick<OrderRow, 'id' | 'status' | 'psp_reference' | 'failure_code' | 'failure_message'>): ChargeOutcome {
  assert(row.status === 'succeeded' || row.status === 'failed', `order ${row.id} is terminal`);
  return { order_id: row.id, status: row.status, psp_reference: row.psp_reference, failure_code: row.failure_code, failure_message: row.failure_message };
}

/** Keeps the activity visibly alive while it waits on the PSP, so a dead worker is noticed in seconds. */
async function withHeartbeat<T>(work: Promise<T>): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

function toActivityFailure(err: PspError): ApplicationFailure {
  return ApplicationFailure.create({
    type: `Psp_${err.kind}`,
    message: `${err.code}: ${err.message}`,
    // Unknown outcome is retried too: the next attempt asks the PSP by key before charging.
    nonRetryable: false,
    nextRetryDelay: err.retry_after_s === undefined ? undefined : `${err.retry_after_s}s`,
  });
}

export function createOrderActivities({ db, psp, log }: OrderDeps) {
  async function applyOutcome(order: OrderRow, outcome: ChargeOutcome): Promise<ChargeOutcome> {
    assertOrderMove(order.status, outcome.status);
    const { status, psp_reference, failure_code, failure_message } = outcome;
    const updated = await db('payment_order')
      .where({ id: order.id })
      .whereIn('status', ['not_started', 'executing'])
      .update({ status, psp_reference, failure_code, failure_message, updated_at: db.fn.now() })
      .returning<OrderRow[]>('*');
    // Nothing updated: a concurrent attempt finished first; its stored result wins.
    const row = updated[0] ?? (await loadOrder(db, order.id));
    log.info({ order_id: order.id, payment_id: order.payment_id, psp_reference: row.psp_reference, status: row.status }, 'order charged');
    return outcomeOf(row);
  }

  async function chargeAtPsp(order: OrderRow & { payment_method: string | null }): Promise<PspCharge> {
    assert(order.payment_method !== null, `order ${order.id} has a payment method`);
    // A previous attempt may have reached the PSP (we crashed or timed out after sending): ask
    // first, and only a confirmed "no charge" allows sending again, with the same key.
    if (order.charge_attempts > 0) {
      const existing = await psp.findChargeByIdempotencyKey(order.id);
      if (existing !== null) return existing;
    }
    await db('payment_order')
      .where({ id: order.id })
      .whereIn('status', ['not_started', 'executing'])
      .update({ status: 'executing', charge_attempts: db.raw('charge_attempts + 1'), updated_at: db.fn.now() });
    order.status = 'executing'; // keep the in-memory row in step: the outcome moves from here
    return await psp.createCharge({
      idempotency_key: order.id,
      order_reference: order.id,
      amount_minor: BigInt(order.amount_minor),
      currency: order.currency,
      payment_method: order.payment_method,
    });
  }

  return {
    /** PSP charge for one order. Idempotent: a terminal order answers from the database. */
    async chargeOrder(order_id: string): Promise<ChargeOutcome> {
      const order = await loadOrder(db, order_id);
      if (order.status === 'succeeded' || order.status === 'failed') return outcomeOf(order);
      try {
        const charge = await withHeartbeat(chargeAtPsp(order));
        return await applyOutcome(order, outcomeOfCharge(order, charge));
      } catch (err) {
        if (!(err instanceof PspError)) throw err;
        log.warn({ order_id, payment_id: order.payment_id, kind: err.kind, code: err.code }, 'psp call failed');
        if (err.kind === 'definitive') {
          // A definitive refusal (e.g. an unknown token) ends the order like a decline, with the PSP's code.
          return await applyOutcome(order, { order_id, status: 'failed', psp_reference: null, failure_code: err.code, failure_message: err.message });
        }
        throw toActivityFailure(err);
      }
    },

    /** Credits the seller's wallet once; the flag flips in the same database transaction. */
    async creditWallet(order_id: string): Promise<void> {
      await onceFlagged(db, order_id, 'wallet_updated', async (trx, order) => {
        const { seller_minor } = splitCommission(BigInt(order.amount_minor), order.commission_bps);
        await trx.raw(
          `insert into wallet (merchant_id, seller_id, currency, balance_minor) values (?, ?, ?, ?::bigint)
           on conflict (merchant_id, seller_id, currency)
           do update set balance_minor = wallet.balance_minor + excluded.balance_minor, updated_at = now()`,
          [order.merchant_id, order.seller_id, order.currency, seller_minor.toString()],
        );
        log.info({ order_id, payment_id: order.payment_id, seller_id: order.seller_id }, 'wallet credited');
      });
    },

    /** Posts the capture to the double-entry ledger once (unique reference + flag). */
    async postLedger(order_id: string): Promise<void> {
      await onceFlagged(db, order_id, 'ledger_updated', async (trx, order) => {
        const posted = await postTransaction(trx, capturePosting(orderForPosting(order)));
        assert(posted, `order ${order_id} capture was not posted before its flag was set`);
        log.info({ order_id, payment_id: order.payment_id }, 'ledger posted');
      });
    },
  };
}

/**
 * Runs `work` exactly once per order and flag: the flag flips from false to true in the same
 * transaction as the work, so a repeat (retry, replayed activity) finds it set and does nothing.
 * Only a captured order can flip (the WHERE and a table check constraint both say so).
 */
async function onceFlagged(
  db: Knex,
  order_id: string,
  flag: 'wallet_updated' | 'ledger_updated',
  work: (trx: Knex.Transaction, order: OrderRow) => Promise<void>,
): Promise<void> {
  await db.transaction(async (trx) => {
    const flipped = await trx('payment_order')
      .where({ id: order_id, status: 'succeeded', [flag]: false })
      .update({ [flag]: true, updated_at: trx.fn.now() })
      .returning<OrderRow[]>('*');
    const order = flipped[0];
    if (order !== undefined) await work(trx, order);
  });
}

function orderForPosting(order: OrderRow) {
  return {
    order_id: order.id,
    payment_id: order.payment_id,
    merchant_id: order.merchant_id,
    seller_id: order.seller_id,
    currency: order.currency,
    amount_minor: BigInt(order.amount_minor),
    commission_bps: order.commission_bps,
  };
}

function outcomeOfCharge(order: OrderRow, charge: PspCharge): ChargeOutcome {
  assert(charge.order_reference === order.id, `PSP charge ${charge.id} belongs to order ${order.id}`);
  assert(BigInt(charge.amount) === BigInt(order.amount_minor), `PSP charge ${charge.id} amount matches the order`);
  assert(charge.status !== 'pending', 'pending charges arrive with the webhook issue');
  return { order_id: order.id, status: charge.status, psp_reference: charge.id, failure_code: charge.failure_code, failure_message: charge.failure_message };
}
