// Unit tests of the section table: live counts win over the listed ones (reserved seats
// too), the button of a section in flight is disabled and says why (no double click),
// holdings show their state (a seat offered links to the offer), restrictions, reserved-seat
// pools and an offer-mode waitlist are listed.
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

  it("sends a seat offered to the Offers part instead of a button, and says when a waitlist offers seats", () => {
    const offerMode = { ...section("b", "MATH201", 0), waitlist_mode: "offer" as const, offer_window_minutes: 1440 };
    const w = mount(SectionTable, {
      props: { sections: [section("a", "CS101"), offerMode], live: new Map(), held: new Map<string, Holding>([["b", { kind: "offered" }]]), pending: new Map() },
    });
    const row = w.get('tr[data-section="MATH201-01"]');
    expect(row.text()).toContain("Seat offered");
    expect(row.text()).toContain("Waitlist offers seats (1 day to accept)");
    expect(row.get("a").attributes("href")).toBe("#offers");
    expect(row.get("a").text()).toBe("See the offer of MATH201-01");
    expect(row.findAll("button")).toHaveLength(0);
    expect(w.get('tr[data-section="CS101-01"]').text()).not.toContain("offers seats");
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

  it("says how many free seats are reserved and for whom, kept live from the stream", async () => {
    const pooled: Section = {
      ...section("p", "POL101", 2), capacity: 2, general_seats_left: 1,
      reserved: [{ id: "r1", attribute: "major", value: "CS", seats: 1, taken: 0, seats_left: 1, release_at: null, released: false }],
      restrictions: [{ attribute: "major", mode: "include", values: ["CS", "MATH"] }, { attribute: "standing", mode: "exclude", values: ["FRESHMAN"] }],
    };
    const live = new Map<string, SeatCounts>();
    const w = mount(SectionTable, { props: { sections: [pooled], live, held: new Map(), pending: new Map() } });
    const cell = () => w.get('[aria-label="Seats of POL101-01"]');
    expect(cell().text()).toBe("2 of 2 1 reserved for CS majors");
    expect(w.text()).toContain("Open to majors: CS, MATH");
    expect(w.text()).toContain("Closed to freshmen");
    expect(w.get("details.pools").text()).toContain("CS majors: 1 of 1 reserved seat left");
    // The general seat goes: the reserved one is still there, and the button still says Enroll.
    await w.setProps({ live: new Map([["p", { section_id: "p", seats_taken: 1, capacity: 2, seats_left: 1, waitlist_length: 0, reserved_seats_left: 1 }]]) });
    expect(cell().text()).toBe("1 of 2 1 reserved for CS majors");
    expect(w.get('tr[data-section="POL101-01"] button').text()).toBe("Enroll POL101-01");
    // The reserved seat goes too.
    await w.setProps({ live: new Map([["p", { section_id: "p", seats_taken: 2, capacity: 2, seats_left: 0, waitlist_length: 0, reserved_seats_left: 0 }]]) });
    expect(cell().text()).toBe("0 of 2");
    expect(w.get("details.pools").text()).toContain("CS majors: 0 of 1 reserved seat left");
  });

  it("stops showing a pool as reserved once its release time passes", async () => {
    const pooled: Section = {
      ...section("p", "POL101", 2), general_seats_left: 1,
      reserved: [{ id: "r1", attribute: "major", value: "CS", seats: 1, taken: 0, seats_left: 1, release_at: "2027-03-01T12:00:00Z", released: false }],
    };
    const w = mount(SectionTable, { props: { sections: [pooled], live: new Map(), held: new Map(), pending: new Map(), now: Date.parse("2027-03-01T11:00:00Z") } });
    expect(w.get('[aria-label="Seats of POL101-01"]').text()).toContain("1 reserved for CS majors");
    await w.setProps({ now: Date.parse("2027-03-01T12:00:01Z") });
    expect(w.get('[aria-label="Seats of POL101-01"]').text()).toBe("2 of 10");
    expect(w.get("details.pools").text()).toContain("open to everyone");
  });
});
