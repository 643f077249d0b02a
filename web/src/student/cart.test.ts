// Unit tests of the cart: items grouped by linked set (lecture first, in the order added),
// readable verdicts and outcomes from the problem messages, and the submit sent with one
// Idempotency-Key that survives a 503 retry.
import { afterEach, describe, expect, it } from "vitest";
import { setTransport } from "../api/client";
import { cartGroups, outcomeText, submitCart, submitSummary, verdictText, type CartItem } from "./cart";

const item = (id: string, course: string, code: string, component: CartItem["component"], group: string | null, at: string): CartItem => ({
  section_id: id, course_code: course, section_code: code, component, title: course, credits: 4, group, added_at: at,
});

describe("cartGroups", () => {
  it("keeps a set's items together, lecture first, groups in the order added", () => {
    const groups = cartGroups([
      item("lab", "BIOL1406", "L01", "lab", "BIOL1406", "2026-01-01T00:00:03Z"),
      item("m", "MATH2413", "001", "lecture", null, "2026-01-01T00:00:02Z"),
      item("lec", "BIOL1406", "001", "lecture", "BIOL1406", "2026-01-01T00:00:01Z"),
    ]);
    expect(groups.map((g) => [g.key, g.linked, g.items.map((i) => i.section_id)])).toEqual([
      ["BIOL1406", true, ["lec", "lab"]],
      ["m", false, ["m"]],
    ]);
  });
});

describe("messages", () => {
  it("reads a verdict as advice", () => {
    expect(verdictText({ verdict: "would_enroll", code: null, detail: "" })).toMatch(/Would enroll/);
    expect(verdictText({ verdict: "would_fail", code: "time_conflict", detail: "meets with CS101-01" })).toBe(
      "Would be refused: This section meets at the same time as one already on your schedule (or waitlist).",
    );
    expect(verdictText({ verdict: "would_fail", code: "linked_set_incomplete", detail: "missing lab" })).toContain("(missing lab)");
    expect(verdictText({ verdict: "would_fail", code: "brand_new_code", detail: "the server's words" })).toBe("Would be refused: the server's words");
  });

  it("says what a submit did", () => {
    expect(outcomeText({ status: "enrolled", code: null, detail: null })).toBe("Enrolled.");
    expect(outcomeText({ status: "waitlisted", code: null, detail: null, position: 3 })).toBe("On the waitlist, number 3 in line.");
    expect(outcomeText({ status: "refused", code: "section_full", detail: "" })).toMatch(/^Refused, kept in the cart: This section is full/);
    expect(submitSummary([{ status: "enrolled" }, { status: "enrolled" }, { status: "refused" }])).toBe("Cart submitted: 2 enrolled, 1 refused (still in the cart).");
  });
});

describe("submitCart", () => {
  afterEach(() => setTransport((...a) => fetch(...a)));

  it("retries a 503 with the same Idempotency-Key", async () => {
    const keys: string[] = [];
    setTransport(async (_url, init) => {
      keys.push(new Headers(init?.headers).get("Idempotency-Key") ?? "");
      if (keys.length === 1) {
        return new Response(JSON.stringify({ code: "decision_pending", title: "pending", status: 503 }), { status: 503, headers: { "Retry-After": "0" } });
      }
      return new Response(JSON.stringify({ items: [] }), { status: 200 });
    });
    const answer = await submitCart("t", { sleep: () => Promise.resolve(), random: () => 0 });
    expect(answer.items).toEqual([]);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
  });
});
