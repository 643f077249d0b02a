// Layout of the week calendar of a schedule: which day columns to show (Mon–Fri, plus
// Sat/Sun only when something meets then), the hours the grid spans, and where each
// meeting sits (top and height as fractions of the grid, overlapping meetings side by side).
export type Day = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun";

export const DAYS: readonly Day[] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
export const DAY_NAMES: Readonly<Record<Day, string>> = {
  mon: "Monday", tue: "Tuesday", wed: "Wednesday", thu: "Thursday", fri: "Friday", sat: "Saturday", sun: "Sunday",
};

export interface Meeting {
  day: Day;
  /** HH:MM */
  start: string;
  end: string;
}

export interface CalendarEntry {
  id: string;
  label: string;
  /** `offered`: a seat the waitlist offers, not the student's until accepted. */
  kind: "enrolled" | "waitlisted" | "offered";
  meetings: Meeting[];
}

export interface Block {
  entryId: string;
  label: string;
  kind: CalendarEntry["kind"];
  day: Day;
  start: string;
  end: string;
  /** Fractions (0–1) of the grid's height. */
  top: number;
  height: number;
  /** Side-by-side placement among overlapping blocks: column `column` of `columns`. */
  column: number;
  columns: number;
}

export interface WeekLayout {
  days: Day[];
  /** Minutes after midnight of the grid's first and last line (whole hours). */
  startMin: number;
  endMin: number;
  /** Whole hours drawn as lines, as minutes after midnight. */
  hours: number[];
  blocks: Block[];
}

/** Minutes after midnight of "HH:MM". */
export function minutes(hhmm: string): number {
  const [h, m] = hhmm.split(":").map(Number);
  return h * 60 + m;
}

/** The grid spans at least 08:00–18:00, widened to whole hours around every meeting. */
export function layoutWeek(entries: CalendarEntry[], minStart = 8 * 60, minEnd = 18 * 60): WeekLayout {
  const all = entries.flatMap((e) => e.meetings.map((m) => ({ entry: e, m, s: minutes(m.start), f: minutes(m.end) })));
  const startMin = Math.min(minStart, ...all.map((x) => Math.floor(x.s / 60) * 60));
  const endMin = Math.max(minEnd, ...all.map((x) => Math.ceil(x.f / 60) * 60));
  const span = endMin - startMin;
  const days = DAYS.filter((d) => d !== "sat" && d !== "sun" || all.some((x) => x.m.day === d));
  const blocks: Block[] = [];
  for (const day of days) {
    const items = all.filter((x) => x.m.day === day).sort((a, b) => a.s - b.s || b.f - a.f);
    // Clusters of transitively overlapping meetings share a column count.
    let cluster: Block[] = [];
    let clusterEnd = -1;
    let columnEnds: number[] = [];
    const closeCluster = () => {
      for (const b of cluster) b.columns = columnEnds.length;
      cluster = [];
      columnEnds = [];
    };
    for (const x of items) {
      if (x.s >= clusterEnd) {
        closeCluster();
        clusterEnd = -1;
      }
      let column = columnEnds.findIndex((end) => end <= x.s);
      if (column === -1) {
        column = columnEnds.length;
        columnEnds.push(x.f);
      } else {
        columnEnds[column] = x.f;
      }
      const block: Block = {
        entryId: x.entry.id,
        label: x.entry.label,
        kind: x.entry.kind,
        day,
        start: x.m.start,
        end: x.m.end,
        top: (x.s - startMin) / span,
        height: (x.f - x.s) / span,
        column,
        columns: 1,
      };
      cluster.push(block);
      blocks.push(block);
      clusterEnd = Math.max(clusterEnd, x.f);
    }
    closeCluster();
  }
  const hours: number[] = [];
  for (let h = startMin; h <= endMin; h += 60) hours.push(h);
  return { days, startMin, endMin, hours, blocks };
}

const SHORT: Readonly<Record<Day, string>> = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun" };

/** "Mon Wed Fri 09:00–09:50": meetings at the same hours grouped, in week order. */
export function formatMeetings(meetings: Meeting[]): string {
  const groups = new Map<string, Day[]>();
  const sorted = [...meetings].sort((a, b) => DAYS.indexOf(a.day) - DAYS.indexOf(b.day) || minutes(a.start) - minutes(b.start));
  for (const m of sorted) {
    const hours = `${m.start}–${m.end}`;
    groups.set(hours, [...(groups.get(hours) ?? []), m.day]);
  }
  return [...groups].map(([hours, days]) => `${days.map((d) => SHORT[d]).join(" ")} ${hours}`).join("; ");
}
