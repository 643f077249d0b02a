// Unit tests of the console's deadlines form: stored deadlines shown in local time and sent
// back unchanged (seconds kept), an empty field sent as unset, and the order told before
// sending (add ≤ drop ≤ withdraw, equal allowed, unset ones skipped).
import { describe, expect, it } from "vitest";
import { deadlinesBody, deadlinesDraft, deadlinesProblem, type DeadlinesDraft } from "./deadlines";

const local = (y: number, m: number, d: number, h = 23, min = 59) => new Date(y, m - 1, d, h, min).toISOString();
const draft = (add_by = "", drop_by = "", withdraw_by = ""): DeadlinesDraft => ({ add_by, drop_by, withdraw_by });

describe("deadlinesDraft and deadlinesBody", () => {
  it("shows stored deadlines in local time and unset ones empty", () => {
    expect(deadlinesDraft({ add_by: local(2027, 1, 20), drop_by: null, withdraw_by: local(2027, 3, 31, 12, 0) }))
      .toEqual(draft("2027-01-20T23:59", "", "2027-03-31T12:00"));
  });
  it("sends RFC 3339, and null for an empty field", () => {
    expect(deadlinesBody(draft("2027-01-20T23:59", "", "2027-03-31T12:00")))
      .toEqual({ add_by: local(2027, 1, 20), drop_by: null, withdraw_by: local(2027, 3, 31, 12, 0) });
    expect(deadlinesBody(draft())).toEqual({ add_by: null, drop_by: null, withdraw_by: null });
  });
  it("keeps a stored instant the form did not change, seconds and all", () => {
    const stored = { add_by: new Date(2027, 0, 20, 23, 59, 59).toISOString(), drop_by: null, withdraw_by: null };
    const shown = deadlinesDraft(stored);
    expect(shown.add_by).toBe("2027-01-20T23:59");
    expect(deadlinesBody({ ...shown, drop_by: "2027-02-03T23:59" }, stored))
      .toEqual({ add_by: stored.add_by, drop_by: local(2027, 2, 3), withdraw_by: null });
    expect(deadlinesBody({ ...shown, add_by: "2027-01-21T08:00" }, stored).add_by).toBe(local(2027, 1, 21, 8, 0));
    expect(deadlinesBody({ ...shown, add_by: "" }, stored).add_by).toBeNull();
  });
});

describe("deadlinesProblem", () => {
  it("accepts deadlines in order, equal ones and unset ones", () => {
    expect(deadlinesProblem(draft())).toBeNull();
    expect(deadlinesProblem(draft("2027-01-20T23:59", "2027-02-03T23:59", "2027-03-31T23:59"))).toBeNull();
    expect(deadlinesProblem(draft("2027-01-20T23:59", "2027-01-20T23:59", "2027-01-20T23:59"))).toBeNull();
    expect(deadlinesProblem(draft("", "2027-02-03T23:59", ""))).toBeNull();
  });
  it("names the pair out of order", () => {
    expect(deadlinesProblem(draft("2027-02-03T23:59", "2027-01-20T23:59", ""))).toBe("The last day to drop without a W must not be before the last day to add.");
    expect(deadlinesProblem(draft("", "2027-03-31T23:59", "2027-02-03T23:59"))).toBe("The last day to withdraw must not be before the last day to drop without a W.");
    // With no drop deadline between them, add and withdraw are still compared.
    expect(deadlinesProblem(draft("2027-03-31T23:59", "", "2027-02-03T23:59"))).toBe("The last day to withdraw must not be before the last day to add.");
  });
  it("says when a field is not a time", () => {
    expect(deadlinesProblem(draft("soon"))).toBe("The last day to add is not a time.");
  });
});
