// Unit tests of the week calendar layout: positions from times, weekend columns only when
// needed, the grid widened around early or late meetings, overlaps placed side by side.
import { describe, expect, it } from "vitest";
import { formatMeetings, layoutWeek, minutes, type CalendarEntry } from "./calendar";

const entry = (id: string, meetings: CalendarEntry["meetings"], kind: CalendarEntry["kind"] = "enrolled"): CalendarEntry => ({
  id, label: id, kind, meetings,
});

describe("layoutWeek", () => {
  it("shows Monday to Friday from 08:00 to 18:00 for an empty week", () => {
    const w = layoutWeek([]);
    expect(w.days).toEqual(["mon", "tue", "wed", "thu", "fri"]);
    expect([w.startMin, w.endMin]).toEqual([480, 1080]);
    expect(w.hours).toHaveLength(11);
    expect(w.blocks).toEqual([]);
  });

  it("places a meeting by its times", () => {
    const w = layoutWeek([entry("CS101-01", [{ day: "mon", start: "09:00", end: "10:30" }, { day: "wed", start: "13:00", end: "13:50" }])]);
    const [mon, wed] = w.blocks;
    expect(mon).toMatchObject({ day: "mon", top: 60 / 600, height: 90 / 600, column: 0, columns: 1 });
    expect(wed.day).toBe("wed");
    expect(wed.top).toBeCloseTo(300 / 600);
    expect(wed.height).toBeCloseTo(50 / 600);
  });

  it("keeps a seat offered apart from enrolled and waitlisted ones, beside what it overlaps", () => {
    const w = layoutWeek([
      entry("CS101-01", [{ day: "thu", start: "13:00", end: "14:15" }]),
      entry("OFF-01", [{ day: "thu", start: "13:30", end: "14:00" }], "offered"),
    ]);
    expect(w.blocks.map((b) => [b.entryId, b.kind, b.columns])).toEqual([["CS101-01", "enrolled", 2], ["OFF-01", "offered", 2]]);
  });

  it("adds Saturday and Sunday only when something meets then", () => {
    expect(layoutWeek([entry("a", [{ day: "sat", start: "10:00", end: "11:00" }])]).days).toEqual(["mon", "tue", "wed", "thu", "fri", "sat"]);
    expect(layoutWeek([entry("a", [{ day: "sun", start: "10:00", end: "11:00" }])]).days).toEqual(["mon", "tue", "wed", "thu", "fri", "sun"]);
  });

  it("widens the grid to whole hours around early and late meetings", () => {
    const w = layoutWeek([entry("a", [{ day: "tue", start: "07:30", end: "08:20" }, { day: "thu", start: "18:30", end: "19:45" }])]);
    expect([w.startMin, w.endMin]).toEqual([420, 1200]);
    expect(w.blocks[0].top).toBe(30 / 780);
  });

  it("puts overlapping meetings side by side, and the rest full width", () => {
    const w = layoutWeek([
      entry("a", [{ day: "mon", start: "09:00", end: "10:00" }]),
      entry("b", [{ day: "mon", start: "09:30", end: "11:00" }]),
      entry("c", [{ day: "mon", start: "10:00", end: "10:30" }]),
      entry("d", [{ day: "mon", start: "12:00", end: "13:00" }]),
      entry("e", [{ day: "tue", start: "09:00", end: "10:00" }], "waitlisted"),
    ]);
    const by = (id: string) => w.blocks.find((b) => b.entryId === id)!;
    expect([by("a").column, by("a").columns]).toEqual([0, 2]);
    expect([by("b").column, by("b").columns]).toEqual([1, 2]);
    // c starts when a ends: it reuses a's column, still beside b.
    expect([by("c").column, by("c").columns]).toEqual([0, 2]);
    expect([by("d").column, by("d").columns]).toEqual([0, 1]);
    expect(by("e")).toMatchObject({ column: 0, columns: 1, kind: "waitlisted" });
  });

  it("parses HH:MM", () => {
    expect(minutes("00:00")).toBe(0);
    expect(minutes("23:59")).toBe(1439);
  });
});

describe("formatMeetings", () => {
  it("groups days that meet at the same hours, in week order", () => {
    expect(
      formatMeetings([
        { day: "fri", start: "09:00", end: "09:50" },
        { day: "mon", start: "09:00", end: "09:50" },
        { day: "wed", start: "09:00", end: "09:50" },
        { day: "thu", start: "14:00", end: "16:00" },
      ]),
    ).toBe("Mon Wed Fri 09:00–09:50; Thu 14:00–16:00");
    expect(formatMeetings([])).toBe("");
  });
});
