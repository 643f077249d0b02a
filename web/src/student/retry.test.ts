// Unit tests of the retry of writes, on fake timers: the same Idempotency-Key on every try,
// Retry-After honoured, jittered growing waits, bounds on tries and time, final answers not retried.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/client";
import { retryDelay, withIdempotentRetry } from "./retry";

function problem(code: string, retryAfter?: number): ApiError {
  return new ApiError({ status: code === "rate_limited" ? 429 : 503, code, title: code, retryAfter });
}

describe("withIdempotentRetry", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("sends the same key on every try until a final answer", async () => {
    const keys: string[] = [];
    const answers = [problem("overloaded", 1), problem("decision_pending", 1), problem("unavailable"), problem("rate_limited", 2)];
    const send = vi.fn(async (key: string) => {
      keys.push(key);
      const next = answers.shift();
      if (next) throw next;
      return "enrolled";
    });
    const retries: number[] = [];
    const done = withIdempotentRetry(send, { random: () => 0.5, onRetry: (i) => retries.push(i.attempt) });
    await vi.runAllTimersAsync();
    await expect(done).resolves.toBe("enrolled");
    expect(send).toHaveBeenCalledTimes(5);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(retries).toEqual([1, 2, 3, 4]);
  });

  it("uses a new key for each action", async () => {
    const keys: string[] = [];
    await withIdempotentRetry(async (k) => keys.push(k));
    await withIdempotentRetry(async (k) => keys.push(k));
    expect(keys[0]).not.toBe(keys[1]);
  });

  it("waits Retry-After before trying again", async () => {
    const send = vi.fn<(key: string) => Promise<string>>().mockRejectedValueOnce(problem("overloaded", 3)).mockResolvedValue("ok");
    const done = withIdempotentRetry(send, { random: () => 0, baseMs: 400 });
    await vi.advanceTimersByTimeAsync(0);
    expect(send).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(3100); // 3 s + 200 ms of jitter floor: not yet
    expect(send).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(150);
    expect(send).toHaveBeenCalledTimes(2);
    await expect(done).resolves.toBe("ok");
  });

  it("does not retry a refusal", async () => {
    const send = vi.fn(async () => {
      throw new ApiError({ status: 409, code: "section_full", title: "Conflict" });
    });
    await expect(withIdempotentRetry(send)).rejects.toMatchObject({ code: "section_full" });
    expect(send).toHaveBeenCalledTimes(1);
  });

  it("gives up after the bound on tries with the last error", async () => {
    const send = vi.fn(async () => {
      throw problem("overloaded", 0);
    });
    const done = withIdempotentRetry(send, { maxAttempts: 6, maxTotalMs: 1e9 });
    const caught = done.catch((e: unknown) => e);
    await vi.runAllTimersAsync();
    expect(await caught).toMatchObject({ code: "overloaded" });
    expect(send).toHaveBeenCalledTimes(6);
  });

  it("gives up rather than wait past the time bound", async () => {
    const send = vi.fn(async () => {
      throw problem("unavailable", 10);
    });
    const done = withIdempotentRetry(send, { maxTotalMs: 25_000, random: () => 0 });
    const caught = done.catch((e: unknown) => e);
    await vi.runAllTimersAsync();
    expect(await caught).toMatchObject({ code: "unavailable" });
    // 0 s, then ~10.2 s, then ~20.4 s; a fourth try would start past 25 s.
    expect(send).toHaveBeenCalledTimes(3);
  });
});

describe("retryDelay", () => {
  it("grows, is capped and spreads by jitter", () => {
    expect(retryDelay(1, undefined, 400, 8000, () => 0)).toBe(200);
    expect(retryDelay(1, undefined, 400, 8000, () => 1)).toBe(400);
    expect(retryDelay(3, undefined, 400, 8000, () => 0)).toBe(800);
    expect(retryDelay(10, undefined, 400, 8000, () => 1)).toBe(8000);
    expect(retryDelay(1, 2, 400, 8000, () => 0.5)).toBe(2300);
  });
});
