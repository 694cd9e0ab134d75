// Settlement days are UTC calendar days. Pure functions: workflow code imports them too.

const MS_PER_DAY = 86_400_000;

export const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The UTC day before the one holding `ms`: what a nightly run at `ms` reconciles. */
export const previousDay = (ms: number): string => dayOf(ms - MS_PER_DAY);

/** `YYYY-MM-DD` naming a real calendar day (no 2026-02-30), else null. */
export function parseDay(value: string): string | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (match === null) return null;
  const ms = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  return Number.isNaN(ms) || dayOf(ms) !== value ? null : value;
}

export function dayBounds(day: string): { start: string; end: string } {
  const start_ms = Date.parse(`${day}T00:00:00.000Z`);
  if (Number.isNaN(start_ms)) throw new Error(`not a day: ${day}`);
  return { start: new Date(start_ms).toISOString(), end: new Date(start_ms + MS_PER_DAY).toISOString() };
}

export type DayProblem = 'not_a_day' | 'in_future';

/** A day a run may reconcile: a calendar day that has begun (the PSP says whether its file is ready). */
export function checkRunDay(value: string, now_ms: number): { day: string } | { problem: DayProblem } {
  const day = parseDay(value);
  if (day === null) return { problem: 'not_a_day' };
  return day > dayOf(now_ms) ? { problem: 'in_future' } : { day };
}
