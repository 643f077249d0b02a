// Unit tests of the deadlines on the student page: the plain-words line with only the
// deadlines set (a passed one marked), what a seat's drop is at each moment (each deadline
// inclusive), and the wording of a withdrawal and of the W list.
import { describe, expect, it } from "vitest";
import { formatTime } from "./policy";
import { deadlinesText, dropKind, NO_DEADLINES, withdrawnOutcome, withdrawnText, withdrawQuestion, type Deadlines } from "./deadlines";

const utc = (iso: string) => formatTime(iso, "en-US", "UTC");
const term: Deadlines = { add_by: "2027-01-20T23:59:00Z", drop_by: "2027-02-03T23:59:00Z", withdraw_by: "2027-03-31T23:59:00Z" };
const at = (iso: string) => Date.parse(iso);

describe("deadlinesText", () => {
  it("says every deadline set, in plain words", () => {
    expect(deadlinesText(term, at("2027-01-10T00:00:00Z"), utc)).toBe(
      "Last day to add: Jan 20, 2027, 11:59 PM; drop without a W: Feb 3, 2027, 11:59 PM; withdraw (with a W): Mar 31, 2027, 11:59 PM.",
    );
  });
  it("leaves out the unset ones, and says nothing for a term without deadlines", () => {
    expect(deadlinesText({ ...NO_DEADLINES, drop_by: term.drop_by }, at("2027-01-10T00:00:00Z"), utc)).toBe("Last day to drop without a W: Feb 3, 2027, 11:59 PM.");
    expect(deadlinesText(NO_DEADLINES, 0, utc)).toBeNull();
  });
  it("marks the ones passed", () => {
    expect(deadlinesText(term, at("2027-02-10T00:00:00Z"), utc)).toBe(
      "Last day to add: Jan 20, 2027, 11:59 PM (passed); drop without a W: Feb 3, 2027, 11:59 PM (passed); withdraw (with a W): Mar 31, 2027, 11:59 PM.",
    );
  });
});

describe("dropKind", () => {
  it("is plain by drop_by (inclusive), a withdrawal after it by withdraw_by, refused after that", () => {
    expect(dropKind(term, at("2027-02-03T23:59:00Z"))).toBe("plain");
    expect(dropKind(term, at("2027-02-03T23:59:00.001Z"))).toBe("withdrawal");
    expect(dropKind(term, at("2027-03-31T23:59:00Z"))).toBe("withdrawal");
    expect(dropKind(term, at("2027-04-01T00:00:00Z"))).toBe("closed");
  });
  it("is plain without deadlines, and a withdrawal ever after drop_by when withdraw_by is unset", () => {
    expect(dropKind(NO_DEADLINES, at("2099-01-01T00:00:00Z"))).toBe("plain");
    expect(dropKind({ ...term, withdraw_by: null }, at("2099-01-01T00:00:00Z"))).toBe("withdrawal");
    expect(dropKind({ ...term, drop_by: null }, at("2027-03-01T00:00:00Z"))).toBe("plain");
    expect(dropKind({ ...term, drop_by: null }, at("2027-04-01T00:00:00Z"))).toBe("closed");
  });
});

describe("withdrawal wording", () => {
  it("asks before and says after", () => {
    expect(withdrawQuestion("CS101-01")).toBe("The last day to drop without a W has passed: leaving CS101-01 now is a withdrawal, and your record will keep a W for it.");
    expect(withdrawnOutcome("the BIOL1406 set")).toBe("You withdrew from the BIOL1406 set: your record keeps a W for it.");
  });
  it("lists a W with its section and when", () => {
    expect(withdrawnText({ section_id: "s", course_code: "CS101", section_code: "01", withdrawn_at: "2027-02-10T15:30:00Z" }, utc)).toBe("CS101-01 · W on Feb 10, 2027, 3:30 PM");
  });
});
