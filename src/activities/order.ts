import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { PspChargeSchema, PspError, type PspCharge, type PspClient } from '../psp/client';
import { assert } from '../domain/assert';
import { assertOrderMove, isOrderTerminal, orderStatusesBefore, type OrderStatus } from '../domain/status';
import { storeDerivedStatus } from '../services/payment-status';
import { ACCOUNTS, capturePosting, voidPendingPosting, type CapturedOrder, type TransferDraft } from '../domain/ledger';
import { postInTransaction, type LedgerPoster } from '../ledger/poster';
import { createHold, findHold, voidHold } from '../ledger/holds';
import type { ChargeOutcome } from './types';
import { FAILURE_TYPES } from '../workflows/contract';

const PSP_FAILURE_TYPES = { definitive: FAILURE_TYPES.psp_definitive, retryable: FAILURE_TYPES.psp_retryable, unknown_outcome: FAILURE_TYPES.psp_unknown_outcome } as const;

export interface OrderDeps {
  db: Knex;
  psp: PspClient;
  log: Logger;
  ledger: LedgerPoster;
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
  commission_minor: string;
  psp_fee_minor: string | null;
  wallet_updated: boolean;
  ledger_updated: boolean;
  psp_version: number | null;
  next_action_url: string | null;
}

const HEARTBEAT_EVERY_MS = 1_000;

type LoadedOrder = OrderRow & { payment_method: string | null; capture_method: 'automatic' | 'all_or_nothing' };

async function loadOrder(db: Knex | Knex.Transaction, order_id: string): Promise<LoadedOrder> {
  const row = await db('payment_order as o')
    .join('payment_event as p', 'p.id', 'o.payment_id')
    .select('o.*', 'p.payment_method', 'p.capture_method')
    .where('o.id', order_id)
    .first();
  assert(row !== undefined, `order ${order_id} exists`);
  return row;
}

type OutcomeRow = Pick<OrderRow, 'id' | 'status' | 'psp_reference' | 'failure_code' | 'failure_message' | 'psp_version'>;

function outcomeOf(row: OutcomeRow): ChargeOutcome {
  assert(row.status !== 'not_started' && row.status !== 'executing' && row.status !== 'needs_attention', `order ${row.id} has a charge outcome`);
  // Refunded or disputed since: the charge itself succeeded.
  const status = row.status === 'partially_refunded' || row.status === 'refunded' || row.status === 'disputed' ? 'succeeded' : row.status;
  return { order_id: row.id, status, psp_reference: row.psp_reference, failure_code: row.failure_code, failure_message: row.failure_message, psp_version: row.psp_version };
}

function isWaiting(status: OrderStatus): boolean {
  return status === 'pending' || status === 'requires_action';
}

