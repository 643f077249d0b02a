// Unit tests of the credits and grading basis picker: it offers the course's range and
// bases, preset to the course's credits and a letter grade (or to what a place has), says
// what an audit means, and emits the choice; a fixed course shows no credit choice.
import { mount } from "@vue/test-utils";
import { describe, expect, it } from "vitest";
import type { Section } from "../student/registration";
import OptionsPicker from "./OptionsPicker.vue";

const section = (extra: Partial<Section> = {}): Section => ({
  id: "s1", course_code: "IS400", section_code: "01", title: "Independent study", term_id: "t", capacity: 5, seats_taken: 0,
  seats_left: 5, waitlist_capacity: 0, waitlist_length: 0, credits: 3, min_credits: 1, max_credits: 4,
  grading_bases: ["letter", "pass_fail", "audit"], meetings: [], prerequisites: [], ...extra,
});

function render(props: { section?: Section; mode?: "enroll" | "cart" | "change"; current?: { credits: number; grading_basis?: "letter" | "pass_fail" | "audit" }; message?: string | null }) {
  // jsdom has no modal dialogs.
  HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) { this.open = true; };
  return mount(OptionsPicker, {
    props: { section: props.section ?? section(), mode: props.mode ?? "enroll", current: props.current, busy: null, message: props.message ?? null },
    attachTo: document.body,
  });
}

describe("OptionsPicker", () => {
  it("offers the range and bases, preset to the course's credits and a letter grade", async () => {
    const w = render({});
    const credits = w.get<HTMLSelectElement>('[data-testid="credits"]');
    expect(credits.findAll("option").map((o) => o.text())).toEqual(["1", "2", "3", "4"]);
    expect(credits.element.value).toBe("3");
    expect(w.findAll('input[type="radio"]').map((r) => (r.element as HTMLInputElement).checked)).toEqual([true, false, false]);
    await credits.setValue("4");
    await w.findAll('input[type="radio"]')[2]!.setValue(true);
    expect(w.text()).toContain("does not count toward your credit limit");
    await w.get("form").trigger("submit");
    expect(w.emitted("confirm")?.[0]?.[0]).toEqual({ credits: 4, grading_basis: "audit" });
    w.unmount();
  });

  it("starts a change from what the place has, and says why the last try failed", async () => {
    const w = render({ mode: "change", current: { credits: 2, grading_basis: "pass_fail" }, message: "Over the limit" });
    expect(w.get<HTMLSelectElement>('[data-testid="credits"]').element.value).toBe("2");
    expect((w.findAll('input[type="radio"]')[1]!.element as HTMLInputElement).checked).toBe(true);
    expect(w.get('[role="alert"]').text()).toBe("Over the limit");
    expect(w.get("button.primary").text()).toBe("Save");
    w.unmount();
  });

  it("shows a fixed course's credits without a choice", () => {
    const w = render({ section: section({ min_credits: 3, max_credits: 3, grading_bases: ["letter", "pass_fail"] }), mode: "cart" });
    expect(w.find('[data-testid="credits"]').exists()).toBe(false);
    expect(w.text()).toContain("3 credits");
    expect(w.get("button.primary").text()).toBe("Add to cart");
    w.unmount();
  });
});
