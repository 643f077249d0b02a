// Unit tests of the console's policy forms: values upper-cased and checked as the server
// does, pools turned into the body with RFC 3339 release times (and back for the editor),
// the limits told before sending, blank restriction rows and attributes left out or cleared.
import { describe, expect, it } from "vitest";
import {
  attributesBody, attributesDraft, attributesProblem, emptyPool, instantOf, localInput, parseValues, poolDrafts, poolsBody,
  poolPhrase, poolRow, poolsProblem, restrictionsBody, restrictionsProblem, type PoolDraft,
} from "./policy";
import { formatTime, type ReservedPool } from "../student/policy";

const draft = (value: string, seats: number, release = ""): PoolDraft => ({ ...emptyPool(), value, seats, release });

describe("parseValues", () => {
  it("upper-cases, splits on commas or spaces, drops blanks and repeats", () => {
    expect(parseValues(" cs, Math ,,cs bs-cs")).toEqual(["CS", "MATH", "BS-CS"]);
    expect(parseValues("  ")).toEqual([]);
  });
});

describe("times", () => {
  it("turns a local datetime-local value into RFC 3339 and back", () => {
    const iso = instantOf("2027-03-03T09:30");
    expect(iso).toBe(new Date(2027, 2, 3, 9, 30).toISOString());
    expect(localInput(iso)).toBe("2027-03-03T09:30");
    expect(instantOf("")).toBeNull();
    expect(localInput(null)).toBe("");
  });
});

describe("pools", () => {
  it("sends values upper case and a release time only when given", () => {
    expect(poolsBody([draft(" cs ", 10), { ...draft("honors", 2, "2027-03-03T09:30"), attribute: "cohort" }])).toEqual([
      { attribute: "major", value: "CS", seats: 10, release_at: null },
      { attribute: "cohort", value: "HONORS", seats: 2, release_at: new Date(2027, 2, 3, 9, 30).toISOString() },
    ]);
  });

  it("reads a section's pools back into drafts", () => {
    const release = new Date(2027, 2, 3, 9, 30).toISOString();
    expect(poolDrafts([{ attribute: "major", value: "CS", seats: 3, release_at: release }])).toEqual([{ attribute: "major", value: "CS", seats: 3, release: "2027-03-03T09:30" }]);
  });

  it("says what the server would refuse", () => {
    expect(poolsProblem([draft("CS", 1)], 2)).toBeNull();
    expect(poolsProblem([], 0)).toBeNull();
    expect(poolsProblem([draft("CS", 2), draft("MATH", 1)], 2)).toBe("The pools reserve 3 seats, more than the section's 2.");
    expect(poolsProblem([draft("C S", 1)], 5)).toMatch(/^Pool 1: the value/);
    expect(poolsProblem([draft("CS", 1), draft("", 1)], 5)).toMatch(/^Pool 2: the value/);
    expect(poolsProblem([draft("ABCDEFGHIJKLMNOPQ", 1)], 5)).toMatch(/^Pool 1: the value/);
    expect(poolsProblem([draft("CS", 1.5)], 5)).toMatch(/^Pool 1: the seats/);
    expect(poolsProblem([draft("CS", -1)], 5)).toMatch(/^Pool 1: the seats/);
    expect(poolsProblem([draft("CS", 1, "not a time")], 5)).toMatch(/^Pool 1: the release time/);
    expect(poolsProblem(Array.from({ length: 11 }, (_, i) => draft(`M${i}`, 0)), 5)).toBe("At most 10 reserved pools.");
    expect(poolsProblem([draft("CS", 1), draft("cs ", 1)], 5)).toBe("Two pools for major CS: one pool per value.");
    expect(poolsProblem([draft("CS", 1), { ...draft("CS", 1), attribute: "program" }], 5)).toBeNull();
  });
});

describe("restrictions", () => {
  it("leaves out rows without a value", () => {
    expect(restrictionsBody([
      { attribute: "major", mode: "include", values: "cs, math" },
      { attribute: "standing", mode: "exclude", values: " " },
    ])).toEqual([{ attribute: "major", mode: "include", values: ["CS", "MATH"] }]);
  });
  it("names a value the server would refuse", () => {
    expect(restrictionsProblem([{ attribute: "major", mode: "include", values: "CS" }])).toBeNull();
    expect(restrictionsProblem([{ attribute: "major", mode: "include", values: "CS, M&A" }])).toBe("Restriction 1: M&A is not a value (1–16 letters, digits, _ or -).");
    expect(restrictionsProblem([{ attribute: "major", mode: "include", values: "A B C D E F G H I J K" }])).toBe("Restriction 1: at most 10 values.");
    expect(restrictionsProblem(Array.from({ length: 11 }, () => ({ attribute: "major" as const, mode: "include" as const, values: "CS" })))).toBe("At most 10 restrictions.");
  });
});

describe("student attributes", () => {
  it("round-trips a student's attributes, a blank program or cohort clearing it", () => {
    const d = attributesDraft({ majors: ["CS", "MATH"], program: "BS-CS", cohort: null });
    expect(d).toEqual({ majors: "CS, MATH", program: "BS-CS", cohort: "" });
    expect(attributesBody({ ...d, program: " ", cohort: "honors" })).toEqual({ majors: ["CS", "MATH"], program: null, cohort: "HONORS" });
    expect(attributesDraft({})).toEqual({ majors: "", program: "", cohort: "" });
  });
  it("says what the server would refuse", () => {
    expect(attributesProblem({ majors: "a b c d e", program: "", cohort: "" })).toBeNull();
    expect(attributesProblem({ majors: "a b c d e f", program: "", cohort: "" })).toBe("At most 5 majors.");
    expect(attributesProblem({ majors: "CS", program: "B.S.", cohort: "" })).toBe("B.S.: a value is 1–16 letters, digits, _ or -.");
  });
});

describe("pool wording", () => {
  const pool: ReservedPool = { id: "p", attribute: "major", value: "CS", seats: 2, taken: 1, seats_left: 1, release_at: null, released: false };
  const utc = (iso: string) => formatTime(iso, "en-US", "UTC");
  const now = Date.parse("2027-03-01T12:00:00Z");
  it("says what a pool reserves", () => {
    expect(poolPhrase({ attribute: "major", value: "CS", seats: 1 })).toBe("1 seat reserved for CS majors");
    expect(poolPhrase({ attribute: "standing", value: "SENIOR", seats: 4 })).toBe("4 seats reserved for seniors");
  });
  it("lists a pool with its seats taken and its release", () => {
    expect(poolRow(pool, now, utc)).toBe("CS majors: 1 of 2 taken");
    expect(poolRow({ ...pool, release_at: "2027-03-03T09:00:00Z" }, now, utc)).toBe("CS majors: 1 of 2 taken, until Mar 3, 2027, 9:00 AM");
    expect(poolRow({ ...pool, release_at: "2027-02-03T09:00:00Z" }, now, utc)).toBe("CS majors: 1 of 2 taken, released");
  });
});

