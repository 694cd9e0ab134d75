import type { Knex } from 'knex';
import { assert } from '../domain/assert';
import { assertBalanced, type PostingDraft } from '../domain/ledger';

export interface PostResult {
  reference: string;
  transaction_id: string;
  created: boolean; // false: this reference was posted before, nothing changed now
}

const BATCH_MAX = 256;
// Bounded queue: past this many waiting postings the caller is refused at once (an activity
// retries with backoff) rather than every posting queueing ever longer behind a slow database.
const QUEUE_MAX = 10_000;

function toJson(p: PostingDraft) {
  return {
    reference: p.reference,
    description: p.description,
    kind: p.kind,
    currency: p.currency,
    merchant_id: p.merchant_id,
    payment_id: p.payment_id,
    order_id: p.order_id,
    pending_id: p.pending_id,
    expires_at: p.expires_at?.toISOString() ?? null,
    entries: p.entries.map((e) => ({
      account_code: e.account.code,
      account_type: e.account.type,
      merchant_id: e.account.merchant_id ?? null,
      seller_id: e.account.seller_id ?? null,
      amount_minor: e.amount_minor.toString(),
      phase: e.phase,
    })),
  };
}

/** Posts in the caller's transaction (when the posting must commit with other writes). */
export async function postInTransaction(conn: Knex | Knex.Transaction, postings: PostingDraft[]): Promise<PostResult[]> {
  assert(postings.length > 0 && postings.length <= BATCH_MAX, `1..${BATCH_MAX} postings per batch`);
  for (const p of postings) assertBalanced(p);
  const res = await conn.raw<{ rows: PostResult[] }>('select reference, transaction_id::text as transaction_id, created from ledger_post_batch(?::jsonb)', [
    JSON.stringify(postings.map(toJson)),
  ]);
  assert(res.rows.length === postings.length, 'one result per posting');
  return res.rows;
}

interface Waiter {
  posting: PostingDraft;
  resolve(result: PostResult): void;
  reject(err: unknown): void;
}

/**
 * Group commit for postings. While one batch is being written, new postings queue up; when it
 * commits, everything queued goes out as the next batch, in one statement and one commit. At low
 * load a posting goes out alone at once (no added latency); under load, many postings to the same
 * hot accounts share one row lock and one WAL flush instead of queueing for them one by one.
 */
export class LedgerPoster {
  private queue: Waiter[] = [];
  private flushing = false;

  constructor(private readonly db: Knex) {}

  post(posting: PostingDraft): Promise<PostResult> {
    assertBalanced(posting); // fail the caller now, not the batch later
    if (this.queue.length >= QUEUE_MAX) return Promise.reject(new Error(`ledger poster queue full (${QUEUE_MAX} waiting)`));
    return new Promise((resolve, reject) => {
      this.queue.push({ posting, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, BATCH_MAX);
      await this.write(batch);
    }
    this.flushing = false;
  }

  private async write(batch: Waiter[]): Promise<void> {
    try {
      const results = await postInTransaction(this.db, batch.map((w) => w.posting));
      batch.forEach((w, i) => w.resolve(results[i] as PostResult));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]?.reject(err);
        return;
      }
      // One bad posting must not fail its neighbours: split and retry the halves, down to the
      // one that fails (log2(batch) extra round trips, not one per posting).
      const half = Math.ceil(batch.length / 2);
      await this.write(batch.slice(0, half));
      await this.write(batch.slice(half));
    }
  }
}
