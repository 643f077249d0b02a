// The console forms' way of running an API call: value, expired session, failure said.
import { describe, expect, it } from "vitest";
import { ref } from "vue";
import { ApiError } from "../api/client";
import { attempter } from "./attempt";

describe("attempter", () => {
  it("answers the value and is busy only while running", async () => {
    const busy = ref(false);
    const seen: boolean[] = [];
    const attempt = attempter({ expired: () => {}, failed: () => {}, busy });
    expect(await attempt("x", async () => (seen.push(busy.value), 7))).toBe(7);
    expect([seen, busy.value]).toEqual([[true], false]);
  });

  it("hands an expired session to the page and says other failures", async () => {
    const said: string[] = [];
    let expired = 0;
    const attempt = attempter({ expired: () => expired++, failed: (t) => said.push(t) });
    const fail = (code: string) => async () => {
      throw new ApiError({ status: 401, code, title: "t", detail: "d" });
    };
    expect(await attempt("Signing", fail("unauthenticated"))).toBeUndefined();
    expect(await attempt("The permit was not granted", fail("student_not_found"))).toBeUndefined();
    expect(expired).toBe(1);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^The permit was not granted: /);
  });
});
