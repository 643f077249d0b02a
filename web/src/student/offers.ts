// Seats an offer-mode waitlist offers the student (docs/api.md "Waitlist offers"): which
// offers the schedule holds and how long each still stands, the countdown as the student
// reads it (in their locale), what the page announces when an offer appears, and how a
// section's waitlist mode reads. Pure functions, so the wording and the arithmetic are
// tested apart from the page and its ticking clock.
import { formatTime, listText, type TimeFormat } from "./policy";
import type { Schedule, ScheduleEntry } from "./registration";

/** How a section's waitlist hands out a freed seat: at once (`auto`) or as an offer to accept. */
export type WaitlistMode = "auto" | "offer";

/** The section fields that say how its waitlist hands out seats (absent from a server without offers). */
export interface WaitlistPolicy {
  waitlist_mode?: WaitlistMode;
  offer_window_minutes?: number;
}

/** A seat offered to the student, as the Offers part of the schedule lists it. */
export interface Offer {
  entry: ScheduleEntry;
  /** "CS101-01". */
  label: string;
  /** When the offer ends (ms since the epoch), or null when the server gave no end. */
  expiresAt: number | null;
}

/** The offers of a schedule, the one ending first on top (an offer without an end last). */
export function offersOf(schedule: Pick<Schedule, "offered"> | null): Offer[] {
  const list = (schedule?.offered ?? []).map((entry) => {
    const at = entry.offer_expires_at ? Date.parse(entry.offer_expires_at) : NaN;
    return { entry, label: `${entry.course_code}-${entry.section_code}`, expiresAt: Number.isNaN(at) ? null : at };
  });
  const end = (o: Offer) => o.expiresAt ?? Number.POSITIVE_INFINITY;
  return list.sort((a, b) => end(a) - end(b) || a.label.localeCompare(b.label));
}

/** Milliseconds the offer still stands at `now` (0 once it ended); null without an end. */
export function timeLeft(o: Pick<Offer, "expiresAt">, now: number): number | null {
  return o.expiresAt === null ? null : Math.max(0, o.expiresAt - now);
}

const UNITS = [
  ["day", 86_400],
  ["hour", 3_600],
  ["minute", 60],
  ["second", 1],
] as const;

/**
 * A countdown in the student's locale (`locale` for tests): from the largest unit that is not
 * zero down to seconds, the ones after the first two digits wide so the text does not jump
 * while it ticks: "1d 02h 03m 04s", "59m 59s", "5s" in English, "1 T 02 Std. …" in German.
 * Whole seconds, rounded up: an offer with 0.4 s left still shows "1s", never "0s" early.
 */
export function countdownText(ms: number, locale?: string): string {
  let rest = Math.max(0, Math.ceil(ms / 1000));
  const parts: string[] = [];
  for (const [unit, size] of UNITS) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (parts.length === 0 && n === 0 && unit !== "second") continue;
    const format = new Intl.NumberFormat(locale, { style: "unit", unit, unitDisplay: "narrow", minimumIntegerDigits: parts.length ? 2 : 1 });
    parts.push(format.format(n));
  }
  return parts.join(" ");
}

/** "1 day", "2 days 3 h", "1 h 30 min", "45 min": how long a section's offers stand. */
export function durationText(minutes: number): string {
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  const parts: string[] = [];
  if (days) parts.push(`${days} ${days === 1 ? "day" : "days"}`);
  if (hours) parts.push(`${hours} h`);
  if (mins) parts.push(`${mins} min`);
  return parts.join(" ") || "0 min";
}

/** Whether the section's waitlist offers seats rather than gives them. */
export function offersSeats(s: WaitlistPolicy | undefined): boolean {
  return s?.waitlist_mode === "offer";
}

/** How a waitlist place in an offer-mode section reads: "a seat will be offered to you (1 day to accept)"; null otherwise. */
export function waitlistOfferNote(s: WaitlistPolicy | undefined): string | null {
  if (!offersSeats(s)) return null;
  const window = s?.offer_window_minutes;
  return window ? `a seat will be offered to you (${durationText(window)} to accept)` : "a seat will be offered to you";
}

/** What joining an offer-mode waitlist adds to the outcome: the seat comes as an offer to accept in time. */
export function joinedOfferWaitlist(s: WaitlistPolicy | undefined): string {
  if (!offersSeats(s)) return "";
  const window = s?.offer_window_minutes;
  const within = window ? ` within ${durationText(window)}` : "";
  return ` When a seat frees up it will be offered to you: accept it${within} or it goes to the next student.`;
}

/**
 * The sentence the page announces (politely, once) when offers stand: which seats, until
 * when in the student's locale. Empty without offers, so the live region says nothing.
 */
export function offerAnnouncement(offers: readonly Offer[], format: TimeFormat = (iso) => formatTime(iso)): string {
  if (offers.length === 0) return "";
  if (offers.length === 1) {
    const o = offers[0]!;
    const until = o.expiresAt === null ? "" : ` until ${format(new Date(o.expiresAt).toISOString())}`;
    return `A seat in ${o.label} is offered to you${until}. Accept or decline it under Offers.`;
  }
  return `Seats in ${listText(offers.map((o) => o.label))} are offered to you. Accept or decline each under Offers.`;
}

/** The outcome of an accepted offer. */
export function acceptOutcome(label: string): string {
  return `You accepted the seat: you are enrolled in ${label}.`;
}

/**
 * What a refusal of an accept adds: the student rules refused it (a hold, a time conflict,
 * the credit limit), but the seat stays held for the student until the offer ends, so
 * they may fix it and accept again in time.
 */
export function stillOffered(o: Pick<Offer, "expiresAt">, format: TimeFormat = (iso) => formatTime(iso)): string {
  const until = o.expiresAt === null ? "" : ` until ${format(new Date(o.expiresAt).toISOString())}`;
  return ` The seat is still held for you${until}: accept it again once this is fixed.`;
}

/** The outcome of a declined offer; `promoted`: the seat went on to the next student waiting. */
export function declineOutcome(label: string, promoted: boolean): string {
  const next = promoted ? " It is now offered to the next student in line." : "";
  return `You declined the seat in ${label} and left its waitlist.${next}`;
}
