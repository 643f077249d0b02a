// Unit tests of the policy wording: reserved seats split from the general ones (live counts
// first, a pool past its release time no longer counted), whom a pool or restriction names,
// and the registration appointment in a fixed locale and time zone.
import { describe, expect, it } from "vitest";
import {
  appointmentText, formatTime, isReserving, listText, livePools, localizeInstants, poolText, restrictionText, seatView, whoText,
  type ReservedPool,
} from "./policy";

const NOW = Date.parse("2027-03-01T12:00:00Z");
const utc = (iso: string) => formatTime(iso, "en-US", "UTC");

const pool = (value: string, seats: number, taken: number, extra: Partial<ReservedPool> = {}): ReservedPool => ({
  id: `p-${value}`, attribute: "major", value, seats, taken, seats_left: seats - taken, release_at: null, released: false, ...extra,
});

describe("whoText and listText", () => {
  it("names the students of each attribute", () => {
    expect(whoText("major", "CS")).toBe("CS majors");
    expect(whoText("program", "BS-CS")).toBe("the BS-CS program");
    expect(whoText("cohort", "HONORS")).toBe("the HONORS cohort");
    expect(whoText("standing", "SENIOR")).toBe("seniors");
    expect(whoText("standing", "freshman")).toBe("freshmen");
    expect(whoText("standing", "GRADUATE")).toBe("graduate students");
    expect(whoText("standing", "POSTDOC")).toBe("POSTDOC students");
  });
  it("joins with commas and a final and", () => {
    expect(listText([])).toBe("");
    expect(listText(["a"])).toBe("a");
    expect(listText(["a", "b"])).toBe("a and b");
    expect(listText(["a", "b", "c"])).toBe("a, b and c");
  });
});

describe("seatView", () => {
  it("says nothing of reservations for a section without pools (or from a server without them)", () => {
    expect(seatView({ seats_left: 5, capacity: 10 }, undefined, NOW)).toEqual({ left: 5, capacity: 10, reserved: 0, general: 5, note: null, who: null });
    expect(seatView({ seats_left: 5, capacity: 10, general_seats_left: 5, reserved: [] }, undefined, NOW).note).toBeNull();
  });

  it("splits the listed seats into reserved and general", () => {
    const v = seatView({ seats_left: 2, capacity: 2, general_seats_left: 1, reserved: [pool("CS", 1, 0)] }, undefined, NOW);
    expect(v).toEqual({ left: 2, capacity: 2, reserved: 1, general: 1, note: "1 reserved for CS majors", who: "CS majors" });
  });

  it("names every pool still reserving, once each", () => {
    const s = { seats_left: 9, capacity: 20, general_seats_left: 4, reserved: [pool("CS", 3, 0), pool("MATH", 2, 0), pool("CS", 0, 0, { id: "again" })] };
    expect(seatView(s, undefined, NOW).note).toBe("5 reserved for CS majors and MATH majors");
    const three = { ...s, reserved: [...s.reserved, { ...pool("SENIOR", 1, 0), attribute: "standing" as const }] };
    expect(seatView({ ...three, general_seats_left: 3 }, undefined, NOW).note).toBe("6 reserved for CS majors, MATH majors and seniors");
  });

  it("takes the live counts, reserved_seats_left included, over the listed ones", () => {
    const s = { seats_left: 2, capacity: 2, general_seats_left: 1, reserved: [pool("CS", 1, 0)] };
    expect(seatView(s, { seats_left: 1, capacity: 2, reserved_seats_left: 1 }, NOW)).toMatchObject({ left: 1, reserved: 1, general: 0 });
    expect(seatView(s, { seats_left: 1, capacity: 2, reserved_seats_left: 0 }, NOW)).toMatchObject({ left: 1, reserved: 0, general: 1, note: null });
    // An event without the field (an older node): the listed split, bounded by the free seats.
    expect(seatView(s, { seats_left: 0, capacity: 2 }, NOW)).toMatchObject({ left: 0, reserved: 0, general: 0, note: null });
  });

  it("stops counting a pool whose release time passed since the section was read", () => {
    const later = pool("CS", 4, 1, { release_at: "2027-03-01T11:59:00Z" });
    const s = { seats_left: 8, capacity: 10, general_seats_left: 5, reserved: [later] };
    expect(isReserving(later, NOW)).toBe(false);
    expect(seatView(s, undefined, NOW)).toMatchObject({ reserved: 0, general: 8, note: null });
    expect(seatView(s, { seats_left: 8, capacity: 10, reserved_seats_left: 3 }, NOW).reserved).toBe(0);
    const future = { ...later, release_at: "2027-03-02T00:00:00Z" };
    expect(seatView({ ...s, reserved: [future] }, undefined, NOW)).toMatchObject({ reserved: 3, general: 5 });
  });

  it("keeps a pool the server already released out of the count", () => {
    const s = { seats_left: 6, capacity: 10, general_seats_left: 6, reserved: [pool("CS", 4, 1, { released: true, release_at: "2027-02-01T00:00:00Z" })] };
    expect(seatView(s, undefined, NOW)).toMatchObject({ reserved: 0, general: 6, note: null });
  });

  it("trusts reserved counts for pools it has not read", () => {
    expect(seatView({ seats_left: 3, capacity: 3 }, { seats_left: 3, capacity: 3, reserved_seats_left: 2 }, NOW).note).toBe("2 reserved for other students");
  });
});

