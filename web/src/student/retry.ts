// Careful writes: an enroll, drop or swap is sent with one Idempotency-Key per user action,
// and busy answers (overloaded, decision_pending, unavailable, rate_limited) and lost
// connections are retried with that SAME key, waiting at least Retry-After plus a jittered,
// growing backoff, within a bound on tries and time. The same key makes a retry safe: the
// server answers an already decided request with its first answer, never a second seat.
import { ApiError } from "../api/client";
import { RETRYABLE_CODES } from "./problems";

export interface RetryOptions {
  /** Tries in all, the first included. */
  maxAttempts?: number;
  /** No retry is started once this much time would have passed since the first try. */
  maxTotalMs?: number;
  /** Backoff of the first retry; doubles each time up to `capMs`. */
  baseMs?: number;
  capMs?: number;
  /** Told before each wait, so the page can say "still trying…". */
  onRetry?: (info: RetryInfo) => void;
  /** Test seams. */
  newKey?: () => string;
  random?: () => number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface RetryInfo {
  /** The try that just failed (1-based). */
  attempt: number;
  delayMs: number;
  error: ApiError;
}

export const DEFAULT_MAX_ATTEMPTS = 6;
export const DEFAULT_MAX_TOTAL_MS = 30_000;

/** Whether an error is worth another try with the same key. */
export function isRetryable(error: unknown): error is ApiError {
  return error instanceof ApiError && RETRYABLE_CODES.has(error.code);
}

/**
 * The wait before retry number `attempt` (1 = the first retry): Retry-After (seconds, when
 * the server sent one) plus "equal jitter" over an exponential backoff, so that thousands
 * of clients refused at the same instant do not come back at the same instant.
 */
export function retryDelay(attempt: number, retryAfterSecs: number | undefined, baseMs: number, capMs: number, random: () => number): number {
  const backoff = Math.min(capMs, baseMs * 2 ** (attempt - 1));
  const jittered = backoff / 2 + random() * (backoff / 2);
  return Math.round((retryAfterSecs ?? 0) * 1000 + jittered);
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `send(key)` until it gives a final answer (a success or a refusal), retrying busy
 * answers with the same key. Throws the last error when the bound is reached.
 */
export async function withIdempotentRetry<T>(send: (key: string) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const maxTotalMs = options.maxTotalMs ?? DEFAULT_MAX_TOTAL_MS;
  const baseMs = options.baseMs ?? 400;
  const capMs = options.capMs ?? 8000;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? realSleep;
  const key = (options.newKey ?? (() => crypto.randomUUID()))();
  const started = now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await send(key);
    } catch (error) {
      if (!isRetryable(error) || attempt >= maxAttempts) throw error;
      const delayMs = retryDelay(attempt, error.problem.retryAfter, baseMs, capMs, random);
      if (now() - started + delayMs > maxTotalMs) throw error;
      options.onRetry?.({ attempt, delayMs, error });
      await sleep(delayMs);
    }
  }
}
