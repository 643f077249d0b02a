// Unit tests of the shared seat stream: one EventSource for the visible set, re-opened only
// when the set changes (debounced), counts passed on, reconnection with growing backoff.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SeatFeed, streamUrl, type EventSourceLike, type SeatCounts } from "./seats";

class FakeSource implements EventSourceLike {
  static all: FakeSource[] = [];
  listeners = new Map<string, (e: MessageEvent) => void>();
  onerror: ((e: Event) => void) | null = null;
  onopen: ((e: Event) => void) | null = null;
  closed = false;
  constructor(public url: string) {
    FakeSource.all.push(this);
  }
  addEventListener(type: string, l: (e: MessageEvent) => void) {
    this.listeners.set(type, l);
  }
  close() {
    this.closed = true;
  }
  emit(data: unknown) {
    this.listeners.get("seats")?.(new MessageEvent("seats", { data: JSON.stringify(data) }));
  }
}

const open = (url: string) => new FakeSource(url);
const counts = (id: string, taken: number): SeatCounts => ({ section_id: id, seats_taken: taken, capacity: 10, seats_left: 10 - taken, waitlist_length: 0 });

describe("SeatFeed", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSource.all = [];
  });
  afterEach(() => vi.useRealTimers());

  it("opens one stream for all visible sections, debounced", () => {
    const feed = new SeatFeed(() => {}, { open, debounceMs: 300 });
    feed.watch(["a"]);
    feed.watch(["a", "b"]);
    feed.watch(["b", "a", "c", "a"]);
    vi.advanceTimersByTime(299);
    expect(FakeSource.all).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(FakeSource.all.map((s) => s.url)).toEqual([streamUrl(["a", "b", "c"])]);
  });

  it("keeps the stream when the set is unchanged and swaps it when it changes", () => {
    const feed = new SeatFeed(() => {}, { open });
    feed.watch(["a", "b"]);
    vi.advanceTimersByTime(300);
    feed.watch(["b", "a"]);
    vi.advanceTimersByTime(300);
    expect(FakeSource.all).toHaveLength(1);
    feed.watch(["c"]);
    vi.advanceTimersByTime(300);
    expect(FakeSource.all).toHaveLength(2);
    expect(FakeSource.all[0].closed).toBe(true);
    expect(FakeSource.all[1].closed).toBe(false);
  });

  it("passes each event's counts on", () => {
    const seen: SeatCounts[] = [];
    const feed = new SeatFeed((c) => seen.push(c), { open });
    feed.watch(["a"]);
    vi.advanceTimersByTime(300);
    FakeSource.all[0].emit(counts("a", 3));
    expect(seen).toEqual([counts("a", 3)]);
  });

  it("passes the reserved seats of an event on, and an event without them as it is", () => {
    const seen: SeatCounts[] = [];
    const feed = new SeatFeed((c) => seen.push(c), { open });
    feed.watch(["a"]);
    vi.advanceTimersByTime(300);
    const reserved = { ...counts("a", 1), waitlist_capacity: 0, reserved_seats_left: 1 };
    FakeSource.all[0].emit(reserved);
    FakeSource.all[0].emit(counts("a", 2));
    expect(seen).toEqual([reserved, counts("a", 2)]);
    expect(seen[0].reserved_seats_left).toBe(1);
    expect(seen[1].reserved_seats_left).toBeUndefined();
  });

  it("reconnects after an error with a growing backoff, reset by a good event", () => {
    const states: string[] = [];
    const feed = new SeatFeed(() => {}, { open, random: () => 1, baseBackoffMs: 1000, onState: (s) => states.push(s) });
    feed.watch(["a"]);
    vi.advanceTimersByTime(300);
    FakeSource.all[0].onerror!(new Event("error"));
    expect(FakeSource.all[0].closed).toBe(true);
    vi.advanceTimersByTime(999);
    expect(FakeSource.all).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSource.all).toHaveLength(2);
    FakeSource.all[1].onerror!(new Event("error"));
    vi.advanceTimersByTime(1999);
    expect(FakeSource.all).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(FakeSource.all).toHaveLength(3);
    FakeSource.all[2].emit(counts("a", 1));
    FakeSource.all[2].onerror!(new Event("error"));
    vi.advanceTimersByTime(1000);
    expect(FakeSource.all).toHaveLength(4);
    expect(states).toContain("reconnecting");
    expect(states).toContain("live");
  });

  it("says connecting from a new set until its first event", () => {
    const states: string[] = [];
    const feed = new SeatFeed(() => {}, { open, onState: (s) => states.push(s) });
    feed.watch(["a"]);
    expect(states).toEqual(["connecting"]);
    vi.advanceTimersByTime(300);
    FakeSource.all[0].emit(counts("a", 1));
    feed.watch(["a"]);
    expect(states).toEqual(["connecting", "live"]);
    feed.watch(["b"]);
    expect(states).toEqual(["connecting", "live", "connecting"]);
  });

  it("closes everything on close", () => {
    const feed = new SeatFeed(() => {}, { open });
    feed.watch(["a"]);
    vi.advanceTimersByTime(300);
    feed.close();
    expect(FakeSource.all[0].closed).toBe(true);
    feed.watch([]);
    vi.advanceTimersByTime(300);
    expect(FakeSource.all).toHaveLength(1);
  });
});
