import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

// The five search attributes an operator filters by in the Temporal UI (primer §4). The dev
// server registers them at start (src/dev/temporal.ts); a production cluster needs them created once.
export const SA = {
  PaymentId: defineSearchAttributeKey('PaymentId', SearchAttributeType.KEYWORD),
  MerchantId: defineSearchAttributeKey('MerchantId', SearchAttributeType.KEYWORD),
  PaymentStatus: defineSearchAttributeKey('PaymentStatus', SearchAttributeType.KEYWORD),
  AmountMinor: defineSearchAttributeKey('AmountMinor', SearchAttributeType.INT),
  Currency: defineSearchAttributeKey('Currency', SearchAttributeType.KEYWORD),
} as const;

export const SEARCH_ATTRIBUTE_TYPES: Record<keyof typeof SA, 'Keyword' | 'Int'> = {
  PaymentId: 'Keyword',
  MerchantId: 'Keyword',
  PaymentStatus: 'Keyword',
  AmountMinor: 'Int',
  Currency: 'Keyword',
};
