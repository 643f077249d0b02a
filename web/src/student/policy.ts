// Registration policy as the student page shows it: seats a section reserves for some
// students (pools by major, program, cohort or standing, each possibly released at a set
// time), the section's restrictions (open only to / closed to), and the student's
// registration appointment (time ticket). Pure functions over the catalog's fields and
// the seat stream's counts, so the wording is tested apart from the page.

/** What a pool or a restriction names students by. Values are upper case (`CS`, `SENIOR`). */
export type PolicyAttribute = "major" | "program" | "cohort" | "standing";

/** One pool of seats of a section, as the section view lists it. */
export interface ReservedPool {
  id: string;
  attribute: PolicyAttribute;
  value: string;
  seats: number;
  taken: number;
  seats_left: number;
  /** When the pool stops reserving (its free seats go to everyone); null: never. */
  release_at: string | null;
  /** Whether the release time had passed when the section was read. */
  released: boolean;
}

export interface Restriction {
  attribute: PolicyAttribute;
  mode: "include" | "exclude";
  values: string[];
}

/** A registration appointment: the student may register in the term from `opens_at` (until `closes_at` when set). */
export interface TimeTicket {
  term_id: string;
  opens_at: string;
  closes_at?: string | null;
}

/** The section fields the seat wording reads (the listing's, before any live count). */
export interface SeatPolicy {
  seats_left: number;
  capacity: number;
  /** Seats anyone may take; absent from a server without pools. */
  general_seats_left?: number;
  reserved?: ReservedPool[];
}

/** The counts of one seat-stream event that the wording reads. */
export interface LiveSeats {
  seats_left: number;
  capacity: number;
  /** Free seats still reserved by some pool; absent from a server without pools. */
  reserved_seats_left?: number;
}

/** A section's free seats as the student reads them. */
export interface SeatView {
  left: number;
  capacity: number;
  /** Free seats only the students of a pool may take. */
  reserved: number;
  /** Free seats anyone may take. */
  general: number;
  /** "1 reserved for CS majors", or null when nothing is reserved. */
  note: string | null;
  /** Whom the reserved seats are for ("CS majors"), or null when nothing is reserved. */
  who: string | null;
}

/** Formats an instant for people: the student's locale and time zone unless told otherwise. */
export type TimeFormat = (iso: string) => string;

/** "Mar 3, 2027, 9:00 AM" in `locale` (default: the browser's), in `timeZone` (default: local). */
export function formatTime(iso: string, locale?: string, timeZone?: string): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short", timeZone }).format(at);
}

const localTime: TimeFormat = (iso) => formatTime(iso);

const STANDING_PEOPLE: Readonly<Record<string, string>> = {
  FRESHMAN: "freshmen",
  SOPHOMORE: "sophomores",
  JUNIOR: "juniors",
  SENIOR: "seniors",
  GRADUATE: "graduate students",
};

/** Whom one attribute value names: "CS majors", "the BS-CS program", "the HONORS cohort", "seniors". */
export function whoText(attribute: PolicyAttribute, value: string): string {
  switch (attribute) {
    case "major":
      return `${value} majors`;
    case "program":
      return `the ${value} program`;
    case "cohort":
      return `the ${value} cohort`;
    case "standing":
      return STANDING_PEOPLE[value.toUpperCase()] ?? `${value} students`;
  }
}

