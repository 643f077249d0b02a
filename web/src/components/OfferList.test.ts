// Unit tests of the Offers list: the countdown ticks every second as a timer screen readers
// leave alone, Decline asks before it emits, Accept emits at once, a pending offer's buttons
// are disabled, and an offer whose time ran out is told to the page once.
import { mount } from "@vue/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { offersOf } from "../student/offers";
import OfferList from "./OfferList.vue";

const NOW = Date.parse("2027-03-03T10:00:00Z");
const offers = (seconds: number) =>
  offersOf({
    offered: [{ section_id: "s1", course_code: "CS101", section_code: "01", credits: 3, meetings: [], offer_expires_at: new Date(NOW + seconds * 1000).toISOString() }],
  });
const render = (seconds: number, pending = new Map<string, string>()) =>
  mount(OfferList, { props: { offers: offers(seconds), pending, locale: "en-US" } });

describe("OfferList", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW);
  });
  afterEach(() => vi.useRealTimers());

  it("counts down every second in a timer that is not read out", async () => {
    const w = render(3 * 3600 + 5);
    const timer = w.get('[role="timer"]');
    expect(timer.attributes("aria-live")).toBe("off");
    expect(timer.text()).toBe("3h 00m 05s left");
    await vi.advanceTimersByTimeAsync(2000);
    expect(w.get('[role="timer"]').text()).toBe("3h 00m 03s left");
    expect(w.get("time").attributes("datetime")).toBe(new Date(NOW + (3 * 3600 + 5) * 1000).toISOString());
  });

  it("accepts at once, and declines only once confirmed", async () => {
    const w = render(600);
    const [accept, decline] = w.findAll("button");
    expect(accept!.text()).toBe("Accept seat CS101-01");
    await accept!.trigger("click");
    expect(w.emitted("accept")?.[0]?.[0]).toMatchObject({ label: "CS101-01" });
    await decline!.trigger("click");
    expect(w.emitted("decline")).toBeUndefined();
    const ask = w.get('[role="alertdialog"]');
    expect(ask.attributes("aria-label")).toBe("Decline the seat in CS101-01?");
    await ask.get("button:not(.danger)").trigger("click");
    expect(w.find('[role="alertdialog"]').exists()).toBe(false);
    await w.findAll("button")[1]!.trigger("click");
    await w.get('[role="alertdialog"] button.danger').trigger("click");
    expect(w.emitted("decline")).toHaveLength(1);
  });

  it("disables the buttons of an offer in flight and says what is happening", () => {
    const w = render(600, new Map([["s1", "Accepting…"]]));
    const [accept, decline] = w.findAll("button");
    expect(accept!.text()).toBe("Accepting… CS101-01");
    expect(accept!.attributes("disabled")).toBeDefined();
    expect(decline!.attributes("disabled")).toBeDefined();
  });

  it("says when the time is up, disables the buttons, and tells the page once", async () => {
    const w = render(2);
    await vi.advanceTimersByTimeAsync(5000);
    expect(w.text()).toContain("Time is up");
    expect(w.find('[role="timer"]').exists()).toBe(false);
    expect(w.findAll("button").every((b) => b.attributes("disabled") !== undefined)).toBe(true);
    expect(w.emitted("ended")).toHaveLength(1);
  });
});
