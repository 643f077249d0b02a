// Waitlist offers in a real browser against a real server: a freed seat is offered to the
// next waiting student, who accepts or declines it before its time runs out.
//   1. Through the admin API, in the seeded term (its windows are open): a course,
//      an offer-mode section of 1 seat with a waitlist of 5 and offers standing an hour, and
//      three students (created with a password). Student 1 enrolls, students 2 and 3 join
//      the waitlist, student 1 drops: the seat is offered to student 2.
//   2. Student 3, on a phone (390 × 844), sees their waitlist place say a seat will be
//      offered. Student 2 sees the offer with a ticking countdown (a timer screen readers
//      leave alone, and a polite line saying the seat is offered), declines it after
//      confirming, and it leaves their schedule.
//   3. Student 3's page hears of the offer (the notifications poll) without a reload: the
//      offer with its countdown, no sideways scrolling. With a hold on their account the
//      accept is refused (the rules are checked again) and the offer stays; the hold lifted,
//      they accept it and see the section under their sections, enrolled.
//   4. The console: an admin creates a second section in offer mode through the form, and
//      the section list shows each section's mode.
// axe-core runs on each view (no critical or serious finding). Screenshots go to
// target/e2e/offers-*.png. Run with `deploy/local/e2e.sh offers`.
import { BASE, accessible, call, check, eventually, login, shot } from "./lib.mjs";

const ADMIN_PW = process.env.E2E_ADMIN_PASSWORD ?? "admin-demo";
/** The password of the students made here (8 characters or more). */
const PASSWORD = "offers-e2e-password";
const WAIT = { timeout: 15000 };
/** The student page polls notifications every 20 s: an offer made elsewhere shows within that. */
const POLL_WAIT = { timeout: 30000 };
const PHONE = { width: 390, height: 844 };
/** The offer window of the section, in minutes. */
const WINDOW = 60;

