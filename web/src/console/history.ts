// The console's memory of the cluster's figures: one sample per poll of GET /api/v1/cluster,
// kept in a fixed-size ring (the last few minutes), turned into the aligned columns uPlot
// draws: x = seconds since the epoch, one column per node (null where a node has no sample).
import type { ClusterView } from "./api";

/** What a chart shows, read off one node's load. */
export type Figure = "decisions_per_s" | "p99_ms" | "in_flight" | "overloaded_per_s";

export interface Sample {
  /** Seconds since the epoch. */
  t: number;
  /** Per node id: its figures at `t` (null when not reported). */
  nodes: Map<string, Record<Figure, number | null>>;
}

/** A ring of the newest `capacity` samples, oldest first when read. */
export class History {
  private readonly ring: (Sample | undefined)[];
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (capacity < 1) throw new Error("a history holds at least one sample");
    this.ring = new Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Record the view polled at `t` (seconds); a sample no newer than the last is ignored. */
  push(view: ClusterView, t: number): void {
    const last = this.latest();
    if (last && t <= last.t) return;
    const nodes = new Map<string, Record<Figure, number | null>>();
    for (const n of view.nodes) {
      if (n.state === "left" || n.state === "dead") continue;
      nodes.set(n.id, {
        decisions_per_s: finite(n.load.decisions_per_s),
        p99_ms: finite(n.load.p99_ms),
        in_flight: finite(n.load.in_flight),
        overloaded_per_s: finite(n.load.overloaded_per_s),
      });
    }
    this.ring[this.next] = { t, nodes };
    this.next = (this.next + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
  }

  /** The samples, oldest first. */
  samples(): Sample[] {
    const out: Sample[] = [];
    for (let i = 0; i < this.count; i++) {
      const s = this.ring[(this.next - this.count + i + this.capacity) % this.capacity];
      if (s) out.push(s);
    }
    return out;
  }

  latest(): Sample | undefined {
    return this.count === 0 ? undefined : this.ring[(this.next - 1 + this.capacity) % this.capacity];
  }

  /** Every node seen in the kept samples, sorted. */
  nodeIds(): string[] {
    const ids = new Set<string>();
    for (const s of this.samples()) for (const id of s.nodes.keys()) ids.add(id);
    return [...ids].sort();
  }

  /** uPlot's aligned data for `figure`: [xs, node1 ys, node2 ys, ...] in `nodeIds()` order. */
  columns(figure: Figure): [number[], ...(number | null)[][]] {
    const samples = this.samples();
    const ids = this.nodeIds();
    const xs = samples.map((s) => s.t);
    const ys = ids.map((id) => samples.map((s) => s.nodes.get(id)?.[figure] ?? null));
    return [xs, ...ys];
  }
}

function finite(v: number | null | undefined): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
