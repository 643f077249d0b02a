// The one HTTP client of the pages: JSON in and out, the bearer token, and every error
// turned into an `ApiError` carrying the server's problem+json (`code`, `detail`,
// `Retry-After`), so that pages show a message per code instead of a status number.

/** A problem+json answer, as the server sends it (plus the `Retry-After` header, in seconds). */
export interface Problem {
  status: number;
  code: string;
  title: string;
  detail?: string;
  retryAfter?: number;
  [extra: string]: unknown;
}

/** A request that got a problem answer (or none at all: `code` `network_error`). */
export class ApiError extends Error {
  constructor(public readonly problem: Problem) {
    super(problem.detail ?? problem.title);
    this.name = "ApiError";
  }
  get code(): string {
    return this.problem.code;
  }
}

export interface RequestOptions {
  body?: unknown;
  token?: string | null;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** The `fetch` in use; tests replace it. */
export let transport: typeof fetch = (...args) => fetch(...args);
export function setTransport(f: typeof fetch): void {
  transport = f;
}

/** Seconds from a `Retry-After` header (delta-seconds form only, which is what the server sends). */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const n = Number(value.trim());
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** Call the API; the parsed JSON body, or `undefined` for 204. Throws `ApiError`. */
export async function api<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  let response: Response;
  try {
    response = await transport(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError({ status: 0, code: "network_error", title: "The server could not be reached" });
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let body: unknown = undefined;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
  }
  if (!response.ok) {
    const p = (body ?? {}) as Partial<Problem>;
    throw new ApiError({
      ...p,
      status: response.status,
      code: typeof p.code === "string" ? p.code : `http_${response.status}`,
      title: typeof p.title === "string" ? p.title : response.statusText || "Request failed",
      retryAfter: parseRetryAfter(response.headers.get("Retry-After")),
    });
  }
  return body as T;
}
