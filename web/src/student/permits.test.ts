// The student page's wording of permits.
import { describe, expect, it } from "vitest";
import type { Permit } from "../console/api";
import { permitText, permitsIn, skippedText } from "./permits";

const base: Permit = {
  id: "p", student_id: "s", term_id: "t", section_id: "x", kind: "prerequisite", max_credits: null,
  jump_waitlist: false, single_use: true, expires_at: null, note: null, granted_by: null,
  granted_at: "2027-01-01T00:00:00Z", revoked_at: null, used_at: null, used_for: null, state: "active",
};

describe("permits on the student page", () => {
  it("says what each permit lets through and for which section", () => {
    expect(permitText(base, () => "CS201-01")).toBe("Permit: the prerequisites of CS201-01");
    expect(permitText({ ...base, kind: "credit_overload", section_id: null, max_credits: 21 }, () => "?"))
      .toBe("Permit: a credit limit of 21 credits this term");
    expect(permitText({ ...base, kind: "consent", state: "used" }, () => "ART101-01")).toBe("Permit: the instructor's consent for ART101-01 (used)");
  });

  it("shows a term's active and used permits, not revoked or expired ones", () => {
    const list = [base, { ...base, id: "r", state: "revoked" as const }, { ...base, id: "o", term_id: "other" }, { ...base, id: "u", state: "used" as const }];
    expect(permitsIn(list, "t").map((p) => p.id)).toEqual(["p", "u"]);
  });

  it("says why a waiting place is skipped and that the place is kept", () => {
    expect(skippedText("student_on_hold")).toBe("skipped until the hold on your account is lifted (you keep your place)");
    expect(skippedText("something_new")).toContain("(something_new)");
  });
});
