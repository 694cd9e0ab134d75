import { checkRunDay, dayBounds, parseDay, previousDay } from '../../src/domain/dates';
import { SETTLEMENT_FILE_HEADER, SettlementFileError, SettlementFileReader, splitCsvLine } from '../../src/recon/file';
import { itemOfLine, subjectOf, type DifferenceRow } from '../../src/recon/classify';
import { settlementPosting } from '../../src/domain/ledger';

const T = '2026-11-26T10:00:00.000Z';
const line = (o: Partial<Record<'psp' | 'key' | 'type' | 'amount' | 'currency' | 'fee' | 'net' | 'at', string>> = {}): string =>
  [o.psp ?? 'ch_1', o.key ?? 'ord_1', o.key ?? 'ord_1', o.type ?? 'charge', o.amount ?? '1000', o.currency ?? 'USD', o.fee ?? '59', o.net ?? '941', o.at ?? T, o.at ?? T].join(',');

/** Reads a whole file given as lines; returns the movements or the error. */
function read(lines: string[]): { movements: number; error: SettlementFileError | null } {
  const reader = new SettlementFileReader();
  let movements = 0;
  try {
    for (const l of lines) if (reader.push(l) !== null) movements++;
    reader.end();
    return { movements, error: null };
  } catch (err) {
    if (!(err instanceof SettlementFileError)) throw err;
    return { movements, error: err };
  }
}

describe('settlement file reader', () => {
  it('reads a good file: header, lines, a summary that adds up, a trailing newline', () => {
    const got = read([SETTLEMENT_FILE_HEADER, line(), line({ psp: 'ch_2', key: 'ord_2', type: 'refund', amount: '-500', fee: '0', net: '-500' }), '#summary,2,500,59,441', '']);
    expect(got).toEqual({ movements: 2, error: null });
  });

  it.each([
    ['a bad header', ['psp_id,amount', line(), '#summary,1,1000,59,941'], 1, /bad header/],
    ['an empty file', [], 1, /empty file/],
    ['a file cut short (no summary)', [SETTLEMENT_FILE_HEADER, line(), line({ psp: 'ch_2' })], 4, /truncated/],
    ['a non-numeric amount', [SETTLEMENT_FILE_HEADER, line(), line({ amount: '10.00' }), '#summary,2,2000,118,1882'], 3, /amount "10.00" is not an integer/],
    ['an unknown currency', [SETTLEMENT_FILE_HEADER, line({ currency: 'XYZ' }), '#summary,1,1000,59,941'], 2, /currency "XYZ" is not an ISO 4217 code/],
    ['a net that is not amount minus fee', [SETTLEMENT_FILE_HEADER, line({ net: '1000' }), '#summary,1,1000,59,1000'], 2, /net 1000 is not amount 1000 minus fee 59/],
    ['a summary that does not add up', [SETTLEMENT_FILE_HEADER, line(), '#summary,1,1001,59,942'], 3, /summary does not add up: amount says 1001, lines sum to 1000; net says 942/],
    ['a summary with the wrong count', [SETTLEMENT_FILE_HEADER, line(), line(), '#summary,3,2000,118,1882'], 4, /count says 3, lines sum to 2/],
    ['text after the summary', [SETTLEMENT_FILE_HEADER, line(), '#summary,1,1000,59,941', line()], 4, /text after the summary/],
    ['a short line', [SETTLEMENT_FILE_HEADER, 'ch_1,ord_1,1000', '#summary,0,0,0,0'], 2, /3 fields, expected 10/],
    ['bad quoting', [SETTLEMENT_FILE_HEADER, `"ch_1,${line().slice(5)}`, '#summary,0,0,0,0'], 2, /bad quoting/],
    ['a bad timestamp', [SETTLEMENT_FILE_HEADER, line({ at: 'yesterday' }), '#summary,1,1000,59,941'], 2, /created_at "yesterday" is not an ISO 8601/],
    ['an upper-case type', [SETTLEMENT_FILE_HEADER, line({ type: 'Charge' }), '#summary,1,1000,59,941'], 2, /type "Charge"/],
  ])('refuses %s, naming the line', (_what, lines, line_no, reason) => {
    const { error } = read(lines);
    expect(error).not.toBeNull();
    expect(error?.line_no).toBe(line_no);
    expect(error?.message).toMatch(reason);
  });

  it('splits RFC 4180 quoted fields (commas and doubled quotes inside)', () => {
    expect(splitCsvLine('a,"b,c","d""e",')).toEqual(['a', 'b,c', 'd"e', '']);
    expect(splitCsvLine('"#not a summary",x')).toEqual(['#not a summary', 'x']);
    expect(splitCsvLine('"open')).toBeNull();
    expect(splitCsvLine('"a"b')).toBeNull();
  });
});

