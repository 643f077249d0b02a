// Registration policy in a real browser against a real server: reserved seats, section
// restrictions and registration appointments (time tickets).
//   1. Through the admin API, in the seeded term (its windows are open): a course,
//      a section of 2 seats (no waitlist) with 1 seat reserved for CS majors, and students
//      with their majors (created with a password, then logged in through the page).
//   2. The student page: a MATH major sees "1 reserved for CS majors" and takes the general
//      seat; a second MATH major (on a phone, 390 × 844: no sideways scrolling) is refused
//      with the seats_reserved advice; a CS major takes the reserved seat, and the first
//      page's count follows live over the seat stream.
//   3. The console: an admin creates a second section with a pool for MATH majors and a
//      restriction (open to majors CS, MATH), edits its pool (a pool above the capacity is
//      told before sending), changes a student's majors, program and cohort, and sets an
//      appointment tomorrow; that student sees the appointment and is refused with
//      registration_not_open_yet; an ART major is refused with restricted_section; the
//      appointment is cleared.
//   4. Deadlines: in the console an admin sees an out-of-order set told before sending, then
//      sets the term's drop deadline a few minutes past (no add deadline) and its withdrawal
//      deadline tomorrow; a student sees them in plain words, takes a seat, is asked before
//      dropping it that it leaves a W (keeps it once, then withdraws), and sees it under
//      "Withdrawn (W)". The term's deadlines as they were are put back at the end, whatever
//      happens: the other specs register in the same term.
//   5. Consent: a section made with consent_required; a student is refused with the
//      consent_required advice; in the console an admin finds the student and grants a
//      consent permit for it, listed as active; the student sees it under "My permits",
//      enrolls, and the permit's state is `used` (the API says so, the page says "(used)").
//   6. The catalog import in the console: pasted JSON that is not JSON is told; a course
//      of a unique code is checked (a dry run: "courses: 1 created", nothing written),
//      imported, and then exists (a second course of that code is refused already_exists).
// axe-core runs on each view (no critical or serious finding). Screenshots go to
// target/e2e/policy-*.png. Run with `deploy/local/e2e.sh policy`.
import { BASE, accessible, call, check, eventually, login, shot } from "./lib.mjs";

const ADMIN_PW = process.env.E2E_ADMIN_PASSWORD ?? "admin-demo";
/** The password of the students made here (8 characters or more). */
const PASSWORD = "policy-e2e-password";
const WAIT = { timeout: 15000 };
const PHONE = { width: 390, height: 844 };