async function must(r, what, ...ok) {
  check(ok.includes(r.status), `${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Everything the steps share, made through the admin API; names unique per run. */
async function setUp(admin) {
  const run = String(Date.now() % 10000).padStart(4, "0");
  // The seeded term, whose windows are open for every standing: a term of the spec's own
  // would be the newest, and the pages (and the other specs) start on the newest term.
  const terms = await must(await call("GET", "/api/v1/terms"), "terms", 200);
  const term = terms.find((t) => t.code === "2027SP");
  check(term, `the seeded term 2027SP among ${JSON.stringify(terms.map((t) => t.code))}`);
  const course = `OFF${run}`;
  await must(await call("POST", "/api/v1/courses", { token: admin, body: { code: course, title: "Seats on Offer", credits: 3, prerequisites: [] } }), "course", 201);
  const section = await must(
    await call("POST", "/api/v1/sections", {
      token: admin,
      body: {
        term_id: term.id, course_code: course, section_code: "01", capacity: 1, waitlist_capacity: 5,
        meetings: [{ day: "thu", start: "13:00", end: "14:15" }],
        waitlist_mode: "offer", offer_window_minutes: WINDOW,
      },
    }),
    "offer-mode section",
    201,
  );
  check(section.waitlist_mode === "offer" && section.offer_window_minutes === WINDOW, `the section offers seats for ${WINDOW} min: ${JSON.stringify(section)}`);
  const students = [];
  for (const n of [1, 2, 3]) {
    const username = `off-${n}-${run}`;
    const body = { username, password: PASSWORD, standing: "senior", max_credits: 18, completed_courses: [], role: "student" };
    const made = await must(await call("POST", "/api/v1/students", { token: admin, body }), `student ${username}`, 201);
    students.push({ username, id: made.id, token: await login(username, PASSWORD) });
  }
  return { term, termLabel: `${term.name} (${term.code})`, course, label: `${course}-01`, section, students };
}

/** The student's schedule through the API. */
async function scheduleOf(student) {
  return must(await call("GET", "/api/v1/students/me/schedule", { token: student.token }), `${student.username}'s schedule`, 200);
}

/** Student 1 takes the seat, 2 and 3 wait, 1 drops: the seat is offered to student 2. */
async function offerTheSeat(ctx) {
  const [s1, s2, s3] = ctx.students;
  const path = `/api/v1/sections/${ctx.section.id}/enrollments`;
  const first = await must(await call("POST", path, { token: s1.token }), "student 1 enrolls", 201);
  check(first.status === "enrolled", `student 1 has the seat: ${JSON.stringify(first)}`);
  for (const [s, position] of [[s2, 1], [s3, 2]]) {
    const w = await must(await call("POST", path, { token: s.token }), `${s.username} joins the waitlist`, 202, 201);
    check(w.status === "waitlisted" && w.position === position, `${s.username} waits at ${position}: ${JSON.stringify(w)}`);
  }
  const dropped = await must(await call("DELETE", `${path}/me`, { token: s1.token }), "student 1 drops", 200);
  console.log(`e2e: student 1 dropped: ${JSON.stringify(dropped)}`);
  const offered = await eventually(async () => (await scheduleOf(s2)).offered?.find((e) => e.section_id === ctx.section.id), "the seat is offered to student 2");
  const left = Date.parse(offered.offer_expires_at) - Date.now();
  check(left > (WINDOW - 2) * 60_000 && left <= WINDOW * 60_000 + 5000, `the offer stands about ${WINDOW} min: ${offered.offer_expires_at}`);
  const waiting = await scheduleOf(s3);
  check(waiting.waitlisted.some((e) => e.section_id === ctx.section.id) && (waiting.offered ?? []).length === 0, `student 3 still waits: ${JSON.stringify(waiting)}`);
  // An enroll by the student the seat is offered to is refused: accept or decline it.
  const again = await call("POST", path, { token: s2.token });
  check(again.status === 409 && again.body?.code === "already_offered", `an enroll over an offer: ${again.status} ${JSON.stringify(again.body)}`);
}

/** The student page logged in as `student` (locale en-US) with the offers term chosen, and its helpers. */
async function studentPage(browser, ctx, student, viewport = { width: 1280, height: 900 }, extra = {}) {
  const context = await browser.newContext({ viewport, locale: "en-US", ...extra });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/`);
  await page.getByLabel("Username").fill(student.username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText("Signed in as").waitFor(WAIT);
  await page.getByLabel("Term").selectOption({ label: ctx.termLabel });
  await page.getByLabel("Course or title").fill(ctx.course);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.locator(`tr[data-section="${ctx.label}"]`).waitFor(WAIT);
  const status = (text) => page.getByRole("status").filter({ hasText: text }).waitFor(WAIT);
  const offers = page.getByRole("region", { name: "Offers" });
  const offer = offers.locator(`li[data-offer="${ctx.label}"]`);
  return { context, page, errors, status, offers, offer };
}

/** The countdown of `offer` reads like "59m 58s left", and moves on within two seconds. */
async function ticking(offer, what) {
  const timer = offer.getByRole("timer");
  await timer.waitFor(WAIT);
  check((await timer.getAttribute("aria-live")) === "off", `${what}: the countdown is not read out every second`);
  const before = (await timer.innerText()).trim();
  check(/^(59|60)m \d{2}s left$/.test(before) || /^1h 00m 00s left$/.test(before), `${what}: an hour's countdown: "${before}"`);
  await eventually(async () => (await timer.innerText()).trim() !== before, `${what}: the countdown ticks (was "${before}")`, 3000);
  console.log(`e2e: ${what}: countdown "${before}" → "${(await timer.innerText()).trim()}"`);
}

/** No sideways scrolling, and every visible button within the viewport's width. */
async function fitsPhone(page, what) {
  const width = PHONE.width;
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  check(scrollWidth <= width, `${what}: no horizontal scroll at ${width} px (page is ${scrollWidth} px wide)`);
  const outside = await page.evaluate((w) => [...document.querySelectorAll("button")]
    .map((b) => ({ name: b.textContent.trim(), r: b.getBoundingClientRect() }))
    .filter(({ r }) => r.width > 0 && (r.left < 0 || r.right > w))
    .map(({ name, r }) => `${name} (${Math.round(r.left)}–${Math.round(r.right)})`), width);
  check(outside.length === 0, `${what}: buttons beyond ${width} px: ${outside.join(", ")}`);
}

/** 2 and 3. Student 3 waits on a phone; student 2 declines; student 3's page gets the offer and accepts it. */
async function declineThenAccept(browser, ctx, admin) {
  const [, s2, s3] = ctx.students;
  const label = ctx.label;

  // Student 3 waits, and is told the seat will come as an offer.
  const third = await studentPage(browser, ctx, s3, PHONE, { deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await third.page.getByLabel("My sections").getByText(`waitlist position 1 · a seat will be offered to you (1 h to accept)`).waitFor(WAIT);
  await third.page.locator(`tr[data-section="${label}"]`).getByText("Waitlist offers seats (1 h to accept)").waitFor(WAIT);
  check(!(await third.offers.isVisible()), "no Offers part without an offer");

  // Student 2 sees the offer: the polite line, the row's tag, the countdown.
  const second = await studentPage(browser, ctx, s2);
  const news = second.page.getByTestId("offer-news");
  await news.filter({ hasText: `A seat in ${label} is offered to you until ` }).waitFor(WAIT);
  check((await news.getAttribute("aria-live")) === "polite", "the offer is announced politely");
  const newsText = await news.innerText();
  check(!/UTC|T\d{2}:/.test(newsText), `the offer's end in the student's locale: ${newsText}`);
  console.log(`e2e: the offer announced: ${newsText}`);
  await second.page.locator(`tr[data-section="${label}"]`).getByText("Seat offered").waitFor(WAIT);
  await ticking(second.offer, "student 2's offer");
  await second.offer.getByText("a seat is held for you").waitFor(WAIT);
  await accessible(second.page, "student page (a seat offered)");
  await shot(second.page, "offers-1-offered");

  // Decline asks first; Keep the offer keeps it; then declined for good.
  await second.offer.getByRole("button", { name: `Decline ${label}`, exact: true }).click();
  const ask = second.page.getByRole("alertdialog", { name: `Decline the seat in ${label}?` });
  await ask.waitFor(WAIT);
  await accessible(second.page, "student page (declining a seat: the question)");
  await shot(second.page, "offers-2-decline-confirm");
  await ask.getByRole("button", { name: `Keep the offer of ${label}` }).click();
  check((await scheduleOf(s2)).offered?.length === 1, "keeping the offer sends nothing");
  await second.offer.getByRole("button", { name: `Decline ${label}`, exact: true }).click();
  await ask.getByRole("button", { name: `Decline the seat in ${label}` }).click();
  await second.status(`You declined the seat in ${label} and left its waitlist.`);
  console.log(`e2e: decline on the page: ${await second.page.getByRole("status").filter({ hasText: "declined" }).innerText()}`);
  await second.offers.waitFor({ state: "detached", ...WAIT });
  await second.page.getByLabel("My sections").getByText("Nothing yet").waitFor(WAIT);
  await shot(second.page, "offers-3-declined");
  const after2 = await scheduleOf(s2);
  check(after2.offered.length === 0 && after2.waitlisted.length === 0 && after2.enrolled.length === 0, `student 2 holds nothing: ${JSON.stringify(after2)}`);
  check(second.errors.length === 0, `page errors: ${second.errors.join("; ")}`);
  await second.context.close();

  // The seat passed on to student 3: their page hears of it from the notifications poll.
  await eventually(async () => (await scheduleOf(s3)).offered?.some((e) => e.section_id === ctx.section.id), "the seat is offered to student 3");
  await third.offer.waitFor(POLL_WAIT);
  await third.page.getByTestId("offer-news").filter({ hasText: `A seat in ${label} is offered to you until ` }).waitFor(WAIT);
  await ticking(third.offer, "student 3's offer");
  const notes = third.page.locator('ul[aria-label="Notifications"]');
  await notes.getByText(`A seat in ${label} is offered to you until `).first().waitFor(POLL_WAIT);
  const note = await notes.getByText(`A seat in ${label} is offered to you until `).first().innerText();
  check(!/UTC|:\d{2}\.\d/.test(note), `the notification's time in the student's locale: ${note}`);
  console.log(`e2e: the offer's notification: ${note}`);
  await fitsPhone(third.page, "student page on a phone with an offer");
  await accessible(third.page, "student page on a phone (a seat offered)");
  await shot(third.page, "offers-4-offered-phone");

  // A hold since joining the waitlist: the accept is refused, the seat stays offered.
  const hold = await must(await call("POST", `/api/v1/students/${s3.id}/holds`, { token: admin, body: { reason: "Library fine" } }), "a hold on student 3", 201);
  await third.offer.getByRole("button", { name: `Accept seat ${label}`, exact: true }).click();
  const refused = third.page.getByRole("alert").filter({ hasText: "Your account has a hold" });
  await refused.filter({ hasText: "The seat is still held for you until " }).waitFor(WAIT);
  console.log(`e2e: an accept under a hold: ${await refused.innerText()}`);
  await third.offer.getByRole("timer").waitFor(WAIT);
  check((await scheduleOf(s3)).offered?.length === 1, "the refused accept keeps the offer");
  await fitsPhone(third.page, "student page on a phone with an accept refused");
  await shot(third.page, "offers-5-accept-refused-phone");
  await must(await call("DELETE", `/api/v1/students/${s3.id}/holds/${hold.id}`, { token: admin }), "the hold lifted", 204, 200);

  await third.offer.getByRole("button", { name: `Accept seat ${label}`, exact: true }).click();
  await third.status(`You accepted the seat: you are enrolled in ${label}.`);
  await third.offers.waitFor({ state: "detached", ...WAIT });
  await third.page.getByLabel("My sections").getByText(label, { exact: true }).waitFor(WAIT);
  await third.page.getByLabel("My sections").getByText("enrolled · 3 cr").waitFor(WAIT);
  await third.page.locator(`tr[data-section="${label}"]`).getByText("Enrolled").waitFor(WAIT);
  await fitsPhone(third.page, "student page on a phone after accepting");
  await shot(third.page, "offers-6-accepted-phone");
  const after3 = await scheduleOf(s3);
  check(after3.enrolled.some((e) => e.section_id === ctx.section.id) && after3.offered.length === 0, `student 3 is enrolled: ${JSON.stringify(after3)}`);
  await eventually(async () => {
    const s = (await call("GET", `/api/v1/sections/${ctx.section.id}`)).body;
    return s.seats_taken === 1 && s.waitlist_length === 0;
  }, "the section: 1 seat taken, nobody waiting");
  check(third.errors.length === 0, `page errors: ${third.errors.join("; ")}`);
  await third.context.close();
}

/** 4. The console: a second offer-mode section through the form; the list shows the modes. */
async function consoleSteps(browser, ctx) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/console`);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(ADMIN_PW);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("tab", { name: "Admin" }).click();
  await page.locator('select[name="term"]').selectOption({ label: ctx.termLabel });

  const form = page.getByRole("region", { name: "New section" });
  await form.getByLabel("Course of the section").fill(ctx.course);
  await form.getByLabel("Course of the section").press("Tab");
  await form.getByLabel("Section code").fill("02");
  await form.locator('input[name="section-capacity"]').fill("20");
  await form.locator('input[name="section-waitlist"]').fill("10");
  await form.locator('select[name="section-waitlist-mode"]').selectOption("offer");
  await form.getByTestId("waitlist-mode-help").filter({ hasText: "held for them for 1 day" }).waitFor(WAIT);
  await form.locator('input[name="section-offer-window"]').fill("0");
  await form.getByText("An offer stands 1 to 43200 minutes").waitFor(WAIT);
  check(await form.getByRole("button", { name: "Create section" }).isDisabled(), "no section with an offer window of 0");
  await form.locator('input[name="section-offer-window"]').fill("90");
  await form.getByTestId("waitlist-mode-help").filter({ hasText: "held for them for 1 h 30 min" }).waitFor(WAIT);
  await accessible(page, "console admin tab (a new offer-mode section)");
  await shot(page, "offers-7-console-new-section");
  await form.getByRole("button", { name: "Create section" }).click();
  await page.getByRole("status").getByText(`Section ${ctx.course}-02 (lecture) created. Its waitlist offers freed seats for 1 h 30 min.`).waitFor(WAIT);
  const listed = await must(await call("GET", `/api/v1/terms/${ctx.term.id}/sections?course=${ctx.course}`), "sections", 200);
  const second = listed.items.find((s) => s.section_code === "02");
  check(second?.waitlist_mode === "offer" && second.offer_window_minutes === 90, `02 offers seats for 90 min: ${JSON.stringify(second)}`);

  await page.getByLabel("Course or title").fill(ctx.course);
  await page.getByRole("button", { name: "Find sections" }).click();
  await page.locator(`tr[data-section="${ctx.course}-01"]`).getByTestId("waitlist-mode").filter({ hasText: "Offer (1 h to accept)" }).waitFor(WAIT);
  await page.locator(`tr[data-section="${ctx.course}-02"]`).getByTestId("waitlist-mode").filter({ hasText: "Offer (1 h 30 min to accept)" }).waitFor(WAIT);
  await accessible(page, "console admin tab (sections with their waitlist mode)");
  await shot(page, "offers-8-console-sections");
  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  await context.close();
}

export async function run(browser) {
  const admin = await login("admin", ADMIN_PW);
  const ctx = await setUp(admin);
  await offerTheSeat(ctx);
  await declineThenAccept(browser, ctx, admin);
  await consoleSteps(browser, ctx);
}