/** Keeps the activity visibly alive while it waits on the PSP, so a dead worker is noticed in seconds. */
export async function withHeartbeat<T>(work: Promise<T>): Promise<T> {
  const ctx = Context.current();
  // A local activity has no heartbeat: its workflow task's timeout notices a dead worker instead.
  if (ctx.info.isLocal) return await work;
  const timer = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

function toActivityFailure(err: PspError): ApplicationFailure {
  return ApplicationFailure.create({
    type: PSP_FAILURE_TYPES[err.kind],
    message: `${err.code}: ${err.message}`,
    // Unknown outcome is retried too: the next attempt asks the PSP by key before charging.
    nonRetryable: false,
    nextRetryDelay: err.retry_after_s === undefined ? undefined : `${err.retry_after_s}s`,
  });
}

const FAILURE_MESSAGE_CHARS_MAX = 1_000;
/** Statuses in which an order has no charge outcome yet. */
const UNCHARGED: ReadonlySet<OrderStatus> = new Set(['not_started', 'executing', 'needs_attention']);

export function rethrowPsp(err: unknown): never {
  throw err instanceof PspError ? toActivityFailure(err) : err;
}

export function createOrderActivities({ db, psp, log, ledger }: OrderDeps) {
  /** Moves a parked (or to-be-parked) order and refreshes its payment's status, in one transaction. */
  async function moveForOperator(order_id: string, to: 'needs_attention' | 'executing', failure: { failure_code: string | null; failure_message: string | null }): Promise<void> {
    const order = await loadOrder(db, order_id);
    if (order.status === to) {
      // A repeat after a crash, or parked again (a failed cancel): keep the newest reason.
      if (to === 'needs_attention') await db('payment_order').where({ id: order_id, status: to }).update({ ...failure, updated_at: db.fn.now() });
      return;
    }
    assertOrderMove(order.status, to);
    await db.transaction(async (trx) => {
      await trx('payment_order').where({ id: order_id, status: order.status }).update({ status: to, ...failure, updated_at: trx.fn.now() });
      await storeDerivedStatus(trx, order.payment_id);
    });
  }

  /**
   * Moves an authorized order on (captured or voided) and writes its books in one transaction;
   * only the transaction that moved it writes them, so a repeat after a crash books nothing twice.
   */
  async function resolveAuthorization(order_id: string, change: Record<string, unknown>, book: (trx: Knex.Transaction, moved: OrderRow) => Promise<void>): Promise<ChargeOutcome> {
    const row = await db.transaction(async (trx) => {
      const [moved] = await trx('payment_order')
        .where({ id: order_id, status: 'authorized' })
        .update({ ...change, updated_at: trx.fn.now() })
        .returning<OrderRow[]>('*');
      if (moved === undefined) return await loadOrder(trx, order_id);
      await book(trx, moved);
      return moved;
    });
    return outcomeOf(row);
  }

  /** Void an authorization, refund a capture; a decline or a void/refund already done needs nothing. */
  async function giveBack(charge: PspCharge, order_id: string): Promise<PspCharge> {
    const key = `${order_id}:cancel`;
    if (charge.status === 'authorized') return await withHeartbeat(psp.voidCharge(charge.id, key)).catch(rethrowPsp);
    if (charge.status === 'succeeded') return await withHeartbeat(psp.refundCharge(charge.id, key)).catch(rethrowPsp);
    if (charge.status === 'pending' || charge.status === 'requires_action') {
      throw ApplicationFailure.nonRetryable(`charge ${charge.id} is still ${charge.status} at the PSP; cancel once it is decided`, FAILURE_TYPES.charge_undecided);
    }
    return charge;
  }

  /**
   * Moves the order to the outcome, forward only: a terminal order, or news older than what is
   * stored (by the PSP's charge version), changes nothing and the stored state is answered.
   * The PSP's fee is recorded once, from the figure it returns with the capture. A capture is
   * booked in the same transaction (wallet = seller payable, one balanced posting): only the
   * transaction that moved the order books, so the money and the status never disagree.
   */
  async function applyOutcome(order: OrderRow, outcome: ChargeOutcome, extra: { psp_fee_minor?: string; next_action_url?: string | null } = {}): Promise<ChargeOutcome> {
    assertOrderMove(order.status, outcome.status);
    const { status, psp_reference, failure_code, failure_message } = outcome;
    const version = outcome.psp_version ?? null;
    const row = await db.transaction(async (trx) => {
      const query = trx('payment_order').where({ id: order.id }).whereIn('status', orderStatusesBefore(status));
      if (version !== null) query.andWhere((q) => q.whereNull('psp_version').orWhere('psp_version', '<=', version));
      const updated = await query
        .update({
          status,
          psp_reference,
          failure_code,
          failure_message,
          psp_fee_minor: extra.psp_fee_minor ?? null,
          next_action_url: extra.next_action_url ?? null,
          wallet_updated: status === 'succeeded',
          ledger_updated: status === 'succeeded',
          ...(version === null ? {} : { psp_version: version }),
          updated_at: trx.fn.now(),
        })
        .returning<OrderRow[]>('*');
      const moved = updated[0];
      if (moved?.status === 'succeeded') await postInTransaction(trx, [capturePosting(capturedOrder(moved))]);
      // Nothing updated: a concurrent attempt or newer news came first; the stored state wins.
      const current = moved ?? (await loadOrder(trx, order.id));
      // The payment shows the wait (and its end) while it lasts, not only once it completes.
      if (isWaiting(order.status) || isWaiting(current.status)) await storeDerivedStatus(trx, order.payment_id);
      return current;
    });
    log.info({ order_id: order.id, payment_id: order.payment_id, psp_reference: row.psp_reference, status: row.status, psp_version: row.psp_version }, 'order charge outcome');
    return outcomeOf(row);
  }

  /** Applies a PSP charge (from a webhook or a poll) to its order, if it is news. */
  async function applyCharge(order: OrderRow, charge: PspCharge): Promise<ChargeOutcome> {
    if (isOrderTerminal(order.status)) return outcomeOf(order);
    const outcome = outcomeOfCharge(order, charge);
    if (order.psp_version !== null && charge.version < order.psp_version) return outcomeOf(order);
    return await applyOutcome(order, outcome, {
      psp_fee_minor: charge.status === 'succeeded' ? charge.fee : undefined,
      next_action_url: charge.next_action?.redirect_url ?? null,
    });
  }

  async function chargeAtPsp(order: LoadedOrder): Promise<PspCharge> {
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
      // All-or-nothing: authorize now, capture once every order of the payment is authorized.
      capture: order.capture_method !== 'all_or_nothing',
    });
  }

  /**
   * The books of a capture as a step of their own, for legacy order workflows (v1–v6; a capture
   * charged since is booked with its outcome, so this finds the posting and changes nothing). One
   * balanced posting; its unique reference makes a repeat a no-op, and the flags follow it.
   */
  async function recordCapture(order_id: string): Promise<void> {
    const order = await loadOrder(db, order_id);
    assert(order.status === 'succeeded', `order ${order_id} is captured before its books are written`);
    const result = await ledger.post(capturePosting(capturedOrder(order)));
    await db('payment_order')
      .where({ id: order_id })
      .andWhere((q) => q.where({ wallet_updated: false }).orWhere({ ledger_updated: false }))
      .update({ wallet_updated: true, ledger_updated: true, updated_at: db.fn.now() });
    // The ledger transaction is the record; the line is for debugging (one per order, hot path).
    log.debug({ order_id, payment_id: order.payment_id, seller_id: order.seller_id, transaction_id: result.transaction_id, created: result.created }, 'capture recorded');
  }

  return {
    /**
     * PSP charge for one order. Idempotent: a charged order answers from the database. The
     * outcome may be a wait (`pending`, `requires_action`), which the workflow then sits out.
     */
    async chargeOrder(order_id: string): Promise<ChargeOutcome> {
      const order = await loadOrder(db, order_id);
      if (isOrderTerminal(order.status)) return outcomeOf(order);
      try {
        const charge = await withHeartbeat(chargeAtPsp(order));
        return await applyCharge(order, charge);
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

    /** A verified webhook's charge, passed on by the workflow's `pspUpdate` signal. */
    async applyChargeUpdate(order_id: string, charge: PspCharge): Promise<ChargeOutcome> {
      return await applyCharge(await loadOrder(db, order_id), PspChargeSchema.parse(charge));
    },

    /** No news for a while: ask the PSP (a lost webhook only delays the result). */
    async pollCharge(order_id: string): Promise<ChargeOutcome> {
      const order = await loadOrder(db, order_id);
      if (isOrderTerminal(order.status)) return outcomeOf(order);
      try {
        const charge = await withHeartbeat(order.psp_reference === null ? psp.findChargeByIdempotencyKey(order.id) : psp.getCharge(order.psp_reference));
        assert(charge !== null, `order ${order_id} waits on a charge the PSP knows`);
        return await applyCharge(order, charge);
      } catch (err) {
        if (!(err instanceof PspError)) throw err;
        log.warn({ order_id, kind: err.kind, code: err.code }, 'psp poll failed');
        throw toActivityFailure(err);
      }
    },

    /**
     * Dead letter: the PSP step ran out of retries. The order waits for an operator with the last
     * error as its reason; nothing about the charge is assumed (the PSP may or may not have it).
     * But an attempt may have done its work and died before reporting it (a worker killed after
     * the database write): if the order already moved past what the step was for — charged
     * (`charge`) or decided (`decision`) — that outcome is answered instead and nothing is parked.
     */
    async parkOrder(order_id: string, reason: string, step: 'charge' | 'decision' = 'charge'): Promise<ChargeOutcome | null> {
      const order = await loadOrder(db, order_id);
      const done = step === 'charge' ? !UNCHARGED.has(order.status) : isOrderTerminal(order.status);
      if (done) {
        log.info({ order_id, status: order.status, reason }, 'order not parked: the step had already done its work');
        return outcomeOf(order);
      }
      await moveForOperator(order_id, 'needs_attention', { failure_code: 'retries_exhausted', failure_message: reason.slice(0, FAILURE_MESSAGE_CHARS_MAX) });
      log.warn({ order_id, reason }, 'order needs attention');
      return null;
    },

    /** An operator's retry: the parked order goes back to `executing` and is charged again (same key). */
    async resumeOrder(order_id: string): Promise<void> {
      await moveForOperator(order_id, 'executing', { failure_code: null, failure_message: null });
      log.info({ order_id }, 'order retried by an operator');
    },

    /**
     * An operator's cancel. A charge the PSP may hold is given back first: an authorization is
     * voided, a capture refunded; an undecided charge cannot be cancelled yet (non-retryable).
     */
    async cancelOrder(order_id: string, reason: string): Promise<ChargeOutcome> {
      const order = await loadOrder(db, order_id);
      if (isOrderTerminal(order.status)) return outcomeOf(order);
      assert(order.status === 'needs_attention', `order ${order_id} is parked before it is cancelled`);
      const charge = order.charge_attempts === 0 ? null : await withHeartbeat(psp.findChargeByIdempotencyKey(order.id)).catch(rethrowPsp);
      const given_back = charge === null ? null : await giveBack(charge, order.id);
      await db.transaction(async (trx) => {
        await trx('payment_order')
          .where({ id: order_id, status: 'needs_attention' })
          .update({ status: 'canceled', failure_code: 'canceled_by_operator', failure_message: reason.slice(0, FAILURE_MESSAGE_CHARS_MAX), psp_reference: given_back?.id ?? order.psp_reference, updated_at: trx.fn.now() });
        await storeDerivedStatus(trx, order.payment_id);
      });
      log.info({ order_id, psp_reference: given_back?.id ?? null, psp_status: given_back?.status ?? null }, 'order cancelled by an operator');
      return outcomeOf(await loadOrder(db, order_id));
    },

    /** The authorization in the books: the amount held in pending balances (psp_receivable / seller). */
    async recordAuthorization(order_id: string): Promise<void> {
      const order = await loadOrder(db, order_id);
      assert(order.status === 'authorized', `order ${order_id} is authorized before its hold is written`);
      const result = await createHold(db, authorizationTransfer(order), AUTHORIZATION_TTL_MS);
      log.info({ order_id, transaction_id: result.transaction_id, created: result.created }, 'authorization held');
    },

    /**
     * Takes the money of an authorized order: PSP capture (its key is per order), then in one
     * database transaction the order's status, the hold's release and the capture posting.
     */
    async captureOrder(order_id: string): Promise<ChargeOutcome> {
      const order = await loadOrder(db, order_id);
      if (order.status === 'succeeded') return outcomeOf(order);
      assert(order.status === 'authorized' && order.psp_reference !== null, `order ${order_id} is authorized before capture`);
      const charge = await withHeartbeat(psp.captureCharge(order.psp_reference, `${order_id}:capture`)).catch(rethrowPsp);
      assert(charge.status === 'succeeded', `capture of ${charge.id} answered ${charge.status}`);
      const change = { status: 'succeeded', psp_fee_minor: charge.fee, psp_version: charge.version, wallet_updated: true, ledger_updated: true };
      const outcome = await resolveAuthorization(order_id, change, async (trx, captured) => {
        const hold = await findHold(trx, authorizationReference(order_id));
        await postInTransaction(trx, [voidPendingPosting(hold, `${hold.reference}:released`, 'authorization captured'), capturePosting(capturedOrder(captured))]);
      });
      log.info({ order_id, psp_reference: charge.id }, 'authorization captured');
      return outcome;
    },

    /** Releases an authorized order: PSP void, then the order (canceled) and the hold's void together. */
    async voidOrder(order_id: string, reason: string): Promise<ChargeOutcome> {
      const order = await loadOrder(db, order_id);
      if (isOrderTerminal(order.status)) return outcomeOf(order);
      assert(order.status === 'authorized' && order.psp_reference !== null, `order ${order_id} is authorized before a void`);
      const charge = await withHeartbeat(psp.voidCharge(order.psp_reference, `${order_id}:void`)).catch(rethrowPsp);
      assert(charge.status === 'canceled', `void of ${charge.id} answered ${charge.status}`);
      const change = { status: 'canceled', failure_code: 'authorization_voided', failure_message: reason.slice(0, FAILURE_MESSAGE_CHARS_MAX), psp_version: charge.version };
      const outcome = await resolveAuthorization(order_id, change, async (trx) => {
        await voidHold(trx, authorizationReference(order_id), `${authorizationReference(order_id)}:void`);
      });
      log.info({ order_id, psp_reference: charge.id }, 'authorization voided');
      return outcome;
    },

    recordCapture,
    // The two steps of workflows started before the books became one posting (see the patch in
    // PaymentOrderWorkflow): each does the whole step, which is idempotent.
    creditWallet: recordCapture,
    postLedger: recordCapture,
  };
}

// Card authorizations last about a week; an authorization not captured or voided by then is
// released by the hold-expiry sweep (src/ledger/holds.ts), as the PSP would drop it.
const AUTHORIZATION_TTL_MS = 7 * 24 * 3_600_000;

const authorizationReference = (order_id: string): string => `order:${order_id}:authorization`;

function authorizationTransfer(order: OrderRow): TransferDraft {
  return {
    reference: authorizationReference(order.id),
    description: 'order authorized (all or nothing)',
    currency: order.currency,
    debit: ACCOUNTS.psp_receivable,
    credit: ACCOUNTS.sellerPayable(order.merchant_id, order.seller_id),
    amount_minor: BigInt(order.amount_minor),
    merchant_id: order.merchant_id,
    payment_id: order.payment_id,
    order_id: order.id,
  };
}

function capturedOrder(order: OrderRow): CapturedOrder {
  assert(order.psp_fee_minor !== null, `order ${order.id} has the PSP's fee`);
  return {
    order_id: order.id,
    payment_id: order.payment_id,
    merchant_id: order.merchant_id,
    seller_id: order.seller_id,
    currency: order.currency,
    amount_minor: BigInt(order.amount_minor),
    commission_minor: BigInt(order.commission_minor),
    psp_fee_minor: BigInt(order.psp_fee_minor),
  };
}

/** Charge statuses an order takes over as they are; the others only follow our own void/refund. */
const CHARGE_TO_ORDER_STATUS = { succeeded: 'succeeded', failed: 'failed', pending: 'pending', requires_action: 'requires_action', authorized: 'authorized' } as const;

function outcomeOfCharge(order: OrderRow, charge: PspCharge): ChargeOutcome {
  assert(charge.order_reference === order.id, `PSP charge ${charge.id} belongs to order ${order.id}`);
  assert(BigInt(charge.amount) === BigInt(order.amount_minor), `PSP charge ${charge.id} amount matches the order`);
  assert(charge.status in CHARGE_TO_ORDER_STATUS, `PSP charge ${charge.id} is ${charge.status}, which an automatic-capture order never asks for`);
  const status = CHARGE_TO_ORDER_STATUS[charge.status as keyof typeof CHARGE_TO_ORDER_STATUS];
  return { order_id: order.id, status, psp_reference: charge.id, failure_code: charge.failure_code, failure_message: charge.failure_message, psp_version: charge.version };
}