/** "a", "a and b", "a, b and c". */
export function listText(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? "";
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

/** Whether a pool still reserves its seats at `now` (ms): not released, its release time (if any) not reached. */
export function isReserving(p: Pick<ReservedPool, "released" | "release_at">, now: number): boolean {
  if (p.released) return false;
  return p.release_at === null || new Date(p.release_at).getTime() > now;
}

/**
 * The section's free seats, from its live counts when the stream sent some, split into
 * reserved and general. A pool whose release time passed since the section was read stops
 * counting at once (no seat changed, so the stream says nothing about it): the reserved
 * count never exceeds the size of the pools still reserving. Pools the page has not read
 * (none listed, yet the counts say some seats are reserved) are taken at the counts' word.
 */
export function seatView(s: SeatPolicy, live: LiveSeats | undefined, now: number): SeatView {
  const left = live?.seats_left ?? s.seats_left;
  const capacity = live?.capacity ?? s.capacity;
  const pools = s.reserved ?? [];
  const reserving = pools.filter((p) => isReserving(p, now));
  const listed = s.general_seats_left !== undefined
    ? s.seats_left - s.general_seats_left
    : reserving.reduce((n, p) => n + p.seats_left, 0);
  const counted = live?.reserved_seats_left ?? listed;
  const bound = pools.length ? reserving.reduce((n, p) => n + p.seats, 0) : counted;
  const reserved = Math.max(0, Math.min(left, counted, bound));
  const names = [...new Set(reserving.map((p) => whoText(p.attribute, p.value)))];
  const who = reserved > 0 ? (names.length ? listText(names) : "other students") : null;
  return { left, capacity, reserved, general: left - reserved, note: who ? `${reserved} reserved for ${who}` : null, who };
}

/**
 * The section's pools with the live count where it can be placed: with a single pool still
 * reserving, the stream's `reserved_seats_left` is that pool's; with several, the stream's
 * total cannot be split, so their listed counts stay.
 */
export function livePools(pools: readonly ReservedPool[], live: Pick<LiveSeats, "reserved_seats_left"> | undefined, now: number): ReservedPool[] {
  const reserving = pools.filter((p) => isReserving(p, now));
  const left = live?.reserved_seats_left;
  if (reserving.length !== 1 || left === undefined) return [...pools];
  const only = reserving[0]!;
  const seatsLeft = Math.max(0, Math.min(only.seats, left));
  return pools.map((p) => (p === only ? { ...p, seats_left: seatsLeft, taken: p.seats - seatsLeft } : p));
}

/** One pool for the section's detail: "CS majors: 1 of 10 reserved seats left, until Mar 3, 2027, 9:00 AM". */
export function poolText(p: ReservedPool, now: number, format: TimeFormat = localTime): string {
  const who = whoText(p.attribute, p.value);
  if (!isReserving(p, now)) {
    return p.release_at ? `${who}: released ${format(p.release_at)}, its seats are open to everyone` : `${who}: released, its seats are open to everyone`;
  }
  const seats = `${p.seats_left} of ${p.seats} reserved ${p.seats === 1 ? "seat" : "seats"} left`;
  return p.release_at ? `${who}: ${seats}, until ${format(p.release_at)}` : `${who}: ${seats}`;
}

const GROUP_NAMES: Readonly<Record<Exclude<PolicyAttribute, "standing">, string>> = {
  major: "majors",
  program: "programs",
  cohort: "cohorts",
};

/** "Open to majors: CS, MATH", "Closed to cohorts: ATHLETES", "Closed to freshmen". */
export function restrictionText(r: Restriction): string {
  const verb = r.mode === "include" ? "Open to" : "Closed to";
  if (r.attribute === "standing") return `${verb} ${listText(r.values.map((v) => whoText("standing", v)))}`;
  return `${verb} ${GROUP_NAMES[r.attribute]}: ${r.values.join(", ")}`;
}

/** The student's appointment for a term: when registration opens (or opened, or closed) for them. */
export function appointmentText(t: TimeTicket, now: number, format: TimeFormat = localTime): string {
  const opens = format(t.opens_at);
  const closes = t.closes_at ? format(t.closes_at) : null;
  if (new Date(t.opens_at).getTime() > now) {
    return `Your registration appointment: you may register from ${opens}${closes ? ` until ${closes}` : ""}.`;
  }
  if (t.closes_at && new Date(t.closes_at).getTime() <= now) return `Your registration appointment closed ${closes}.`;
  return `Your registration appointment opened ${opens}${closes ? `; it closes ${closes}` : ""}.`;
}

/** An instant inside a server's sentence: RFC 3339, or as the server's messages print one (`2027-03-03 14:30:00 UTC`). */
const INSTANT = /(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(Z|[+-]\d{2}:\d{2}| UTC)/g;

/** The sentence with every instant in it written for people, in their locale. */
export function localizeInstants(text: string, format: TimeFormat = localTime): string {
  return text.replace(INSTANT, (whole, date: string, time: string, fraction: string | undefined, zone: string) => {
    // Milliseconds at most, and `Z` for UTC: what every Date parses the same way.
    const iso = `${date}T${time}${fraction ? fraction.slice(0, 4) : ""}${zone === " UTC" ? "Z" : zone}`;
    return Number.isNaN(Date.parse(iso)) ? whole : format(iso);
  });
}
