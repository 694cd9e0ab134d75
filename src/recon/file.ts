import { isCurrency } from '../domain/money';

/**
 * Reads the PSP's settlement file (CSV, RFC 4180 quoting) one line at a time, so a file of a
 * million lines never needs a million lines of memory. Every problem names its line number:
 * line 1 is the header, movements follow, the last line is `#summary,count,amount,fee,net`,
 * and the summary must add up to the lines read.
 */
export const SETTLEMENT_FILE_HEADER = 'psp_id,idempotency_key,order_reference,type,amount,currency,fee,net,created_at,settled_at';

export const SETTLEMENT_FILE_LIMITS = {
  line_chars_max: 4_096,
  lines_max: 20_000_000,
  id_chars_max: 255,
  type_chars_max: 32,
  amount_digits_max: 18,
} as const;

const FIELD_COUNT = 10;
const INTEGER = new RegExp(`^-?(0|[1-9][0-9]{0,${SETTLEMENT_FILE_LIMITS.amount_digits_max - 1}})$`);
const TYPE = new RegExp(`^[a-z][a-z_]{0,${SETTLEMENT_FILE_LIMITS.type_chars_max - 1}}$`);
// ISO 8601 with a zone, as the PSP writes it; Date.parse alone accepts too much.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

export interface SettlementLine {
  line_no: number;
  psp_id: string;
  idempotency_key: string;
  order_reference: string;
  type: string;
  amount_minor: bigint;
  currency: string;
  fee_minor: bigint;
  net_minor: bigint;
  created_at: string;
  settled_at: string;
}

export class SettlementFileError extends Error {
  constructor(
    readonly line_no: number,
    readonly reason: string,
  ) {
    super(`settlement file line ${line_no}: ${reason}`);
    this.name = 'SettlementFileError';
  }
}

/** Splits one CSV line; a quoted field may hold commas and doubled quotes (not line breaks). */
export function splitCsvLine(text: string): string[] | null {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        const quote = text.indexOf('"', i);
        if (quote === -1) return null; // unterminated quote
        field += text.slice(i, quote);
        i = quote + 1;
        if (text[i] !== '"') break;
        field += '"';
        i++;
      }
      if (i < text.length && text[i] !== ',') return null; // text after a closing quote
    } else {
      const comma = text.indexOf(',', i);
      const end = comma === -1 ? text.length : comma;
      field = text.slice(i, end);
      if (field.includes('"')) return null;
      i = end;
    }
    fields.push(field);
    if (i >= text.length) return fields;
    i++; // the comma
    if (i === text.length) {
      fields.push('');
      return fields;
    }
  }
}

interface Totals {
  count: bigint;
  amount: bigint;
  fee: bigint;
  net: bigint;
}

/**
 * Feed lines in order with `push` (it returns the movement, or null for the header and the
 * summary), then call `end`. Throws SettlementFileError at the first bad line.
 */
export class SettlementFileReader {
  private line_no = 0;
  private summary_seen = false;
  private readonly totals: Totals = { count: 0n, amount: 0n, fee: 0n, net: 0n };

  push(raw: string): SettlementLine | null {
    this.line_no++;
    const n = this.line_no;
    if (n > SETTLEMENT_FILE_LIMITS.lines_max) throw new SettlementFileError(n, `more than ${SETTLEMENT_FILE_LIMITS.lines_max} lines`);
    if (raw.length > SETTLEMENT_FILE_LIMITS.line_chars_max) throw new SettlementFileError(n, `line longer than ${SETTLEMENT_FILE_LIMITS.line_chars_max} characters`);
    if (this.summary_seen) {
      if (raw === '') return null; // the newline after the summary
      throw new SettlementFileError(n, 'text after the summary line');
    }
    if (n === 1) {
      if (raw.replace(/^\uFEFF/, '') !== SETTLEMENT_FILE_HEADER) throw new SettlementFileError(1, `bad header: expected "${SETTLEMENT_FILE_HEADER}"`);
      return null;
    }
    if (raw.startsWith('#summary,')) {
      this.checkSummary(raw);
      return null;
    }
    const line = this.parseMovement(raw);
    this.totals.count += 1n;
    this.totals.amount += line.amount_minor;
    this.totals.fee += line.fee_minor;
    this.totals.net += line.net_minor;
    return line;
  }

  /** The file ended: it must have had its header and its summary (else it was cut short). */
  end(): { lines: number } {
    if (this.line_no === 0) throw new SettlementFileError(1, 'empty file: no header');
    if (!this.summary_seen) throw new SettlementFileError(this.line_no + 1, 'truncated: the file ends without its #summary line');
    return { lines: Number(this.totals.count) };
  }

  private parseMovement(raw: string): SettlementLine {
    const n = this.line_no;
    const fail = (reason: string): never => {
      throw new SettlementFileError(n, reason);
    };
    const fields = splitCsvLine(raw) ?? fail('not a CSV line (bad quoting)');
    if (fields.length !== FIELD_COUNT) fail(`${fields.length} fields, expected ${FIELD_COUNT}`);
    const [psp_id, idempotency_key, order_reference, type, amount, currency, fee, net, created_at, settled_at] = fields as [string, string, string, string, string, string, string, string, string, string];
    for (const [name, value] of [['psp_id', psp_id], ['idempotency_key', idempotency_key], ['order_reference', order_reference]] as const) {
      if (value.length === 0 || value.length > SETTLEMENT_FILE_LIMITS.id_chars_max) fail(`${name} must be 1..${SETTLEMENT_FILE_LIMITS.id_chars_max} characters`);
    }
    if (!TYPE.test(type)) fail(`type "${type.slice(0, 40)}" is not a lowercase movement type`);
    const integer = (name: string, value: string): bigint => (INTEGER.test(value) ? BigInt(value) : fail(`${name} "${value.slice(0, 40)}" is not an integer amount in minor units`));
    const amount_minor = integer('amount', amount);
    const fee_minor = integer('fee', fee);
    const net_minor = integer('net', net);
    if (!isCurrency(currency)) fail(`currency "${currency.slice(0, 10)}" is not an ISO 4217 code`);
    if (net_minor !== amount_minor - fee_minor) fail(`net ${net_minor} is not amount ${amount_minor} minus fee ${fee_minor}`);
    for (const [name, value] of [['created_at', created_at], ['settled_at', settled_at]] as const) {
      if (!TIMESTAMP.test(value) || Number.isNaN(Date.parse(value))) fail(`${name} "${value.slice(0, 40)}" is not an ISO 8601 timestamp`);
    }
    return { line_no: n, psp_id, idempotency_key, order_reference, type, amount_minor, currency, fee_minor, net_minor, created_at, settled_at };
  }

  private checkSummary(raw: string): void {
    const n = this.line_no;
    const parts = raw.split(',');
    if (parts.length !== 5 || !parts.slice(1).every((p) => INTEGER.test(p))) throw new SettlementFileError(n, 'bad #summary line: expected #summary,count,amount,fee,net');
    const [count, amount, fee, net] = parts.slice(1).map((p) => BigInt(p)) as [bigint, bigint, bigint, bigint];
    const t = this.totals;
    const wrong = [
      ['count', count, t.count],
      ['amount', amount, t.amount],
      ['fee', fee, t.fee],
      ['net', net, t.net],
    ].filter(([, said, read]) => said !== read);
    if (wrong.length > 0) {
      throw new SettlementFileError(n, `summary does not add up: ${wrong.map(([name, said, read]) => `${String(name)} says ${String(said)}, lines sum to ${String(read)}`).join('; ')}`);
    }
    this.summary_seen = true;
  }
}
