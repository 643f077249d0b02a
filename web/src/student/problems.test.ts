// Unit tests of the problem messages: every code listed in docs/api.md "Errors" has its own
// sentence (read from the doc itself, so a new code without a message fails here).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { formatTime } from "./policy";
import { describeProblem, MESSAGES, RETRYABLE_CODES } from "./problems";

/** The codes of the Errors table of docs/api.md: backticked words in `| status | code |` rows. */
function documentedCodes(): string[] {
  const doc = readFileSync(resolve(__dirname, "../../../docs/api.md"), "utf8");
  const errors = doc.slice(doc.indexOf("## Errors"));
  const codes: string[] = [];
  for (const line of errors.split("\n")) {
    const row = /^\| (\d{3}) \| ([^|]+) \|/.exec(line);
    if (!row) continue;
    for (const m of row[2].matchAll(/`([a-z_]+)`/g)) codes.push(m[1]);
  }
  return codes;
}

describe("problem messages", () => {
  const codes = documentedCodes();

  it("finds the documented codes", () => {
    expect(codes.length).toBeGreaterThan(30);
    expect(codes).toContain("section_full");
    expect(codes).toContain("decision_pending");
  });

  it.each(codes)("has its own message for %s", (code) => {
    expect(MESSAGES[code], code).toBeTruthy();
    const text = describeProblem({ code, title: "Server title", detail: undefined });
    expect(text).toBe(MESSAGES[code]);
    expect(text).not.toContain("Server title");
  });

  it("gives distinct messages to the registration refusals", () => {
    const refusals = [
      "section_full", "time_conflict", "credit_limit_exceeded", "registration_window_closed",
      "student_on_hold", "prerequisites_not_met", "duplicate_course", "already_enrolled",
      "already_waitlisted", "not_enrolled", "seats_reserved", "restricted_section", "registration_not_open_yet",
      "already_offered", "no_offer", "consent_required",
    ];
    const texts = new Set(refusals.map((code) => describeProblem({ code, title: "" })));
    expect(texts.size).toBe(refusals.length);
  });

  it("covers the client's network_error", () => {
    expect(describeProblem({ code: "network_error", title: "x" })).toMatch(/could not be reached/);
  });

  it("shows the detail where it says which prerequisites are missing", () => {
    const text = describeProblem({ code: "prerequisites_not_met", title: "t", detail: "missing CS100" });
    expect(text).toContain("missing CS100");
    expect(describeProblem({ code: "section_full", title: "t", detail: "internal words" })).not.toContain("internal words");
  });

  it("explains the policy refusals with the server's detail, the appointment's time in the student's locale", () => {
    const utc = (iso: string) => formatTime(iso, "en-US", "UTC");
    expect(describeProblem({ code: "seats_reserved", title: "t", detail: "the seats left are reserved for major CS" }))
      .toBe(`${MESSAGES.seats_reserved} (the seats left are reserved for major CS)`);
    expect(MESSAGES.seats_reserved).toMatch(/waitlist/);
    expect(describeProblem({ code: "restricted_section", title: "t", detail: "section 0b9f3c1e-5d2a-4c39-9a57-2f1d8e6b4a10 is open only to major CS, MATH" }))
      .toContain("or pick another section. (this section is open only to major CS, MATH)");
    expect(describeProblem({ code: "registration_not_open_yet", title: "t", detail: "registration opens for this student at 2027-03-03 14:30:00 UTC" }, utc))
      .toBe("Your registration appointment has not opened yet. Try again once it opens. (registration opens for you at Mar 3, 2027, 2:30 PM)");
    expect(describeProblem({ code: "registration_not_open_yet", title: "t", detail: "opens at 2027-03-03T14:30:00Z" }, utc)).toContain("(opens at Mar 3, 2027, 2:30 PM)");
    expect(describeProblem({ code: "registration_not_open_yet", title: "t" })).not.toBe(describeProblem({ code: "registration_window_closed", title: "t" }));
  });

  it("explains the waitlist offers' codes and the admin's pool and appointment codes", () => {
    expect(describeProblem({ code: "already_offered", title: "t" })).toMatch(/already offered to you: accept or decline it under Offers/);
    expect(describeProblem({ code: "no_offer", title: "t", detail: "no seat of section x is offered" })).toBe(MESSAGES.no_offer);
    expect(MESSAGES.no_offer).toMatch(/ran out/);
    expect(describeProblem({ code: "reserved_below_taken", title: "t" })).toMatch(/smaller than the number of students already seated/);
    expect(describeProblem({ code: "ticket_not_found", title: "t" })).toMatch(/no registration appointment/);
  });

  it("falls back to the server's words for an unknown code", () => {
    expect(describeProblem({ code: "brand_new", title: "Teapot", detail: "short and stout" })).toBe("short and stout");
    expect(describeProblem({ code: "brand_new", title: "Teapot" })).toBe("Teapot");
  });

  it("retries only busy or unreachable answers", () => {
    expect([...RETRYABLE_CODES].sort()).toEqual(["decision_pending", "network_error", "overloaded", "rate_limited", "unavailable"]);
    for (const code of RETRYABLE_CODES) if (code !== "network_error") expect(codes).toContain(code);
  });
});
