// Unit tests of the student writes against a fake transport: the Idempotency-Key header is
// sent and kept across retries, the swap body is the documented one, outcomes read well.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setTransport } from "../api/client";
import { enroll, enrollOutcome, swap } from "./registration";

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

describe("registration writes", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("retries an overloaded enroll with the same Idempotency-Key and the token", async () => {
    const seen: { url: string; key: string | null; auth: string | null }[] = [];
    const answers = [
      json(503, { code: "overloaded", title: "Service Unavailable", status: 503 }, { "Retry-After": "1" }),
      json(201, { status: "enrolled", section_id: "s1", student_id: "me" }),
    ];
    setTransport(async (input, init) => {
      const h = new Headers(init?.headers);
      seen.push({ url: String(input), key: h.get("Idempotency-Key"), auth: h.get("Authorization") });
      return answers.shift()!;
    });
    const done = enroll("tok", "s1");
    await vi.runAllTimersAsync();
    await expect(done).resolves.toMatchObject({ status: "enrolled" });
    expect(seen).toHaveLength(2);
    expect(seen[0].url).toBe("/api/v1/sections/s1/enrollments");
    expect(seen[0].key).toBeTruthy();
    expect(seen[1].key).toBe(seen[0].key);
    expect(seen[0].auth).toBe("Bearer tok");
  });

  it("sends a swap as {drop, add}", async () => {
    let body: unknown;
    setTransport(async (_input, init) => {
      body = JSON.parse(String(init?.body));
      return json(200, { status: "swapped", added: { status: "enrolled", section_id: "b", student_id: "me" }, dropped: { section_id: "a", promoted: false } });
    });
    await swap("tok", "a", "b");
    expect(body).toEqual({ drop: "a", add: "b" });
  });

  it("says the waitlist position", () => {
    expect(enrollOutcome({ status: "waitlisted", section_id: "x", student_id: "me", position: 3 }, "CS101-01")).toMatch(/waitlist, number 3/);
    expect(enrollOutcome({ status: "enrolled", section_id: "x", student_id: "me" }, "CS101-01")).toBe("You are enrolled in CS101-01.");
    // Free seats reserved for others: waitlisted although the section is not full.
    expect(enrollOutcome({ status: "waitlisted", section_id: "x", student_id: "me", position: 1 }, "CS101-01", "CS majors"))
      .toBe("The seats left in CS101-01 are reserved for CS majors: you are on its waitlist, number 1 in line.");
  });
});
