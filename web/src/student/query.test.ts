// Unit tests of the section search query: only the filters set are sent, in the server's form.
import { describe, expect, it } from "vitest";
import { emptyFilters, sectionQuery } from "./query";

describe("sectionQuery", () => {
  it("sends only paging when nothing is set", () => {
    expect(sectionQuery(emptyFilters(), 25)).toBe("limit=25");
  });

  it("sends every filter set, trimmed and in HH:MM", () => {
    const q = new URLSearchParams(
      sectionQuery({ q: "  linear alg ", day: "tue", startsAfter: "09:00:00", endsBefore: "17:30", openOnly: true }, 25, "c-1"),
    );
    expect(Object.fromEntries(q)).toEqual({
      q: "linear alg", day: "tue", starts_after: "09:00", ends_before: "17:30", open: "true", limit: "25", cursor: "c-1",
    });
  });

  it("leaves out a half-typed time and caps the text at 60 characters", () => {
    const q = new URLSearchParams(sectionQuery({ ...emptyFilters(), q: "x".repeat(80), startsAfter: "9:" }, 10));
    expect(q.get("starts_after")).toBeNull();
    expect(q.get("q")).toHaveLength(60);
  });
});