describe("livePools", () => {
  it("gives the stream's reserved count to the one pool still reserving", () => {
    const pools = [pool("CS", 2, 0), pool("MATH", 1, 0, { released: true })];
    expect(livePools(pools, { reserved_seats_left: 1 }, NOW).map((p) => [p.value, p.taken, p.seats_left])).toEqual([["CS", 1, 1], ["MATH", 0, 1]]);
    expect(livePools(pools, undefined, NOW)).toEqual(pools);
  });
  it("leaves several reserving pools as listed (the total cannot be split)", () => {
    const pools = [pool("CS", 2, 0), pool("MATH", 1, 0)];
    expect(livePools(pools, { reserved_seats_left: 1 }, NOW)).toEqual(pools);
  });
});

describe("poolText", () => {
  it("says how many reserved seats are left, and until when", () => {
    expect(poolText(pool("CS", 10, 9), NOW, utc)).toBe("CS majors: 1 of 10 reserved seats left");
    expect(poolText(pool("CS", 1, 0, { release_at: "2027-03-03T09:00:00Z" }), NOW, utc)).toBe("CS majors: 1 of 1 reserved seat left, until Mar 3, 2027, 9:00 AM");
  });
  it("says a released pool's seats are open to everyone", () => {
    expect(poolText(pool("CS", 1, 0, { release_at: "2027-03-01T09:00:00Z" }), NOW, utc)).toBe("CS majors: released Mar 1, 2027, 9:00 AM, its seats are open to everyone");
    expect(poolText(pool("CS", 1, 0, { released: true }), NOW, utc)).toBe("CS majors: released, its seats are open to everyone");
  });
});

describe("restrictionText", () => {
  it("reads an include or exclude list by attribute", () => {
    expect(restrictionText({ attribute: "major", mode: "include", values: ["CS", "MATH"] })).toBe("Open to majors: CS, MATH");
    expect(restrictionText({ attribute: "cohort", mode: "exclude", values: ["ATHLETES"] })).toBe("Closed to cohorts: ATHLETES");
    expect(restrictionText({ attribute: "program", mode: "include", values: ["BS-CS"] })).toBe("Open to programs: BS-CS");
    expect(restrictionText({ attribute: "standing", mode: "exclude", values: ["FRESHMAN"] })).toBe("Closed to freshmen");
    expect(restrictionText({ attribute: "standing", mode: "include", values: ["JUNIOR", "SENIOR"] })).toBe("Open to juniors and seniors");
  });
});

describe("appointmentText", () => {
  it("says when registration opens for the student, in their locale", () => {
    expect(appointmentText({ term_id: "t", opens_at: "2027-03-03T14:30:00Z" }, NOW, utc)).toBe("Your registration appointment: you may register from Mar 3, 2027, 2:30 PM.");
    expect(appointmentText({ term_id: "t", opens_at: "2027-02-20T08:00:00Z" }, NOW, utc)).toBe("Your registration appointment opened Feb 20, 2027, 8:00 AM.");
    expect(formatTime("2027-03-03T14:30:00Z", "de-DE", "Europe/Berlin")).toBe("03.03.2027, 15:30");
  });
  it("says until when an appointment with a closing time runs", () => {
    const t = { term_id: "t", opens_at: "2027-03-03T14:30:00Z", closes_at: "2027-03-10T14:30:00Z" };
    expect(appointmentText(t, NOW, utc)).toBe("Your registration appointment: you may register from Mar 3, 2027, 2:30 PM until Mar 10, 2027, 2:30 PM.");
    expect(appointmentText(t, Date.parse("2027-03-05T00:00:00Z"), utc)).toBe("Your registration appointment opened Mar 3, 2027, 2:30 PM; it closes Mar 10, 2027, 2:30 PM.");
    expect(appointmentText(t, Date.parse("2027-03-11T00:00:00Z"), utc)).toBe("Your registration appointment closed Mar 10, 2027, 2:30 PM.");
  });
});

describe("localizeInstants", () => {
  it("writes every RFC 3339 instant of a sentence for people, and leaves the rest", () => {
    expect(localizeInstants("opens at 2027-03-03T14:30:00Z for you", utc)).toBe("opens at Mar 3, 2027, 2:30 PM for you");
    expect(localizeInstants("from 2027-03-03T14:30:00.123+02:00", utc)).toBe("from Mar 3, 2027, 12:30 PM");
    expect(localizeInstants("no time here, 2027-03-03 only", utc)).toBe("no time here, 2027-03-03 only");
    // As the server's messages print a time.
    expect(localizeInstants("registration opens at 2027-03-03 14:30:00 UTC", utc)).toBe("registration opens at Mar 3, 2027, 2:30 PM");
    expect(localizeInstants("at 2027-03-03 14:30:00.123456789 UTC.", utc)).toBe("at Mar 3, 2027, 2:30 PM.");
  });
});
