// Unit tests of the section table: live counts win over the listed ones, the button of a
// section in flight is disabled and says why (no double click), holdings show their state.
import { mount } from "@vue/test-utils";
import { describe, expect, it } from "vitest";
import type { SeatCounts } from "../student/seats";
import type { Section } from "../student/registration";
import SectionTable, { type Holding } from "./SectionTable.vue";

const section = (id: string, code: string, seatsLeft = 5): Section => ({
  id, course_code: code, section_code: "01", title: `${code} title`, term_id: "t", capacity: 10, seats_taken: 10 - seatsLeft,
  seats_left: seatsLeft, waitlist_capacity: 5, waitlist_length: 0, credits: 3,
  meetings: [{ day: "mon", start: "09:00", end: "09:50" }, { day: "wed", start: "09:00", end: "09:50" }], prerequisites: [],
});

function render(props: { live?: Map<string, SeatCounts>; held?: Map<string, Holding>; pending?: Map<string, string> }) {
  return mount(SectionTable, {
    props: {
      sections: [section("a", "CS101"), section("b", "MATH201", 0), section("c", "BIO110")],
      live: props.live ?? new Map(),
      held: props.held ?? new Map(),
      pending: props.pending ?? new Map(),
    },
  });
}

describe("SectionTable", () => {
  it("shows live counts over the listed ones", () => {
    const w = render({ live: new Map([["a", { section_id: "a", seats_taken: 9, capacity: 10, seats_left: 1, waitlist_length: 0 }]]) });
    expect(w.get('[aria-label="Seats of CS101-01"]').text()).toBe("1 of 10");
    expect(w.get('[aria-label="Seats of BIO110-01"]').text()).toBe("5 of 10");
    expect(w.text()).toContain("Mon Wed 09:00–09:50");
  });

  it("offers the waitlist of a full section and emits the section on click", async () => {
    const w = render({});
    const join = w.get('tr[data-section="MATH201-01"] button');
    expect(join.text()).toBe("Join waitlist MATH201-01");
    await join.trigger("click");
    expect(w.emitted("enroll")?.[0]?.[0]).toMatchObject({ id: "b" });
  });

  it("disables the button of a section in flight and says what is happening", async () => {
    const w = render({ pending: new Map([["a", "Still trying…"]]) });
    const button = w.get('tr[data-section="CS101-01"] button');
    expect(button.attributes("disabled")).toBeDefined();
    expect(button.text()).toBe("Still trying… CS101-01");
    await button.trigger("click");
    expect(w.emitted("enroll")).toBeUndefined();
  });

  it("shows a seat or a waitlist position, with a drop button", async () => {
    const w = render({ held: new Map<string, Holding>([["a", { kind: "enrolled" }], ["c", { kind: "waitlisted", position: 4 }]]) });
    expect(w.text()).toContain("Enrolled");
    expect(w.text()).toContain("Waitlist #4");
    expect(w.get('tr[data-section="BIO110-01"] button').text()).toBe("Leave waitlist BIO110-01");
    await w.get('tr[data-section="CS101-01"] button').trigger("click");
    expect(w.emitted("drop")?.[0]?.[0]).toMatchObject({ id: "a" });
  });

  it("lists a lecture's labs under it, offers the chooser and the cart", async () => {
    const lecture: Section = { ...section("l", "BIOL1406"), section_code: "001", component: "lecture", components: ["lecture", "lab"], links: ["x"], corequisites: ["MATH2413"] };
    const lab: Section = { ...section("x", "BIOL1406"), section_code: "L01", component: "lab", components: ["lecture", "lab"], links: ["l"] };
    const w = mount(SectionTable, {
      props: { sections: [lab, lecture], live: new Map(), held: new Map(), pending: new Map(), inCart: new Set(["x"]) },
    });
    const rows = w.findAll("tbody tr");
    expect(rows.map((r) => r.attributes("data-section"))).toEqual(["BIOL1406-001", "BIOL1406-L01"]);
    expect(rows[1]!.classes()).toContain("child");
    expect(rows[0]!.text()).toContain("Requires in the same term: MATH2413");
    expect(rows[1]!.text()).toContain("Lab of 001");
    // A lab alone cannot be enrolled: only the cart, where it already is.
    expect(rows[1]!.findAll("button").map((b) => b.text())).toEqual(["In cart BIOL1406-L01"]);
    const [enroll, add] = rows[0]!.findAll("button");
    expect(enroll!.text()).toBe("Enroll… BIOL1406-001");
    await add!.trigger("click");
    expect(w.emitted("cart")?.[0]?.[0]).toMatchObject({ id: "l" });
  });

  it("shows a seat still being confirmed as confirming, never enrolled", () => {
    const w = render({ held: new Map<string, Holding>([["a", { kind: "held" }]]) });
    const row = w.get('tr[data-section="CS101-01"]');
    expect(row.text()).toContain("Confirming…");
    expect(row.text()).not.toContain("Enrolled");
    expect(row.get("button").attributes("disabled")).toBeDefined();
  });
});
