// Unit tests of the console's figure history: the ring keeps the newest samples in order,
// ignores stale polls, leaves gaps for nodes without figures, and skips departed nodes.
import { describe, expect, it } from "vitest";
import { History } from "./history";
import type { ClusterView, NodeView } from "./api";

function node(id: string, decisions: number, extra: Partial<NodeView> = {}): NodeView {
  return {
    id,
    address: `http://${id}`,
    state: "active",
    lease_age_ms: 100,
    shards_owned: 1,
    load: { decisions_per_s: decisions, in_flight: 2, p99_ms: decisions > 0 ? 12.5 : null, overloaded_per_s: 0 },
    ...extra,
  };
}
const view = (...nodes: NodeView[]): ClusterView => ({ shards: 8, coordinator: nodes[0]?.id ?? null, nodes, moves: [] });

describe("History", () => {
  it("keeps the newest samples, oldest first", () => {
    const h = new History(3);
    for (let t = 1; t <= 5; t++) h.push(view(node("a", t)), t);
    expect(h.size).toBe(3);
    expect(h.columns("decisions_per_s")).toEqual([[3, 4, 5], [3, 4, 5]]);
  });

  it("ignores a poll that is not newer than the last", () => {
    const h = new History(4);
    h.push(view(node("a", 1)), 10);
    h.push(view(node("a", 2)), 10);
    h.push(view(node("a", 3)), 9);
    expect(h.columns("decisions_per_s")).toEqual([[10], [1]]);
  });

  it("aligns nodes and leaves gaps where a node was absent or reported nothing", () => {
    const h = new History(5);
    h.push(view(node("b", 0)), 1);
    h.push(view(node("b", 4), node("a", 7)), 2);
    expect(h.nodeIds()).toEqual(["a", "b"]);
    expect(h.columns("decisions_per_s")).toEqual([[1, 2], [null, 7], [0, 4]]);
    // b answered nothing in its first interval: no p99.
    expect(h.columns("p99_ms")).toEqual([[1, 2], [null, 12.5], [null, 12.5]]);
  });

  it("leaves out nodes that left or died", () => {
    const h = new History(2);
    h.push(view(node("a", 1), node("z", 9, { state: "dead" })), 1);
    expect(h.nodeIds()).toEqual(["a"]);
  });

  it("refuses an empty ring", () => {
    expect(() => new History(0)).toThrow();
  });
});