async function must(r, what, ...ok) {
  check(ok.includes(r.status), `${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A `datetime-local` value `ms` from now in this machine's time zone (the browser's too). */
function localInput(ms) {
  const at = new Date(Date.now() + ms);
  const two = (n) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())}T${two(at.getHours())}:${two(at.getMinutes())}`;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;

/** Everything the steps share, made through the admin API; names unique per run. */
async function setUp(admin) {
  const run = String(Date.now() % 10000).padStart(4, "0");
  // The seeded term, whose windows are open for every standing: a term of the spec's own
  // would be the newest, and the pages (and the other specs) start on the newest term.
  const terms = await must(await call("GET", "/api/v1/terms"), "terms", 200);
  const term = terms.find((t) => t.code === "2027SP");
  check(term, `the seeded term 2027SP among ${JSON.stringify(terms.map((t) => t.code))}`);
  const course = `POL${run}`;
  await must(await call("POST", "/api/v1/courses", { token: admin, body: { code: course, title: "Seats for Some", credits: 3, prerequisites: [] } }), "course", 201);
  const section = await must(
    await call("POST", "/api/v1/sections", {
      token: admin,
      body: {
        term_id: term.id, course_code: course, section_code: "01", capacity: 2, waitlist_capacity: 0,
        meetings: [{ day: "tue", start: "10:00", end: "10:50" }],
        reserved: [{ attribute: "major", value: "CS", seats: 1 }],
      },
    }),
    "section with a pool",
    201,
  );
  check(section.reserved?.length === 1 && section.reserved[0].value === "CS" && section.reserved[0].seats === 1, `the pool: ${JSON.stringify(section.reserved)}`);
  check(section.seats_left === 2 && section.general_seats_left === 1, `2 seats left, 1 general: ${JSON.stringify(section)}`);
  const students = {};
  for (const [who, majors] of [["cs", ["CS"]], ["math1", ["MATH"]], ["math2", ["math"]], ["late", ["MATH"]], ["art", ["ART"]], ["wd", ["CS"]]]) {
    const username = `pol-${who}-${run}`;
    const body = { username, password: PASSWORD, standing: "senior", max_credits: 18, completed_courses: [], role: "student", majors };
    const made = await must(await call("POST", "/api/v1/students", { token: admin, body }), `student ${username}`, 201);
    const view = await must(await call("GET", `/api/v1/students/${made.id}`, { token: admin }), `student ${username}`, 200);
    check(JSON.stringify(view.majors) === JSON.stringify(majors.map((m) => m.toUpperCase())), `${username}'s majors upper case: ${JSON.stringify(view)}`);
    students[who] = { username, id: made.id };
  }
  return { term, termLabel: `${term.name} (${term.code})`, course, section, students };
}

/** The student page logged in as `username` with the policy term chosen, and its helpers. */
async function studentPage(browser, ctx, username, viewport = { width: 1280, height: 900 }, extra = {}) {
  const context = await browser.newContext({ viewport, ...extra });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText("Signed in as").waitFor(WAIT);
  await page.getByLabel("Term").selectOption({ label: ctx.termLabel });
  await page.getByLabel("Course or title").fill(ctx.course);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.locator(`tr[data-section="${ctx.course}-01"]`).waitFor(WAIT);
  await page.getByText("● live seats").waitFor(WAIT);
  const seats = (code) => page.getByLabel(`Seats of ${ctx.course}-${code}`);
  const status = (text) => page.getByRole("status").filter({ hasText: text }).waitFor(WAIT);
  const alert = (text) => page.getByRole("alert").filter({ hasText: text }).waitFor(WAIT);
  return { context, page, errors, seats, status, alert };
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

/** 2. The reserved seat on the student page: general seat, refusal, reserved seat, live counts. */
async function reservedSeats(browser, ctx) {
  const label = `${ctx.course}-01`;
  const enroll = (page) => page.getByRole("button", { name: `Enroll ${label}`, exact: true }).click();

  // A MATH major sees the reserved seat and takes the general one.
  const math1 = await studentPage(browser, ctx, ctx.students.math1.username);
  await math1.seats("01").filter({ hasText: /^\s*2 of 2\s+1 reserved for CS majors\s*$/ }).waitFor(WAIT);
  const row = math1.page.locator(`tr[data-section="${label}"]`);
  await row.locator("details.pools summary").click();
  await row.getByText("CS majors: 1 of 1 reserved seat left").waitFor(WAIT);
  await accessible(math1.page, "student page (a section with reserved seats)");
  await shot(math1.page, "policy-1-reserved");
  await enroll(math1.page);
  await math1.status(`You are enrolled in ${label}.`);
  await math1.seats("01").filter({ hasText: /^\s*1 of 2\s+1 reserved for CS majors\s*$/ }).waitFor(WAIT);
  await math1.page.getByLabel("My sections").getByText(label, { exact: true }).waitFor(WAIT);
  await shot(math1.page, "policy-2-general-seat-taken");
  // The section's counts come from the Redis mirror, a moment behind the commit.
  await eventually(async () => {
    const s = (await call("GET", `/api/v1/sections/${ctx.section.id}`)).body;
    return s.seats_taken === 1 && s.general_seats_left === 0 && s.reserved?.[0]?.taken === 0 && s.reserved[0].seats_left === 1;
  }, "the general seat went, the reserved one is left");

  // A second MATH major, on a phone: only the reserved seat is left, and no waitlist.
  const math2 = await studentPage(browser, ctx, ctx.students.math2.username, PHONE, { deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await math2.seats("01").filter({ hasText: /1 reserved for CS majors/ }).waitFor(WAIT);
  await enroll(math2.page);
  await math2.alert("The seats left in this section are reserved for other students.");
  const refusal = await math2.page.getByRole("alert").innerText();
  check(refusal.includes("waitlist"), `the refusal suggests the waitlist or another section: ${refusal}`);
  console.log(`e2e: seats_reserved on the page: ${refusal}`);
  await fitsPhone(math2.page, "student page with reserved seats and a refusal");
  await accessible(math2.page, "student page on a phone (seats_reserved)");
  await shot(math2.page, "policy-3-seats-reserved-phone");
  check(math2.errors.length === 0, `page errors: ${math2.errors.join("; ")}`);
  await math2.context.close();

  // The CS major takes the reserved seat; the MATH major's page follows over the stream.
  const cs = await studentPage(browser, ctx, ctx.students.cs.username);
  await enroll(cs.page);
  await cs.status(`You are enrolled in ${label}.`);
  await cs.seats("01").filter({ hasText: /^\s*0 of 2\s*$/ }).waitFor(WAIT);
  await shot(cs.page, "policy-4-reserved-seat-taken");
  check(cs.errors.length === 0, `page errors: ${cs.errors.join("; ")}`);
  await cs.context.close();
  await math1.seats("01").filter({ hasText: /^\s*0 of 2\s*$/ }).waitFor(WAIT);
  await eventually(async () => {
    const s = (await call("GET", `/api/v1/sections/${ctx.section.id}`)).body;
    return s.seats_left === 0 && s.general_seats_left === 0 && s.reserved?.[0]?.taken === 1 && s.reserved[0].seats_left === 0;
  }, "the reserved seat went to the CS major");
  check(math1.errors.length === 0, `page errors: ${math1.errors.join("; ")}`);
  await math1.context.close();
}

/** 3. The console: a section with a pool and a restriction, its pool edited, a student's attributes and appointment. */
async function consoleSteps(browser, ctx, admin) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const status = (text) => page.getByRole("status").getByText(text).waitFor(WAIT);
  await page.goto(`${BASE}/console`);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(ADMIN_PW);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("tab", { name: "Admin" }).click();
  await page.locator('select[name="term"]').selectOption({ label: ctx.termLabel });

  // A new section with a pool for MATH majors, open to CS and MATH majors only.
  const form = page.getByRole("region", { name: "New section" });
  await form.getByLabel("Course of the section").fill(ctx.course);
  await form.getByLabel("Course of the section").press("Tab");
  await form.getByLabel("Section code").fill("02");
  await form.locator('input[name="section-capacity"]').fill("3");
  await form.locator('input[name="section-waitlist"]').fill("0");
  await form.getByRole("button", { name: "Add a reserved pool" }).click();
  await form.locator('select[name="pool-1-attribute"]').selectOption("major");
  await form.locator('input[name="pool-1-value"]').fill("math");
  await form.locator('input[name="pool-1-seats"]').fill("1");
  await form.getByRole("button", { name: "Add a restriction" }).click();
  await form.locator('select[name="restriction-1-mode"]').selectOption("include");
  await form.locator('select[name="restriction-1-attribute"]').selectOption("major");
  await form.locator('input[name="restriction-1-values"]').fill("cs, math");
  await accessible(page, "console admin tab (a new section with a pool and a restriction)");
  await shot(page, "policy-5-console-new-section");
  await form.getByRole("button", { name: "Create section" }).click();
  await status(`Section ${ctx.course}-02 (lecture) created, with 1 seat reserved for MATH majors. Open to majors: CS, MATH.`);
  const listed = await must(await call("GET", `/api/v1/terms/${ctx.term.id}/sections?course=${ctx.course}`), "sections", 200);
  const second = listed.items.find((s) => s.section_code === "02");
  check(second && second.reserved.length === 1 && second.reserved[0].attribute === "major" && second.reserved[0].value === "MATH" && second.reserved[0].seats === 1, `02's pool: ${JSON.stringify(second)}`);
  check(JSON.stringify(second.restrictions) === JSON.stringify([{ attribute: "major", mode: "include", values: ["CS", "MATH"] }]), `02's restriction: ${JSON.stringify(second.restrictions)}`);

  // The list shows it; Edit reserved seats tells a pool above the capacity, then saves 2 seats until tomorrow.
  await page.getByLabel("Course or title").fill(ctx.course);
  await page.getByRole("button", { name: "Find sections" }).click();
  const row = page.locator(`tr[data-section="${ctx.course}-02"]`);
  await row.locator('[data-testid="policy"]').getByText("MATH majors: 0 of 1 taken").waitFor(WAIT);
  await row.locator('[data-testid="policy"]').getByText("Open to majors: CS, MATH").waitFor(WAIT);
  await page.locator(`tr[data-section="${ctx.course}-01"]`).locator('[data-testid="policy"]').getByText("CS majors: 1 of 1 taken").waitFor(WAIT);
  await row.getByRole("button", { name: "Edit reserved seats" }).click();
  const editor = page.getByRole("form", { name: `Reserved seats of ${ctx.course}-02` });
  await editor.locator('input[name$="-1-seats"]').fill("4");
  await editor.getByText("The pools reserve 4 seats, more than the section's 3.").waitFor(WAIT);
  check(await editor.getByRole("button", { name: "Save reserved seats" }).isDisabled(), "no save above the capacity");
  await editor.locator('input[name$="-1-seats"]').fill("2");
  await editor.locator('input[name$="-1-release"]').fill(localInput(DAY));
  await accessible(page, "console admin tab (reserved seats editor)");
  await shot(page, "policy-6-console-reserved-editor");
  await editor.getByRole("button", { name: "Save reserved seats" }).click();
  await status(`${ctx.course}-02 now has 2 seats reserved for MATH majors.`);
  await row.locator('[data-testid="policy"]').getByText(/MATH majors: 0 of 2 taken, until /).waitFor(WAIT);
  const edited = await must(await call("GET", `/api/v1/sections/${second.id}`), "section 02", 200);
  check(edited.reserved.length === 1 && edited.reserved[0].seats === 2 && edited.reserved[0].release_at && !edited.reserved[0].released, `02's pool edited: ${JSON.stringify(edited.reserved)}`);

  // A student's majors, program and cohort; an appointment tomorrow.
  const late = ctx.students.late;
  await page.getByLabel("Username").fill(late.username);
  await page.getByRole("button", { name: "Find", exact: true }).click();
  const attributes = page.getByRole("form", { name: `Attributes of ${late.username}` });
  await attributes.waitFor(WAIT);
  check((await attributes.locator('input[name="majors"]').inputValue()) === "MATH", "the majors are filled in");
  await attributes.locator('input[name="majors"]').fill("math, phys");
  await attributes.locator('input[name="program"]').fill("bs-math");
  await attributes.locator('input[name="cohort"]').fill("honors");
  await attributes.getByRole("button", { name: "Save attributes" }).click();
  await status(`${late.username}: majors MATH, PHYS; program BS-MATH; cohort HONORS.`);
  const account = await must(await call("GET", `/api/v1/students/${late.id}`, { token: admin }), "student", 200);
  check(JSON.stringify(account.majors) === '["MATH","PHYS"]' && account.program === "BS-MATH" && account.cohort === "HONORS", `attributes saved: ${JSON.stringify(account)}`);
  const appointment = page.getByRole("form", { name: `Registration appointment of ${late.username}` });
  await appointment.locator('input[name="appointment"]').fill(localInput(DAY));
  await appointment.getByRole("button", { name: "Set appointment" }).click();
  await status(`${late.username} may register in ${ctx.term.code} from`);
  await accessible(page, "console admin tab (a student's attributes and appointment)");
  await shot(page, "policy-7-console-student");
  const lateToken = await login(late.username, PASSWORD);
  const tickets = await must(await call("GET", "/api/v1/students/me/time-tickets", { token: lateToken }), "time tickets", 200);
  const ticket = tickets.find((t) => t.term_id === ctx.term.id);
  check(ticket && Date.parse(ticket.opens_at) > Date.now() + 20 * HOUR, `the appointment is tomorrow: ${JSON.stringify(tickets)}`);
  return { context, page, errors, status, appointment };
}

/** The appointment and the restriction on the student page; the appointment cleared in the console. */
async function appointmentAndRestriction(browser, ctx, console_) {
  const label = `${ctx.course}-02`;
  const late = await studentPage(browser, ctx, ctx.students.late.username);
  await late.page.getByTestId("appointment").filter({ hasText: "Your registration appointment: you may register from" }).waitFor(WAIT);
  await late.page.locator(`tr[data-section="${label}"]`).getByText("Open to majors: CS, MATH").waitFor(WAIT);
  await late.page.getByRole("button", { name: `Enroll ${label}`, exact: true }).click();
  await late.alert("Your registration appointment has not opened yet.");
  console.log(`e2e: registration_not_open_yet on the page: ${await late.page.getByRole("alert").innerText()}`);
  await accessible(late.page, "student page (an appointment not open yet)");
  await shot(late.page, "policy-8-appointment");
  check(late.errors.length === 0, `page errors: ${late.errors.join("; ")}`);
  await late.context.close();

  const art = await studentPage(browser, ctx, ctx.students.art.username);
  await art.page.getByRole("button", { name: `Enroll ${label}`, exact: true }).click();
  await art.alert("This section is limited to certain students");
  console.log(`e2e: restricted_section on the page: ${await art.page.getByRole("alert").innerText()}`);
  await shot(art.page, "policy-9-restricted");
  check(art.errors.length === 0, `page errors: ${art.errors.join("; ")}`);
  await art.context.close();

  // Cleared in the console: the student has no appointment in the term any more.
  await console_.appointment.getByRole("button", { name: "Clear appointment" }).click();
  await console_.status(`The appointment of ${ctx.students.late.username} in ${ctx.term.code} is cleared.`);
  const lateToken = await login(ctx.students.late.username, PASSWORD);
  const tickets = await must(await call("GET", "/api/v1/students/me/time-tickets", { token: lateToken }), "time tickets", 200);
  check(!tickets.some((t) => t.term_id === ctx.term.id), `no appointment left in the term: ${JSON.stringify(tickets)}`);
  check(console_.errors.length === 0, `page errors: ${console_.errors.join("; ")}`);
  await console_.context.close();
}

/** 4. Deadlines set in the console, said on the student page; a late drop asks, then leaves a W. */
async function deadlines(browser, ctx, admin) {
  const label = `${ctx.course}-03`;
  await must(
    await call("POST", "/api/v1/sections", {
      token: admin,
      body: { term_id: ctx.term.id, course_code: ctx.course, section_code: "03", capacity: 5, waitlist_capacity: 0, meetings: [{ day: "thu", start: "14:00", end: "14:50" }] },
    }),
    "section 03",
    201,
  );

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/console`);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(ADMIN_PW);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("tab", { name: "Admin" }).click();
  await page.locator('select[name="term"]').selectOption({ label: ctx.termLabel });
  const form = page.getByRole("form", { name: `Deadlines of ${ctx.term.code}` });
  // The stored deadlines first (they fill the fields: typing before them would be overwritten).
  const current = page.getByTestId("deadlines").getByText(/^Add by .+ · drop by .+ · withdraw by .+$/);
  await current.waitFor(WAIT);
  // Out of order: told before sending, and Save is off.
  await form.locator('input[name="add-by"]').fill(localInput(2 * DAY));
  await form.locator('input[name="drop-by"]').fill(localInput(DAY));
  await page.getByText("The last day to drop without a W must not be before the last day to add.").waitFor(WAIT);
  check(await form.getByRole("button", { name: "Save deadlines" }).isDisabled(), "no save of deadlines out of order");
  // No add deadline; the drop deadline a few minutes past (the form is to the minute); withdrawals until tomorrow.
  await form.locator('input[name="add-by"]').fill("");
  await form.locator('input[name="drop-by"]').fill(localInput(-2 * 60_000));
  await form.locator('input[name="withdraw-by"]').fill(localInput(DAY));
  await accessible(page, "console admin tab (deadlines)");
  await shot(page, "policy-10-console-deadlines");
  await form.getByRole("button", { name: "Save deadlines" }).click();
  await page.getByRole("status").getByText(new RegExp(`^Deadlines of ${ctx.term.code}: drop by .+; withdraw by .+\\.$`)).waitFor(WAIT);
  await page.getByTestId("deadlines").getByText(/^Add by not set · drop by .+ · withdraw by .+$/).waitFor(WAIT);
  const stored = await must(await call("GET", `/api/v1/terms/${ctx.term.id}/deadlines`), "deadlines", 200);
  check(stored.add_by === null && Date.parse(stored.drop_by) < Date.now() && Date.parse(stored.withdraw_by) > Date.now() + 20 * HOUR, `the deadlines saved: ${JSON.stringify(stored)}`);
  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  await context.close();

  // The student: the deadlines in plain words, a seat, a drop that asks first, a W.
  const wd = await studentPage(browser, ctx, ctx.students.wd.username);
  await wd.page.getByTestId("deadlines").filter({ hasText: /^Last day to drop without a W: .+ \(passed\); withdraw \(with a W\): .+\.$/ }).waitFor(WAIT);
  await wd.page.getByRole("button", { name: `Enroll ${label}`, exact: true }).click();
  await wd.status(`You are enrolled in ${label}.`);
  const mine = wd.page.getByLabel("My sections");
  const dropButton = mine.getByRole("button", { name: `Drop ${label} from my schedule` });
  const ask = wd.page.getByRole("alertdialog", { name: `Withdraw from ${label}?` });
  await dropButton.click();
  await ask.getByText(`leaving ${label} now is a withdrawal, and your record will keep a W for it.`).waitFor(WAIT);
  await accessible(wd.page, "student page (a drop that would leave a W)");
  await shot(wd.page, "policy-11-withdraw-ask");
  await ask.getByRole("button", { name: "Keep it" }).click();
  await ask.waitFor({ state: "detached", ...WAIT });
  const kept = await must(await call("GET", "/api/v1/students/me/schedule", { token: await login(ctx.students.wd.username, PASSWORD) }), "schedule", 200);
  check(kept.enrolled.some((e) => e.course_code === ctx.course && e.section_code === "03"), `Keep it kept the seat: ${JSON.stringify(kept)}`);
  await dropButton.click();
  await ask.getByRole("button", { name: "Withdraw (W)" }).click();
  await wd.status(`You withdrew from ${label}: your record keeps a W for it.`);
  await wd.page.getByTestId("withdrawn").getByText(new RegExp(`^${label} · W on `)).waitFor(WAIT);
  const after = await must(await call("GET", "/api/v1/students/me/schedule", { token: await login(ctx.students.wd.username, PASSWORD) }), "schedule", 200);
  check(!after.enrolled.some((e) => e.section_code === "03" && e.course_code === ctx.course), `the seat is left: ${JSON.stringify(after)}`);
  check(after.withdrawn?.some((e) => e.course_code === ctx.course && e.section_code === "03" && e.withdrawn_at), `the W is on the schedule: ${JSON.stringify(after.withdrawn)}`);
  await accessible(wd.page, "student page (the W list)");
  await shot(wd.page, "policy-12-withdrawn");
  check(wd.errors.length === 0, `page errors: ${wd.errors.join("; ")}`);
  await wd.context.close();
}

/** The console logged in as the admin, on the Admin tab with the policy term chosen. */
async function adminConsole(browser, ctx) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/console`);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(ADMIN_PW);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("tab", { name: "Admin" }).click();
  if (ctx) await page.locator('select[name="term"]').selectOption({ label: ctx.termLabel });
  const status = (text) => page.getByRole("status").getByText(text).waitFor(WAIT);
  return { context, page, errors, status };
}

/** 5. A consent section: refused without a permit, a consent permit granted in the console, then a seat that uses it. */
async function consent(browser, ctx, admin) {
  const label = `${ctx.course}-04`;
  const section = await must(
    await call("POST", "/api/v1/sections", {
      token: admin,
      body: {
        term_id: ctx.term.id, course_code: ctx.course, section_code: "04", capacity: 5, waitlist_capacity: 0,
        meetings: [{ day: "fri", start: "11:00", end: "11:50" }], consent_required: true,
      },
    }),
    "section 04 (consent required)",
    201,
  );
  check(section.consent_required === true, `04 requires consent: ${JSON.stringify(section)}`);
  const username = `pol-consent-${ctx.course.slice(3)}`;
  const student = await must(
    await call("POST", "/api/v1/students", {
      token: admin,
      body: { username, password: PASSWORD, standing: "senior", max_credits: 18, completed_courses: [], role: "student", majors: ["MATH"] },
    }),
    `student ${username}`,
    201,
  );

  // Without a permit: refused with the consent advice, and nothing under "My permits".
  const before = await studentPage(browser, ctx, username);
  check((await before.page.getByTestId("permits").count()) === 0, "no permit listed yet");
  await before.page.getByRole("button", { name: `Enroll ${label}`, exact: true }).click();
  await before.alert("This section needs the instructor's consent.");
  console.log(`e2e: consent_required on the page: ${await before.page.getByRole("alert").innerText()}`);
  await accessible(before.page, "student page (consent required)");
  await shot(before.page, "policy-13-consent-refused");
  check(before.errors.length === 0, `page errors: ${before.errors.join("; ")}`);
  await before.context.close();

  // The console: the section listed, the student found, a consent permit granted for it.
  const admin_ = await adminConsole(browser, ctx);
  const { page } = admin_;
  await page.getByLabel("Course or title").fill(ctx.course);
  await page.getByRole("button", { name: "Find sections" }).click();
  await page.locator(`tr[data-section="${label}"]`).waitFor(WAIT);
  await page.getByLabel("Username").fill(username);
  await page.getByRole("button", { name: "Find", exact: true }).click();
  const permits = page.getByRole("region", { name: `Permits of ${username}` });
  await permits.getByText("No permit: every rule applies to this student.").waitFor(WAIT);
  const grant = page.getByRole("form", { name: `Grant ${username} a permit` });
  await grant.locator('select[name="permit-kind"]').selectOption("consent");
  await grant.locator('select[name="permit-section"]').selectOption({ label });
  await grant.locator('input[name="permit-note"]').fill("Instructor approved (e2e)");
  await grant.getByRole("button", { name: "Grant permit" }).click();
  await admin_.status(`${username}: instructor consent permit for ${label} granted.`);
  const row = permits.locator("tr").filter({ hasText: "Instructor consent" }).filter({ hasText: label });
  await row.locator("td.state-active").getByText("active").waitFor(WAIT);
  await row.getByRole("button", { name: "Revoke" }).waitFor(WAIT);
  await accessible(page, "console admin tab (a consent permit granted)");
  await shot(page, "policy-14-console-consent-permit");
  const granted = await must(await call("GET", `/api/v1/permits?student_id=${student.id}`, { token: admin }), "permits", 200);
  check(granted.length === 1 && granted[0].kind === "consent" && granted[0].section_id === section.id && granted[0].state === "active", `one active consent permit: ${JSON.stringify(granted)}`);
  check(admin_.errors.length === 0, `page errors: ${admin_.errors.join("; ")}`);
  await admin_.context.close();

  // With the permit: listed under "My permits", then the seat, which uses it.
  const after = await studentPage(browser, ctx, username);
  await after.page.getByTestId("permits").getByText(`Permit: the instructor's consent for ${label}`, { exact: true }).waitFor(WAIT);
  await after.page.getByRole("button", { name: `Enroll ${label}`, exact: true }).click();
  await after.status(`You are enrolled in ${label}.`);
  await after.page.getByLabel("My sections").getByText(label, { exact: true }).waitFor(WAIT);
  check(after.errors.length === 0, `page errors: ${after.errors.join("; ")}`);
  await after.context.close();
  const used = await must(await call("GET", `/api/v1/permits?student_id=${student.id}`, { token: admin }), "permits", 200);
  check(used.length === 1 && used[0].state === "used" && used[0].used_at, `the permit is used: ${JSON.stringify(used)}`);
  const mine = await must(await call("GET", "/api/v1/students/me/permits", { token: await login(username, PASSWORD) }), "my permits", 200);
  check(mine.length === 1 && mine[0].id === used[0].id && mine[0].state === "used", `the student's own permit is used: ${JSON.stringify(mine)}`);
  // A fresh page reads the permit again: still listed, now "(used)".
  const later = await studentPage(browser, ctx, username);
  await later.page.getByTestId("permits").getByText(`Permit: the instructor's consent for ${label} (used)`, { exact: true }).waitFor(WAIT);
  await accessible(later.page, "student page (a consent permit used)");
  await shot(later.page, "policy-15-consent-permit-used");
  check(later.errors.length === 0, `page errors: ${later.errors.join("; ")}`);
  await later.context.close();
}

/** 6. The console's catalog import: a JSON error told, a dry run, the import, the course stored. */
async function catalogImport(browser) {
  // A code no earlier run can have made: letters from the clock, digits from the run.
  const now = String(Date.now());
  const code = `IM${now.slice(-10, -4).replace(/\d/g, (d) => "ABCDEFGHIJ"[Number(d)])}${now.slice(-4)}`;
  const body = { courses: [{ code, title: "Imported by the e2e", credits: 3 }] };
  const admin = await adminConsole(browser, null);
  const { page } = admin;
  const panel = page.getByRole("region", { name: "Import catalog" });
  const json = panel.getByLabel("Catalog JSON (or paste it here)");
  const checkButton = panel.getByRole("button", { name: "Check (dry run)" });
  const importButton = panel.getByRole("button", { name: "Import", exact: true });

  // Not JSON: told in the panel, nothing can be sent.
  await json.fill('{"courses": [');
  await panel.getByText(/^This is not JSON: /).waitFor(WAIT);
  check(await checkButton.isDisabled(), "no check of content that is not JSON");

  // The dry run: one course would be created, nothing is written, and only now may Import run.
  await json.fill(JSON.stringify(body, null, 2));
  await panel.getByText("1 course.", { exact: true }).waitFor(WAIT);
  check(await importButton.isDisabled(), "no import before a check");
  await checkButton.click();
  const report = panel.getByTestId("import-report");
  await report.getByText("Check passed: 1 record would change, no row has an error. Nothing was written.").waitFor(WAIT);
  await panel.getByTestId("import-kinds").getByText("courses: 1 created, 0 updated, 0 unchanged, 0 failed", { exact: true }).waitFor(WAIT);
  const dry = await must(await call("POST", "/api/v1/imports?dry_run=true", { token: await login("admin", ADMIN_PW), body }), "a second dry run", 200);
  check(dry.dry_run && dry.files[0].kinds.some((k) => k.kind === "courses" && k.created === 1), `the check wrote nothing: ${JSON.stringify(dry)}`);
  await accessible(page, "console admin tab (an import checked)");
  await shot(page, "policy-16-import-checked");

  // The import itself: created, and the course now exists.
  check(!(await importButton.isDisabled()), "Import is on after a clean check");
  await importButton.click();
  await report.getByText("Imported: 1 record changed.").waitFor(WAIT);
  await panel.getByTestId("import-kinds").getByText("courses: 1 created, 0 updated, 0 unchanged, 0 failed", { exact: true }).waitFor(WAIT);
  check(await importButton.isDisabled(), "importing again needs a new check");
  await shot(page, "policy-17-imported");
  const token = await login("admin", ADMIN_PW);
  // No route reads one course: the import sees it stored unchanged, and a second course of that code is refused.
  const again = await must(await call("POST", "/api/v1/imports?dry_run=true", { token, body }), "the import again (dry run)", 200);
  check(again.files[0].kinds.some((k) => k.kind === "courses" && k.unchanged === 1 && k.created === 0), `the course is stored as imported: ${JSON.stringify(again)}`);
  const twice = await call("POST", "/api/v1/courses", { token, body: { code, title: "Twice", credits: 3, prerequisites: [] } });
  check(twice.status === 409 && twice.body?.code === "already_exists", `${code} exists: ${twice.status} ${JSON.stringify(twice.body)}`);
  check(admin.errors.length === 0, `page errors: ${admin.errors.join("; ")}`);
  await admin.context.close();
}

export async function run(browser) {
  const admin = await login("admin", ADMIN_PW);
  const ctx = await setUp(admin);
  await reservedSeats(browser, ctx);
  const console_ = await consoleSteps(browser, ctx, admin);
  await appointmentAndRestriction(browser, ctx, console_);
  // The other specs register in the same term: its deadlines go back as they were.
  const before = await must(await call("GET", `/api/v1/terms/${ctx.term.id}/deadlines`), "deadlines before", 200);
  try {
    await deadlines(browser, ctx, admin);
  } finally {
    await must(await call("PUT", `/api/v1/terms/${ctx.term.id}/deadlines`, { token: admin, body: before }), "deadlines put back", 200);
  }
  await consent(browser, ctx, admin);
  await catalogImport(browser);
}