describe('settlement days', () => {
  const now = Date.parse('2026-11-27T06:00:00Z');
  it('accepts calendar days that have begun, refuses the future and non-days', () => {
    expect(checkRunDay('2026-11-26', now)).toEqual({ day: '2026-11-26' });
    expect(checkRunDay('2026-11-27', now)).toEqual({ day: '2026-11-27' });
    expect(checkRunDay('2026-11-28', now)).toEqual({ problem: 'in_future' });
    expect(checkRunDay('2026-02-30', now)).toEqual({ problem: 'not_a_day' });
    expect(parseDay('2026-1-01')).toBeNull();
  });
  it('takes the nightly run day from the nominal time, and day bounds in UTC', () => {
    expect(previousDay(Date.parse('2026-11-27T02:00:00Z'))).toBe('2026-11-26');
    expect(previousDay(Date.parse('2026-03-01T00:00:00Z'))).toBe('2026-02-28');
    expect(dayBounds('2026-11-26')).toEqual({ start: '2026-11-26T00:00:00.000Z', end: '2026-11-27T00:00:00.000Z' });
  });
});

describe('differences', () => {
  const base: DifferenceRow = {
    line_no: '7', psp_id: 'ch_1', idempotency_key: 'ord_1', type: 'charge', amount_minor: '1100', currency: 'USD', fee_minor: '59', settled_at: new Date(T),
    result: 'amount_mismatch', order_id: 'ord_1', payment_id: 'pay_1', order_status: 'succeeded', order_amount_minor: '1000', order_currency: 'USD',
    order_fee_minor: '59', order_psp_reference: 'ch_1', captured_at: new Date(T),
  };
  it('explains itself: field, our value, the PSP value, the order and its workflow', () => {
    expect(itemOfLine(base, '2026-11-26')).toMatchObject({
      subject: 'payment:ord_1', class: 'amount_mismatch', status: 'open', field: 'amount', our_value: '1000', psp_value: '1100',
      order_id: 'ord_1', workflow_id: 'payment-pay_1', auto_fixable: false,
    });
    // A payment started on the legacy shape: its order has a workflow of its own.
    expect(itemOfLine({ ...base, workflow_type: 'PaymentWorkflow' }, '2026-11-26')).toMatchObject({ workflow_id: 'order-ord_1' });
    expect(itemOfLine({ ...base, amount_minor: '1000', fee_minor: '60' }, '2026-11-26')).toMatchObject({ field: 'fee', our_value: '59', psp_value: '60' });
  });
  it('marks a line for an order still waiting on the PSP auto-fixable, and a timing difference resolved', () => {
    expect(itemOfLine({ ...base, result: 'missing_internally', order_status: 'pending' }, '2026-11-26')).toMatchObject({ auto_fixable: true, status: 'open', our_value: 'pending' });
    expect(itemOfLine({ ...base, result: 'missing_internally', order_id: null, order_status: null }, '2026-11-26')).toMatchObject({ auto_fixable: false, our_value: 'no record' });
    expect(itemOfLine({ ...base, result: 'timing' }, '2026-11-26')).toMatchObject({ status: 'resolved', class: 'timing' });
  });
  it('gives a movement the same subject in every run, and each duplicate line its own', () => {
    expect(subjectOf({ ...base, type: 'capture' }, '2026-11-26')).toBe('payment:ord_1');
    expect(subjectOf({ ...base, result: 'duplicate' }, '2026-11-26')).toBe('duplicate:2026-11-26:7');
    expect(subjectOf({ ...base, type: 'refund' }, '2026-11-26')).toBe('refund:ch_1');
  });
});

describe('settlement posting', () => {
  it('moves the net from psp_receivable to bank_cash, the other way for a negative net', () => {
    const p = settlementPosting({ reference: 'settlement:2026-11-26:USD:1', settlement_date: '2026-11-26', currency: 'USD', net_minor: 941n });
    expect(p.entries.map((e) => [e.account.code, e.amount_minor])).toEqual([['bank_cash', 941n], ['psp_receivable', -941n]]);
    const back = settlementPosting({ reference: 'settlement:2026-11-26:USD:2', settlement_date: '2026-11-26', currency: 'USD', net_minor: -500n });
    expect(back.entries.map((e) => [e.account.code, e.amount_minor])).toEqual([['bank_cash', -500n], ['psp_receivable', 500n]]);
    expect(() => settlementPosting({ reference: 'x', settlement_date: '2026-11-26', currency: 'USD', net_minor: 0n })).toThrow(/moves money/);
  });
});
