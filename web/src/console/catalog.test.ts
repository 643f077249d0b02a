import { describe, expect, it } from "vitest";
import {
  componentChoices, COMPONENTS, courseRows, creditRangeProblem, creditsText, linkCandidates, linkLabels, offerWindowProblem, orderComponents, parseCodes,
  waitlistFields, waitlistModeText,
} from "./catalog";
import type { Component } from "./api";

const sec = (id: string, section_code: string, component: Component) => ({ id, section_code, component });

describe("orderComponents", () => {
  it("puts the primary first and the rest in the forms' order", () => {
    expect(orderComponents(["recitation", "lab", "lecture"], "lab")).toEqual(["lab", "lecture", "recitation"]);
    expect(orderComponents(["lab", "lecture"], null)).toEqual(["lecture", "lab"]);
  });
  it("ignores a primary that is not chosen", () => {
    expect(orderComponents(["lab"], "lecture")).toEqual(["lab"]);
    expect(orderComponents([], "lecture")).toEqual([]);
  });
});

describe("parseCodes", () => {
  it("splits on commas, keeps spaces inside a code, drops blanks", () => {
    expect(parseCodes(" MATH2413, phys 2425 ,, ")).toEqual(["MATH2413", "phys 2425"]);
    expect(parseCodes("")).toEqual([]);
  });
});

describe("componentChoices", () => {
  it("is the course's components, or all of them when it has none or they are unknown", () => {
    expect(componentChoices(["lecture", "lab"])).toEqual(["lecture", "lab"]);
    expect(componentChoices([])).toEqual(COMPONENTS);
    expect(componentChoices(null)).toEqual(COMPONENTS);
  });
});

describe("linkCandidates", () => {
  const all = [sec("a", "01", "lecture"), sec("b", "02", "lecture"), sec("c", "L2", "lab"), sec("d", "L1", "lab"), sec("e", "R1", "recitation")];
  it("offers a lecture (primary) the sections of the other components", () => {
    expect(linkCandidates("lecture", ["lecture", "lab", "recitation"], all).map((s) => s.id)).toEqual(["d", "c", "e"]);
  });
  it("offers a lab only the primary's sections, never another lab or a recitation", () => {
    expect(linkCandidates("lab", ["lecture", "lab", "recitation"], all).map((s) => s.id)).toEqual(["a", "b"]);
  });
  it("follows the course's primary, and leaves the section itself out", () => {
    expect(linkCandidates("lab", ["lab", "lecture"], all, "c").map((s) => s.id)).toEqual(["a", "b", "e"]);
    expect(linkCandidates("lecture", ["lab", "lecture"], all).map((s) => s.id)).toEqual(["d", "c"]);
  });
});

describe("linkLabels", () => {
  it("names links by section code and component, in order; unknown ids by their start", () => {
    const known = new Map([["x", { section_code: "L2", component: "lab" as Component }], ["y", { section_code: "L1", component: "lab" as Component }]]);
    expect(linkLabels(["x", "y", "0123456789abcdef"], known)).toEqual(["01234567", "L1 (lab)", "L2 (lab)"]);
  });
});

describe("courseRows", () => {
  it("lists created courses and fills in the others from their sections, counting sections", () => {
    const rows = courseRows(
      [{ code: "BIO101", title: "Biology", credits: 4, components: ["lecture", "lab"], corequisites: ["CHEM101"] }],
      [
        { course_code: "BIO101", title: "Biology", credits: 4, components: ["lecture", "lab"], corequisites: ["CHEM101"] },
        { course_code: "ART100", title: "Drawing", credits: 3, components: [], corequisites: [] },
        { course_code: "ART100", title: "Drawing", credits: 3, components: [], corequisites: [] },
      ],
    );
    expect(rows.map((r) => [r.code, r.sections])).toEqual([["ART100", 2], ["BIO101", 1]]);
    expect(rows[1].corequisites).toEqual(["CHEM101"]);
  });
});

describe("canonicalCode", () => {
  it("upper-cases and drops the separator", async () => {
    const { canonicalCode } = await import("./catalog");
    expect(canonicalCode(" math-2413 ")).toBe("MATH2413");
    expect(canonicalCode("cs 101")).toBe("CS101");
  });
});

describe("the waitlist mode of a new section", () => {
  it("takes an offer window of 1 to 43200 whole minutes, and none in auto mode", () => {
    expect(offerWindowProblem("offer", 1440)).toBeNull();
    expect(offerWindowProblem("offer", 1)).toBeNull();
    expect(offerWindowProblem("offer", 43200)).toBeNull();
    expect(offerWindowProblem("offer", 0)).toMatch(/1 to 43200 minutes/);
    expect(offerWindowProblem("offer", 43201)).toMatch(/30 days/);
    expect(offerWindowProblem("offer", 1.5)).toMatch(/whole minutes/);
    expect(offerWindowProblem("offer", Number.NaN)).not.toBeNull();
    expect(offerWindowProblem("auto", 0)).toBeNull();
  });

  it("sends the mode and window only in offer mode", () => {
    expect(waitlistFields("auto", 1440)).toEqual({});
    expect(waitlistFields("offer", 90)).toEqual({ waitlist_mode: "offer", offer_window_minutes: 90 });
  });

  it("reads the mode in the section list", () => {
    expect(waitlistModeText({ waitlist_mode: "offer", offer_window_minutes: 1440 })).toBe("Offer (1 day to accept)");
    expect(waitlistModeText({ waitlist_mode: "offer", offer_window_minutes: 90 })).toBe("Offer (1 h 30 min to accept)");
    expect(waitlistModeText({ waitlist_mode: "auto", offer_window_minutes: 1440 })).toBe("Automatic");
    expect(waitlistModeText({})).toBe("Automatic");
  });
});

describe("credit ranges and grading", () => {
  it("says a fixed course's credits plainly and a range with its default", () => {
    expect(creditsText({ credits: 3 })).toBe("3");
    expect(creditsText({ credits: 3, min_credits: 3, max_credits: 3 })).toBe("3");
    expect(creditsText({ credits: 3, min_credits: 1, max_credits: 4 })).toBe("1–4 (3 by default)");
    expect(creditsText({ credits: null })).toBe("—");
  });
  it("refuses a range the server would refuse, before sending", () => {
    expect(creditRangeProblem(3, null, null)).toBeNull();
    expect(creditRangeProblem(3, 1, 4)).toBeNull();
    expect(creditRangeProblem(3, 4, null)).toMatch(/fewest/);
    expect(creditRangeProblem(3, null, 2)).toMatch(/most/);
    expect(creditRangeProblem(3, null, 13)).toMatch(/most/);
  });
  it("lists a course's range and bases from its sections", () => {
    const rows = courseRows([], [{ course_code: "IS400", title: "Study", credits: 3, min_credits: 1, max_credits: 6, grading_bases: ["letter", "pass_fail"], components: [], corequisites: [] }]);
    expect(rows[0]).toMatchObject({ code: "IS400", min_credits: 1, max_credits: 6, grading_bases: ["letter", "pass_fail"], sections: 1 });
  });
});
