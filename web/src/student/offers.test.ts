// Unit tests of the waitlist offers' helpers: the offers of a schedule in order, the time
// left, the countdown in a locale, durations, the waitlist mode's wording, the announcement.
import { describe, expect, it } from "vitest";
import {
  acceptOutcome, countdownText, declineOutcome, durationText, joinedOfferWaitlist, offerAnnouncement,
  offersOf, offersSeats, stillOffered, timeLeft, waitlistOfferNote,
} from "./offers";
import { formatTime } from "./policy";
import type { ScheduleEntry } from "./registration";

const entry = (id: string, code: string, expires?: string): ScheduleEntry => ({
  section_id: id, course_code: "CS101", section_code: code, credits: 3, meetings: [], offer_expires_at: expires,
});
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

describe("offersOf", () => {
  it("lists the schedule's offers, the one ending first on top, one without an end last", () => {
    const offers = offersOf({
      offered: [entry("a", "02", "2027-03-03T12:00:00Z"), entry("b", "03"), entry("c", "01", "2027-03-03T10:00:00.123456Z")],
    });
    expect(offers.map((o) => o.label)).toEqual(["CS101-01", "CS101-02", "CS101-03"]);
    expect(offers[0]!.expiresAt).toBe(Date.parse("2027-03-03T10:00:00.123Z"));
    expect(offers[2]!.expiresAt).toBeNull();
  });

  it("is empty without a schedule, or from a server without offers", () => {
    expect(offersOf(null)).toEqual([]);
    expect(offersOf({})).toEqual([]);
  });
});

describe("timeLeft", () => {
  it("counts down to zero and stays there", () => {
    const at = Date.parse("2027-03-03T10:00:00Z");
    expect(timeLeft({ expiresAt: at }, at - 90 * SECOND)).toBe(90 * SECOND);
    expect(timeLeft({ expiresAt: at }, at + SECOND)).toBe(0);
    expect(timeLeft({ expiresAt: null }, at)).toBeNull();
  });
});

describe("countdownText", () => {
  it("shows the largest unit that is not zero down to seconds, two digits after the first", () => {
    expect(countdownText(DAY + 2 * HOUR + 3 * MINUTE + 4 * SECOND, "en-US")).toBe("1d 02h 03m 04s");
    expect(countdownText(23 * HOUR + 59 * MINUTE + 59 * SECOND, "en-US")).toBe("23h 59m 59s");
    expect(countdownText(HOUR, "en-US")).toBe("1h 00m 00s");
    expect(countdownText(59 * MINUTE + 5 * SECOND, "en-US")).toBe("59m 05s");
    expect(countdownText(5 * SECOND, "en-US")).toBe("5s");
  });

  it("rounds up to whole seconds, and never goes below zero", () => {
    expect(countdownText(400, "en-US")).toBe("1s");
    expect(countdownText(0, "en-US")).toBe("0s");
    expect(countdownText(-5000, "en-US")).toBe("0s");
  });

  it("writes the units in the student's locale", () => {
    // The exact words are ICU's (they vary between versions): compare with Intl's own.
    const unit = (locale: string, n: number, unit: string, two = false) =>
      new Intl.NumberFormat(locale, { style: "unit", unit, unitDisplay: "narrow", minimumIntegerDigits: two ? 2 : 1 }).format(n);
    const german = countdownText(2 * HOUR + 5 * MINUTE, "de-DE");
    expect(german).toBe(`${unit("de-DE", 2, "hour")} ${unit("de-DE", 5, "minute", true)} ${unit("de-DE", 0, "second", true)}`);
    expect(german).toContain("05 Min.");
    expect(countdownText(90 * SECOND, "ar-EG")).toBe(`${unit("ar-EG", 1, "minute")} ${unit("ar-EG", 30, "second", true)}`);
    expect(countdownText(90 * SECOND, "ar-EG")).not.toContain("30");
  });
});

describe("durationText", () => {
  it("reads a window in minutes as days, hours and minutes", () => {
    expect(durationText(1440)).toBe("1 day");
    expect(durationText(43200)).toBe("30 days");
    expect(durationText(2 * 1440 + 180)).toBe("2 days 3 h");
    expect(durationText(90)).toBe("1 h 30 min");
    expect(durationText(45)).toBe("45 min");
    expect(durationText(0)).toBe("0 min");
  });
});

describe("the waitlist mode", () => {
  it("says that an offer-mode waitlist offers the seat, with the time to accept", () => {
    expect(offersSeats({ waitlist_mode: "offer" })).toBe(true);
    expect(offersSeats({ waitlist_mode: "auto" })).toBe(false);
    expect(offersSeats(undefined)).toBe(false);
    expect(waitlistOfferNote({ waitlist_mode: "offer", offer_window_minutes: 1440 })).toBe("a seat will be offered to you (1 day to accept)");
    expect(waitlistOfferNote({ waitlist_mode: "offer" })).toBe("a seat will be offered to you");
    expect(waitlistOfferNote({ waitlist_mode: "auto", offer_window_minutes: 1440 })).toBeNull();
    expect(waitlistOfferNote({})).toBeNull();
  });

  it("adds to a waitlist outcome that the seat will come as an offer", () => {
    expect(joinedOfferWaitlist({ waitlist_mode: "offer", offer_window_minutes: 120 }))
      .toBe(" When a seat frees up it will be offered to you: accept it within 2 h or it goes to the next student.");
    expect(joinedOfferWaitlist({ waitlist_mode: "auto" })).toBe("");
  });
});

describe("offerAnnouncement", () => {
  const utc = (iso: string) => formatTime(iso, "en-US", "UTC");
  it("names the seat and its end in the student's locale, once per set of offers", () => {
    const one = offersOf({ offered: [entry("a", "01", "2027-03-03T14:30:00Z")] });
    expect(offerAnnouncement(one, utc)).toBe("A seat in CS101-01 is offered to you until Mar 3, 2027, 2:30 PM. Accept or decline it under Offers.");
    const two = offersOf({ offered: [entry("a", "01", "2027-03-03T14:30:00Z"), entry("b", "02", "2027-03-04T14:30:00Z")] });
    expect(offerAnnouncement(two, utc)).toBe("Seats in CS101-01 and CS101-02 are offered to you. Accept or decline each under Offers.");
    expect(offerAnnouncement([], utc)).toBe("");
  });
});

describe("outcomes", () => {
  it("says what accepting and declining did", () => {
    expect(acceptOutcome("CS101-01")).toBe("You accepted the seat: you are enrolled in CS101-01.");
    expect(declineOutcome("CS101-01", true)).toBe("You declined the seat in CS101-01 and left its waitlist. It is now offered to the next student in line.");
    expect(declineOutcome("CS101-01", false)).toBe("You declined the seat in CS101-01 and left its waitlist.");
  });

  it("tells a student refused at accept that the seat is still held for them, until when", () => {
    const utc = (iso: string) => formatTime(iso, "en-US", "UTC");
    expect(stillOffered({ expiresAt: Date.parse("2027-03-03T14:30:00Z") }, utc))
      .toBe(" The seat is still held for you until Mar 3, 2027, 2:30 PM: accept it again once this is fixed.");
    expect(stillOffered({ expiresAt: null }, utc)).toBe(" The seat is still held for you: accept it again once this is fixed.");
  });
});
