import { Router } from 'express';
import type { Knex } from 'knex';
import { merchantOf } from './auth';
import { parseWith } from './errors';
import { ListBalancesQuery, ListTransactionsQuery } from './schemas';
import { listBalances, listTransactions } from '../services/ledger-read';

/** GET /v1/balances — what the merchant's sellers are owed, per seller and currency. */
export function balancesRouter(db: Knex): Router {
  const router = Router();
  router.get('/', async (req, res) => {
    const q = parseWith(ListBalancesQuery, req.query);
    res.json(await listBalances(db, { merchant_id: merchantOf(res).merchant_id, ...q }));
  });
  return router;
}

/** GET /v1/ledger/transactions — the merchant's ledger, newest first. */
export function ledgerRouter(db: Knex): Router {
  const router = Router();
  router.get('/transactions', async (req, res) => {
    const q = parseWith(ListTransactionsQuery, req.query);
    res.json(await listTransactions(db, { merchant_id: merchantOf(res).merchant_id, ...q }));
  });
  return router;
}
