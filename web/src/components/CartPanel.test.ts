// Unit tests of the cart panel: a linked set's items together under its course, notes per
// item, and no submit while one is under way or the cart is empty.
import { mount } from "@vue/test-utils";
import { describe, expect, it } from "vitest";
import type { CartItem } from "../student/cart";
import CartPanel, { type ItemNote } from "./CartPanel.vue";

const item = (id: string, course: string, code: string, component: CartItem["component"], group: string | null): CartItem => ({
  section_id: id, course_code: course, section_code: code, component, title: `${course} title`, credits: 4, group, added_at: `2026-01-01T00:00:0${id.length}Z`,
});
const items = [item("a", "BIOL1406", "001", "lecture", "BIOL1406"), item("bb", "BIOL1406", "L01", "lab", "BIOL1406"), item("ccc", "MATH2413", "001", "lecture", null)];

function render(props: { busy?: string | null; notes?: Map<string, ItemNote>; items?: CartItem[] }) {
  return mount(CartPanel, {
    props: { items: props.items ?? items, notes: props.notes ?? new Map(), busy: props.busy ?? null, removing: new Set<string>(), submitted: [] },
  });
}

describe("CartPanel", () => {
  it("groups a linked set, counts its credits once, and shows notes", async () => {
    const w = render({ notes: new Map([["ccc", { tone: "error", text: "Would be refused: time conflict" }]]) });
    expect(w.text()).toContain("3 sections, 8 credits");
    const groups = w.findAll(".groups > li");
    expect(groups).toHaveLength(2);
    expect(groups[0]!.text()).toContain("BIOL1406 · linked set");
    expect(groups[0]!.findAll("[data-cart]").map((l) => l.attributes("data-cart"))).toEqual(["BIOL1406-001", "BIOL1406-L01"]);
    expect(groups[1]!.text()).toContain("Would be refused: time conflict");
    await w.get('[data-cart="BIOL1406-L01"] button').trigger("click");
    expect(w.emitted("remove")?.[0]?.[0]).toMatchObject({ section_id: "bb" });
    await w.get("button.primary").trigger("click");
    expect(w.emitted("submit")).toHaveLength(1);
  });

  it("disables submit while submitting and when empty", () => {
    expect(render({ busy: "Submitting…" }).get("button.primary").attributes("disabled")).toBeDefined();
    expect(render({ busy: "Submitting…" }).get("button.primary").text()).toBe("Submitting…");
    expect(render({ items: [] }).get("button.primary").attributes("disabled")).toBeDefined();
  });

  it("shows staged credits and grading, and counts them (an audit as none)", () => {
    const staged: CartItem[] = [
      { ...item("x", "IS400", "01", "lecture", null), options: { credits: 2, grading_basis: "pass_fail" } },
      { ...item("yy", "ART200", "01", "lecture", null), options: { credits: 4, grading_basis: "audit" } },
    ];
    const w = render({ items: staged });
    expect(w.text()).toContain("2 sections, 2 credits");
    expect(w.get('[data-cart="IS400-01"]').text()).toContain("2 credits, pass/fail");
    expect(w.get('[data-cart="ART200-01"]').text()).toContain("audited");
  });
});
