// Unit tests of the credits and grading basis helpers of the student page: the choices a
// course offers, how a place's options read, the enroll body (none when nothing is chosen,
// so older servers see the request they know) and the change request; audited courses
// are left out of the schedule's credits.
import { afterEach, describe, expect, it } from "vitest";
import { setTransport } from "../api/client";
import { scheduleCredits, scheduleGroups } from "./linked";
import { describeProblem } from "./problems";
import { basisChoices, changeOptions, creditChoices, enroll, hasChoices, optionsLabel, type Schedule } from "./registration";

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

afterEach(() => setTransport(fetch));

describe("credits and grading basis", () => {
  it("offers the course's range and bases", () => {
    expect(creditChoices({ credits: 3, min_credits: 1, max_credits: 4 })).toEqual([1, 2, 3, 4]);
    expect(creditChoices({ credits: 3 })).toEqual([3]);
    expect(basisChoices({ grading_bases: ["letter", "audit"] })).toEqual(["letter", "audit"]);
    expect(basisChoices({})).toEqual(["letter"]);
    expect(hasChoices({ credits: 3, min_credits: 3, max_credits: 3, grading_bases: ["letter"] })).toBe(false);
    expect(hasChoices({ credits: 3, min_credits: 3, max_credits: 3, grading_bases: ["letter", "pass_fail"] })).toBe(true);
    expect(hasChoices({ credits: 3, min_credits: 1, max_credits: 3 })).toBe(true);
  });

  it("says what a place is taken for", () => {
    expect(optionsLabel({ credits: 4, grading_basis: "pass_fail" })).toBe("4 credits, pass/fail");
    expect(optionsLabel({ credits: 1 })).toBe("1 credit, letter grade");
    expect(optionsLabel({ credits: 3, grading_basis: "audit" })).toBe("3 credits, audited (no credit)");
  });

  it("sends an enroll's options only when chosen, and a change as a PATCH", async () => {
    const seen: { method?: string; url: string; body: unknown }[] = [];
    setTransport(async (input, init) => {
      seen.push({ method: init?.method, url: String(input), body: init?.body === undefined ? undefined : JSON.parse(String(init.body)) });
      return seen.length < 3
        ? json(201, { status: "enrolled", section_id: "s1", student_id: "me" })
        : json(200, { section_id: "s1", credits: 2, grading_basis: "audit", sections: ["s1"], changed: true });
    });
    await enroll("tok", "s1");
    await enroll("tok", "s1", {}, { credits: 4, grading_basis: "pass_fail" });
    const changed = await changeOptions("tok", "s1", { grading_basis: "audit" });
    expect(seen[0]!.body).toBeUndefined();
    expect(seen[1]!.body).toEqual({ credits: 4, grading_basis: "pass_fail" });
    expect(seen[2]).toEqual({ method: "PATCH", url: "/api/v1/sections/s1/enrollments/me", body: { grading_basis: "audit" } });
    expect(changed.changed).toBe(true);
  });

  it("leaves audited courses out of the schedule's credits", () => {
    const entry = (id: string, course: string, grading_basis: "letter" | "audit") =>
      ({ section_id: id, course_code: course, section_code: "01", credits: 4, grading_basis, meetings: [] });
    const schedule: Schedule = { enrolled: [entry("a", "ART200", "audit"), entry("m", "MATH300", "letter")], waitlisted: [], credits: 4, audit_credits: 4 };
    expect(scheduleCredits(scheduleGroups(schedule, new Map()))).toBe(4);
  });

  it("explains the refusals with their detail", () => {
    const text = describeProblem({ code: "credits_out_of_range", title: "Unprocessable", detail: "5 credits is outside the course's range of 1 to 4" });
    expect(text).toMatch(/cannot be taken for that many credits/);
    expect(text).toMatch(/1 to 4/);
    expect(describeProblem({ code: "options_deadline_passed", title: "Forbidden" })).toMatch(/last day to change credits/);
  });
});
