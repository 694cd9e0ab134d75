import { AimdWindow, backlogBound, retryAfterSeconds } from '../../src/services/admission';

const SETTINGS = { window_min: 4, window_initial: 16, window_max: 20, latency_target_ms: 1_000 };

describe('AIMD window of in-flight payments', () => {
  it('starts at the initial size', () => {
    expect(new AimdWindow(SETTINGS).size).toBe(16);
  });

  it('grows by about one slot per window of payments under target, only while the window is what limits starts', () => {
    const w = new AimdWindow(SETTINGS);
    for (let i = 0; i < 16; i++) w.observe(200, i, false);
    expect(w.size).toBe(16); // not limited: no growth
    for (let i = 0; i < 16; i++) w.observe(200, i, true);
    expect(w.size).toBe(16); // 16 × 1/16 (shrinking steps) lands just under 17
    w.observe(200, 17, true);
    expect(w.size).toBe(17);
  });

  it('never grows past the maximum', () => {
    const w = new AimdWindow(SETTINGS);
    for (let i = 0; i < 10_000; i++) w.observe(10, i, true);
    expect(w.size).toBe(20);
  });

  it('shrinks multiplicatively when latency is over target, at most once per target interval, never below the minimum', () => {
    const w = new AimdWindow(SETTINGS);
    w.observe(1_500, 10_000, true);
    expect(w.size).toBe(11); // 16 × 0.7 = 11.2
    w.observe(5_000, 10_500, true); // within the same interval: no second cut
    expect(w.size).toBe(11);
    w.observe(1_001, 11_000, true);
    expect(w.size).toBe(7); // 11.2 × 0.7 = 7.84
    for (let t = 12_000; t < 30_000; t += 1_000) w.observe(2_000, t, true);
    expect(w.size).toBe(4);
  });

  it('a latency exactly at the target is not over it', () => {
    const w = new AimdWindow(SETTINGS);
    w.observe(1_000, 0, false);
    expect(w.size).toBe(16);
  });
});

describe('Retry-After of a 429 capacity_exceeded', () => {
  it('is the backlog over the start rate, rounded up, from 1 to 60 s', () => {
    expect(retryAfterSeconds(100, 20)).toBe(5);
    expect(retryAfterSeconds(101, 20)).toBe(6);
    expect(retryAfterSeconds(1, 50)).toBe(1);
    expect(retryAfterSeconds(0, 50)).toBe(1);
    expect(retryAfterSeconds(1_000_000, 20)).toBe(60);
  });

  it('assumes one start per second when none was measured', () => {
    expect(retryAfterSeconds(7, 0)).toBe(7);
  });
});

describe('backlog bound at the door', () => {
  const s = { backlog_max: 5_000, backlog_wait_max_s: 30, window_max: 256 };
  it('lets wait what starts within the promised wait at the measured rate', () => {
    expect(backlogBound(s, 13.5)).toBe(405);
    expect(backlogBound(s, 100)).toBe(3_000);
  });
  it('keeps at least a full window when no rate is measured yet, and never more than the hard bound', () => {
    expect(backlogBound(s, 0)).toBe(256);
    expect(backlogBound(s, 1_000)).toBe(5_000);
  });
});

it('counts an unmeasured start rate as the floor rate, so a small window does not shut the door at a cold start', () => {
  expect(backlogBound({ backlog_max: 8, backlog_wait_max_s: 86_400, window_max: 1 }, 0)).toBe(8);
});
