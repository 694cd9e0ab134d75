import { merchantOf } from './auth';
import { defineRoute, type RouteDef } from './registry';
import { BalanceList, ListBalancesQuery, ListTransactionsQuery, TransactionList } from './schemas';
import { listBalances, listTransactions } from '../ledger/read';

const listBalancesRoute = defineRoute({
  method: 'get',
  path: '/v1/balances',
  operationId: 'listBalances',
  tag: 'ledger',
  summary: 'What each of your sellers is owed, per currency: available and pending (decimal strings)',
  auth: 'merchant',
  query: ListBalancesQuery,
  success: { status: 200, description: 'A page of balances', schema: BalanceList },
  errors: { 400: 'Invalid query' },
  async handle({ deps, res, query }) {
    res.json(await listBalances(deps.db, { merchant_id: merchantOf(res).merchant_id, ...query }));
  },
});

const listTransactionsRoute = defineRoute({
  method: 'get',
  path: '/v1/ledger/transactions',
  operationId: 'listLedgerTransactions',
  tag: 'ledger',
  summary: 'Your ledger transactions with their entries, newest first (cursor pagination)',
  auth: 'merchant',
  query: ListTransactionsQuery,
  success: { status: 200, description: 'A page of transactions', schema: TransactionList },
  errors: { 400: 'Invalid query' },
  async handle({ deps, res, query }) {
    res.json(await listTransactions(deps.db, { merchant_id: merchantOf(res).merchant_id, ...query }));
  },
});

/** Balances per seller and the merchant's ledger. */
export const LEDGER_ROUTES: readonly RouteDef[] = [listBalancesRoute, listTransactionsRoute];
