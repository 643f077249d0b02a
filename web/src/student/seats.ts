// Live seat counts for the sections on screen through ONE shared EventSource on
// /api/v1/seats/stream?sections=…: a browser opens at most six HTTP/1.1 connections per
// host, so one stream per section would starve the page. The stream is re-opened (debounced)
// only when the set of visible sections changes, and after an error with a growing,
// jittered backoff, so a restarting server is not hit by every open page at once.

/** One `seats` event. */
export interface SeatCounts {
  section_id: string;
  seats_taken: number;
  capacity: number;
  /** Every free seat, reserved ones included. */
  seats_left: number;
  waitlist_length: number;
  waitlist_capacity?: number;
  /** Free seats still reserved by a pool (only its students may take them); absent from a server without pools. */
  reserved_seats_left?: number;
}

/** The part of EventSource the feed uses (tests pass a fake). */
export interface EventSourceLike {
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  onerror: ((event: Event) => void) | null;
  onopen: ((event: Event) => void) | null;
  close(): void;
}

export interface SeatFeedOptions {
  debounceMs?: number;
  baseBackoffMs?: number;
  capBackoffMs?: number;
  /** At most this many sections in one stream (the server's limit). */
  maxSections?: number;
  open?: (url: string) => EventSourceLike;
  random?: () => number;
  /** Told whether the stream is live, for a small indicator. */
  onState?: (state: StreamState) => void;
}

/** `connecting` from a new set of sections until its first event; `live` from then on. */
export type StreamState = "idle" | "connecting" | "live" | "reconnecting";

export function streamUrl(ids: string[]): string {
  return `/api/v1/seats/stream?sections=${ids.map(encodeURIComponent).join(",")}`;
}

export class SeatFeed {
  private source: EventSourceLike | null = null;
  private ids: string[] = [];
  private debounce: ReturnType<typeof setTimeout> | null = null;
  private reconnect: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private readonly o: Required<Omit<SeatFeedOptions, "onState">> & Pick<SeatFeedOptions, "onState">;

  constructor(private readonly onSeats: (counts: SeatCounts) => void, options: SeatFeedOptions = {}) {
    this.o = {
      debounceMs: options.debounceMs ?? 300,
      baseBackoffMs: options.baseBackoffMs ?? 1000,
      capBackoffMs: options.capBackoffMs ?? 30_000,
      maxSections: options.maxSections ?? 100,
      open: options.open ?? ((url) => new EventSource(url)),
      random: options.random ?? Math.random,
      onState: options.onState,
    };
  }

  /** Follow these sections (replacing the previous set), after the debounce. */
  watch(ids: string[]): void {
    const next = [...new Set(ids)].slice(0, this.o.maxSections).sort();
    if (next.join(",") !== this.ids.join(",")) this.o.onState?.(next.length ? "connecting" : "idle");
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      if (next.join(",") === this.ids.join(",") && (this.source || this.reconnect)) return;
      this.ids = next;
      this.failures = 0;
      this.connect();
    }, this.o.debounceMs);
  }

  /** Stop following anything. */
  close(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = null;
    this.ids = [];
    this.disconnect();
    this.o.onState?.("idle");
  }

  private disconnect(): void {
    if (this.reconnect) clearTimeout(this.reconnect);
    this.reconnect = null;
    this.source?.close();
    this.source = null;
  }

  private connect(): void {
    this.disconnect();
    if (this.ids.length === 0) {
      this.o.onState?.("idle");
      return;
    }
    const source = this.o.open(streamUrl(this.ids));
    this.source = source;
    source.addEventListener("seats", (event) => {
      if (this.source !== source) return;
      this.failures = 0;
      this.o.onState?.("live");
      try {
        this.onSeats(JSON.parse(event.data as string) as SeatCounts);
      } catch {
        /* a malformed event is skipped; the next one carries the latest counts */
      }
    });
    source.onerror = () => {
      if (this.source !== source) return;
      // Our own backoff instead of EventSource's fixed retry (which also gives up on a 503).
      source.close();
      this.source = null;
      this.failures += 1;
      const backoff = Math.min(this.o.capBackoffMs, this.o.baseBackoffMs * 2 ** (this.failures - 1));
      const delay = backoff / 2 + this.o.random() * (backoff / 2);
      this.o.onState?.("reconnecting");
      this.reconnect = setTimeout(() => {
        this.reconnect = null;
        this.connect();
      }, delay);
    };
  }
}
