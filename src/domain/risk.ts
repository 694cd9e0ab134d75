import { parseCurrencyAmounts } from './money';

/**
 * The seeds' AML/CFT and fraud step. Providers sit behind this interface so an external vendor can
 * replace the built-in rules without touching the workflow.
 */
export interface RiskInput {
  payment_id: string;
  merchant_id: string;
  buyer_id: string;
  currency: string;
  amount_minor: bigint;
}

export type RiskDecision = { approved: true } | { approved: false; code: 'risk_rejected'; reason: string };

export interface RiskProvider {
  assess(input: RiskInput): Promise<RiskDecision>;
}

export interface RiskRules {
  max_amount_minor: ReadonlyMap<string, bigint>;
  blocked_buyer_ids: ReadonlySet<string>;
}

/** "USD:10000.00,EUR:9000" → per-currency caps in minor units. Bad config stops start-up. */
export function parseRiskRules(max_amount: string, blocked_buyers: string): RiskRules {
  const caps = parseCurrencyAmounts(max_amount, 'RISK_MAX_AMOUNT');
  const blocked = new Set(blocked_buyers.split(',').map((b) => b.trim()).filter(Boolean));
  return { max_amount_minor: caps, blocked_buyer_ids: blocked };
}

export function evaluateRiskRules(rules: RiskRules, input: RiskInput): RiskDecision {
  if (rules.blocked_buyer_ids.has(input.buyer_id)) {
    return { approved: false, code: 'risk_rejected', reason: 'buyer is on the blocked list' };
  }
  const cap = rules.max_amount_minor.get(input.currency);
  if (cap !== undefined && input.amount_minor > cap) {
    return { approved: false, code: 'risk_rejected', reason: `amount exceeds the ${input.currency} limit per payment` };
  }
  return { approved: true };
}

export function createRulesRiskProvider(rules: RiskRules): RiskProvider {
  return { assess: async (input) => evaluateRiskRules(rules, input) };
}
