// Unit tests of linked sets: labs listed under their lecture, the chooser offers only
// linked sections per part, an incomplete choice names what is missing, the schedule keeps
// a set's members together and never shows a held seat as enrolled.
import { describe, expect, it } from "vitest";
import type { Component, Schedule, Section } from "./registration";
import { chosenSet, corequisiteText, placeKind, scheduleCredits, scheduleGroups, searchRows, setChoices } from "./linked";

const sec = (id: string, course: string, code: string, component: Component, links: string[] = [], components: Component[] = ["lecture", "lab"]): Section => ({
  id, course_code: course, section_code: code, title: course, term_id: "t", capacity: 10, seats_taken: 0, seats_left: 10,
  waitlist_capacity: 5, waitlist_length: 0, credits: 4, meetings: [], prerequisites: [], component, links, components, corequisites: [],
});

const lec1 = sec("l1", "BIOL1406", "001", "lecture", ["a1", "a2"]);
const lec2 = sec("l2", "BIOL1406", "002", "lecture", ["a3"]);
const lab1 = sec("a1", "BIOL1406", "L01", "lab", ["l1"]);
const lab2 = sec("a2", "BIOL1406", "L02", "lab", ["l1"]);
const lab3 = sec("a3", "BIOL1406", "L03", "lab", ["l2"]);
const plain = sec("p", "MATH2413", "001", "lecture", [], []);

describe("searchRows", () => {
  it("lists each lecture's linked labs under it, plain sections as they come", () => {
    const rows = searchRows([lec1, lec2, lab1, lab2, lab3, plain]);
    expect(rows.map((r) => [r.section.id, r.under])).toEqual([
      ["l1", null], ["a1", "l1"], ["a2", "l1"], ["l2", null], ["a3", "l2"], ["p", null],
    ]);
  });

  it("lists a lab alone when its lecture is not on the page", () => {
    expect(searchRows([lab3, plain]).map((r) => [r.section.id, r.under])).toEqual([["a3", null], ["p", null]]);
  });
});

describe("setChoices and chosenSet", () => {
  const chem = sec("c1", "CHEM1411", "001", "lecture", ["cl1", "cr1", "cl9"], ["lecture", "lab", "recitation"]);
  const course = [
    chem,
    sec("cl1", "CHEM1411", "L01", "lab", ["c1"]),
    sec("cl2", "CHEM1411", "L02", "lab", ["c2"]),
    sec("cr1", "CHEM1411", "R01", "recitation", ["c1"]),
  ];

  it("offers per part only the sections linked to the lecture", () => {
    const choices = setChoices(chem, course);
    expect(choices.map((c) => [c.component, c.options.map((o) => o.id)])).toEqual([["lab", ["cl1"]], ["recitation", ["cr1"]]]);
  });

  it("gives the set lecture first once every part is chosen, else what is missing", () => {
    const choices = setChoices(chem, course);
    expect(chosenSet(chem, choices, { lab: "cl1" })).toEqual({ missing: ["recitation"] });
    expect(chosenSet(chem, choices, { lab: "cl2", recitation: "cr1" })).toEqual({ missing: ["lab"] });
    expect(chosenSet(chem, choices, { recitation: "cr1", lab: "cl1" })).toEqual({ ids: ["c1", "cl1", "cr1"] });
  });
});

describe("schedule", () => {
  const entry = (id: string, course: string, code: string, extra = {}) => ({ section_id: id, course_code: course, section_code: code, credits: 4, meetings: [], ...extra });

  it("keeps a set's members together, the lecture first", () => {
    const schedule: Schedule = {
      enrolled: [entry("a1", "BIOL1406", "L01"), entry("p", "MATH2413", "001"), entry("l1", "BIOL1406", "001")],
      waitlisted: [],
      credits: 8,
    };
    const known = new Map([lec1, lab1, plain].map((s) => [s.id, s]));
    const groups = scheduleGroups(schedule, known);
    expect(groups.map((g) => [g.course_code, g.linked, g.places.map((p) => p.entry.section_code)])).toEqual([
      ["BIOL1406", true, ["001", "L01"]],
      ["MATH2413", false, ["001"]],
    ]);
    expect(groups[0]!.places.map((p) => p.component)).toEqual(["lecture", "lab"]);
    // The set is one 4-credit course, not 8.
    expect(scheduleCredits(groups)).toBe(8);
  });

  it("never shows a held seat as enrolled", () => {
    expect(placeKind(entry("x", "C", "1", { status: "held" }), "enrolled")).toBe("held");
    expect(placeKind(entry("x", "C", "1"), "waitlisted")).toBe("held");
    expect(placeKind(entry("x", "C", "1", { position: 2 }), "waitlisted")).toBe("waitlisted");
    expect(placeKind(entry("x", "C", "1"), "enrolled")).toBe("enrolled");
  });
});

it("names corequisites", () => {
  expect(corequisiteText({ corequisites: ["MATH2413"] })).toBe("Requires in the same term: MATH2413");
  expect(corequisiteText({ corequisites: [] })).toBeNull();
});
