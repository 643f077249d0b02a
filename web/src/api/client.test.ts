// Unit tests of the API client: problem+json becomes an ApiError with its code and Retry-After.
import { describe, expect, it } from "vitest";
import { api, ApiError, parseRetryAfter, setTransport } from "./client";

describe("api", () => {
  it("turns a problem answer into an ApiError with code and retry", async () => {
    setTransport(async () =>
      new Response(JSON.stringify({ type: "about:blank", title: "Overloaded", status: 503, code: "overloaded", detail: "busy" }), {
        status: 503,
        headers: { "Content-Type": "application/problem+json", "Retry-After": "2" },
      }),
    );
    const err = (await api("POST", "/x").catch((e) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe("overloaded");
    expect(err.problem.retryAfter).toBe(2);
    expect(err.message).toBe("busy");
  });
  it("names a failed connection network_error", async () => {
    setTransport(async () => {
      throw new TypeError("failed");
    });
    const err = (await api("GET", "/x").catch((e) => e)) as ApiError;
    expect(err.code).toBe("network_error");
  });
  it("parses only delta seconds", () => {
    expect(parseRetryAfter("3")).toBe(3);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter("soon")).toBeUndefined();
  });
});
