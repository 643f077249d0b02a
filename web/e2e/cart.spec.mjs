// Linked sets and the cart on the student page, in a real browser against a real server
// with the demo catalog (BIOL1406 lecture + lab, CHEM1411 lecture + lab + recitation,
// PHYS2425 with corequisite MATH2413):
//   1. the set chooser: Enroll… on a CHEM1411 lecture offers only the labs and recitations
//      linked to it, refuses an incomplete choice, enrolls the set in one request; a lab of
//      the set is switched for another; Drop on the lab asks, then drops the whole set;
//   2. the cart: a student adds BIOL1406's lecture and a lab, a plain MATH2413 section and a
//      full section, checks (verdicts per item), submits (the first answer an injected 503
//      `decision_pending`, retried with the same Idempotency-Key), sees every outcome, keeps
//      the refused item, and finds the set on the schedule; the cart follows the student to
//      a new device (another browser context: nothing in localStorage);
//   3. on a phone (390 × 844): every action (Enroll, Add to cart, Check, Submit, Drop, the
//      chooser's buttons) on screen without sideways scrolling.
// axe-core runs with the cart open and with the chooser open (no critical or serious
// finding). Screenshots go to target/e2e/cart-*.png; with E2E_DOC_SHOTS=1 the phone's cart
// is also saved as docs/images/student-cart-phone.png.
import { fileURLToPath } from "node:url";
import { BASE, OUT, accessible, call, check, login, shot } from "./lib.mjs";

const STUDENT_PW = process.env.E2E_STUDENT_PASSWORD ?? "demo";
const ADMIN_PW = process.env.E2E_ADMIN_PASSWORD ?? "admin-demo";
const PHONE_CART_SHOT = fileURLToPath(new URL("../../docs/images/student-cart-phone.png", import.meta.url));
const WAIT = { timeout: 15000 };

async function must(r, what, ...ok) {
  check(ok.includes(r.status), `${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A page logged in as `username`, with the helpers the steps use. */
async function studentPage(browser, username, viewport = { width: 1280, height: 900 }, extra = {}) {
  const context = await browser.newContext({ viewport, ...extra });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(STUDENT_PW);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText("Signed in as").waitFor(WAIT);
  const search = async (q) => {
    await page.getByLabel("Course or title").fill(q);
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await page.locator("tbody tr").first().waitFor(WAIT);
  };
  const status = (text) => page.getByRole("status").filter({ hasText: text }).waitFor(WAIT);
  const schedule = () => page.getByLabel("My sections");
  return { context, page, errors, search, status, schedule };
}

/** No sideways scrolling, and every visible button within the viewport's width. */
async function fitsPhone(page, width, what) {
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  check(scrollWidth <= width, `${what}: no horizontal scroll at ${width} px (page is ${scrollWidth} px wide)`);
  const outside = await page.evaluate((w) => [...document.querySelectorAll("button")]
    .map((b) => ({ name: b.textContent.trim(), r: b.getBoundingClientRect() }))
    .filter(({ r }) => r.width > 0 && (r.left < 0 || r.right > w))
    .map(({ name, r }) => `${name} (${Math.round(r.left)}–${Math.round(r.right)})`), width);
  check(outside.length === 0, `${what}: buttons beyond ${width} px: ${outside.join(", ")}`);
}

/** 1. The set chooser, a lab switch, and a drop of the lab that drops the set. */
async function chooser(browser) {
  const { context, page, errors, search, status, schedule } = await studentPage(browser, "s000012");

  // Corequisites are shown on the course.
  await search("PHYS2425");
  await page.locator('tr[data-section="PHYS2425-001"]').getByText("Requires in the same term: MATH2413").waitFor(WAIT);

  // A lecture lists its linked labs and recitations under it.
  await search("CHEM1411");
  const rows = await page.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => `${tr.dataset.section}${tr.classList.contains("child") ? "<" : ""}`));
  check(rows.slice(0, 5).join(" ") === "CHEM1411-001 CHEM1411-L01< CHEM1411-L02< CHEM1411-R01< CHEM1411-R02<", `CHEM1411-001 with its linked sections under it: ${rows.join(" ")}`);
  check((await page.locator('tr[data-section="CHEM1411-L01"]').getByRole("button", { name: /^Enroll/ }).count()) === 0, "a lab alone has no Enroll");

  await page.getByRole("button", { name: "Enroll… CHEM1411-001", exact: true }).click();
  const dialog = page.getByRole("dialog", { name: /Enroll in CHEM1411-001/ });
  await dialog.getByRole("radio", { name: /CHEM1411-L02/ }).waitFor(WAIT);
  const offered = await dialog.getByRole("radio").evaluateAll((rs) => rs.map((r) => r.closest("label").querySelector("strong").textContent));
  check(offered.join(" ") === "CHEM1411-L01 CHEM1411-L02 CHEM1411-R01 CHEM1411-R02", `only the linked labs and recitations: ${offered.join(" ")}`);
  await accessible(page, "set chooser open");
  await shot(page, "cart-1-chooser");
  // A set without its recitation is not sent.
  await dialog.getByRole("radio", { name: /CHEM1411-L02/ }).check();
  const posts = [];
  const onPost = (r) => r.url().endsWith("/enrollments/sets") && posts.push(r.postDataJSON());
  page.on("request", onPost);
  await dialog.getByRole("button", { name: "Enroll in this set" }).click();
  await dialog.getByRole("alert").filter({ hasText: "Pick a recitation." }).waitFor(WAIT);
  check(posts.length === 0, "no request for an incomplete set");
  await dialog.getByRole("radio", { name: /CHEM1411-R01/ }).check();
  await dialog.getByRole("button", { name: "Enroll in this set" }).click();
  await status("You are enrolled in the CHEM1411 set: CHEM1411-001, CHEM1411-L02, CHEM1411-R01.");
  page.off("request", onPost);
  check(posts.length === 1 && posts[0].sections.length === 3 && posts[0].replacing.length === 0, `one request for the set: ${JSON.stringify(posts)}`);
  const set = schedule().locator("li.set");
  await set.getByText("CHEM1411-R01", { exact: true }).waitFor(WAIT);
  const members = await set.locator("strong").allTextContents();
  check(members.join(" ") === "CHEM1411-001 CHEM1411-L02 CHEM1411-R01", `the set's members together, lecture first: ${members.join(" ")}`);
  await set.getByText("Lab enrolled").waitFor(WAIT);
  await shot(page, "cart-2-set-enrolled");

  // Switch the lab for another lab of the same lecture (one request, the old lab replaced).
  await search("CHEM1411");
  await page.getByRole("button", { name: "Switch lab CHEM1411-L01", exact: true }).click();
  await status("Switched: you are in CHEM1411-L01 instead of CHEM1411-L02.");
  await set.getByText("CHEM1411-L01", { exact: true }).waitFor(WAIT);
  await set.getByText("CHEM1411-L02", { exact: true }).waitFor({ state: "detached", ...WAIT });

  // Drop on the lab says it drops the whole set, and does.
  await schedule().getByRole("button", { name: "Drop CHEM1411-L01 and its whole set", exact: true }).click();
  const ask = schedule().getByRole("alertdialog", { name: "Drop the whole CHEM1411 set?" });
  await ask.getByText("drops the whole set (001, L01, R01)").waitFor(WAIT);
  await shot(page, "cart-3-drop-set-asks");
  await ask.getByRole("button", { name: "Drop the set" }).click();
  await status("You dropped the CHEM1411 set");
  await schedule().getByText("CHEM1411-001", { exact: true }).waitFor({ state: "detached", ...WAIT });
  const me = await login("s000012", STUDENT_PW);
  const after = await must(await call("GET", "/api/v1/students/me/schedule", { token: me }), "schedule", 200);
  check(!after.enrolled.some((e) => e.course_code === "CHEM1411"), `no CHEM1411 section left: ${JSON.stringify(after)}`);
  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  await context.close();
}

/** 2. The cart: add a set and plain sections, check, submit through a 503, outcomes, a new device. */
async function cart(browser, termId) {
  // A section nobody can get: no seat and no waitlist, so the submit refuses it.
  const admin = await login("admin", ADMIN_PW);
  await must(await call("POST", "/api/v1/courses", { token: admin, body: { code: "FULL101", title: "Always Full Workshop", credits: 1, prerequisites: [] } }), "course FULL101", 201);
  await must(await call("POST", "/api/v1/sections", {
    token: admin,
    body: { term_id: termId, course_code: "FULL101", section_code: "01", capacity: 0, waitlist_capacity: 0, meetings: [{ day: "sat", start: "09:00", end: "11:50" }] },
  }), "section FULL101-01", 201);

  const { context, page, errors, search, status, schedule } = await studentPage(browser, "s000011");
  await search("BIOL1406");
  await page.getByRole("button", { name: "Add to cart BIOL1406-001", exact: true }).click();
  await status("BIOL1406-001 is in your cart.");
  await page.getByRole("button", { name: "Add to cart BIOL1406-L02", exact: true }).click();
  await status("BIOL1406-L02 is in your cart.");
  await search("MATH2413");
  await page.getByRole("button", { name: "Add to cart MATH2413-002", exact: true }).click();
  await status("MATH2413-002 is in your cart.");
  await search("FULL101");
  await page.getByRole("button", { name: "Add to cart FULL101-01", exact: true }).click();
  await status("FULL101-01 is in your cart.");
  await page.getByRole("button", { name: "In cart FULL101-01", exact: true }).waitFor(WAIT);

  const panel = page.locator("#cart");
  await page.getByRole("link", { name: "Cart (4)" }).click();
  const set = panel.locator(".groups > li.set");
  await set.getByText("BIOL1406 · linked set").waitFor(WAIT);
  const inSet = await set.locator("[data-cart]").evaluateAll((ls) => ls.map((l) => l.dataset.cart));
  check(inSet.join(" ") === "BIOL1406-001 BIOL1406-L02", `the set's items together: ${inSet.join(" ")}`);

  // Check: rules only, no seat taken.
  await panel.getByRole("button", { name: "Check the cart" }).click();
  await panel.locator('[data-cart="FULL101-01"] .note').filter({ hasText: "Would be refused: This section is full" }).waitFor(WAIT);
  for (const s of ["BIOL1406-001", "BIOL1406-L02", "MATH2413-002"]) {
    await panel.locator(`[data-cart="${s}"] .note`).filter({ hasText: "Would enroll" }).waitFor(WAIT);
  }
  await accessible(page, "cart open (checked)");
  await shot(page, "cart-4-checked");

  // Submit: the first answer is an injected 503 `decision_pending`; the page retries with the same key.
  const keys = [];
  const route = "**/api/v1/students/me/cart/submit";
  await page.route(route, async (r) => {
    keys.push(r.request().headers()["idempotency-key"]);
    if (keys.length > 1) return r.continue();
    return r.fulfill({
      status: 503,
      contentType: "application/problem+json",
      headers: { "Retry-After": "1" },
      body: JSON.stringify({ type: "about:blank", title: "Service Unavailable", status: 503, code: "decision_pending", detail: "injected by the e2e test" }),
    });
  });
  await panel.getByRole("button", { name: "Submit cart" }).click();
  await panel.getByRole("button", { name: "Still trying…" }).waitFor(WAIT);
  check(await panel.getByRole("button", { name: "Still trying…" }).isDisabled(), "no second submit while one is under way");
  await status("Cart submitted: 3 enrolled, 1 refused (still in the cart).");
  await page.unroute(route);
  check(keys.length === 2 && /^[0-9a-f-]{36}$/.test(keys[0]) && keys[0] === keys[1], `one Idempotency-Key for both tries: ${JSON.stringify(keys)}`);
  const outcomes = panel.getByLabel("Last submit");
  for (const s of ["BIOL1406-001", "BIOL1406-L02", "MATH2413-002"]) await outcomes.locator("li").filter({ hasText: `${s}: Enrolled.` }).waitFor(WAIT);
  await outcomes.locator("li").filter({ hasText: "FULL101-01: Refused, kept in the cart: This section is full" }).waitFor(WAIT);
  // Only the refused item stays.
  await page.getByRole("link", { name: "Cart (1)" }).waitFor(WAIT);
  await panel.locator('[data-cart="FULL101-01"]').waitFor(WAIT);
  // The schedule shows the set together, and the plain section.
  const scheduled = schedule().locator("li.set");
  await scheduled.getByText("BIOL1406-L02", { exact: true }).waitFor(WAIT);
  check((await scheduled.locator("strong").allTextContents()).join(" ") === "BIOL1406-001 BIOL1406-L02", "the BIOL1406 set on the schedule");
  await schedule().getByText("MATH2413-002", { exact: true }).waitFor(WAIT);
  // A set is one course: its credits count once (BIOL1406 4 + MATH2413 4).
  await page.getByRole("heading", { name: /My schedule · 8 credits/ }).waitFor(WAIT);
  await accessible(page, "cart open (submitted)");
  await shot(page, "cart-5-submitted");

  // Another device: the cart comes from the server.
  const other = await studentPage(browser, "s000011");
  await other.page.locator('#cart [data-cart="FULL101-01"]').waitFor(WAIT);
  check(await other.page.evaluate(() => !JSON.stringify(localStorage).includes("FULL101")), "the cart is not kept in localStorage");
  await other.context.close();

  // The server agrees with the page.
  const me = await login("s000011", STUDENT_PW);
  const s = await must(await call("GET", "/api/v1/students/me/schedule", { token: me }), "schedule", 200);
  const held = s.enrolled.map((e) => `${e.course_code}-${e.section_code}`).sort();
  check(held.join(" ") === "BIOL1406-001 BIOL1406-L02 MATH2413-002", `schedule: ${held.join(" ")}`);
  const c = await must(await call("GET", "/api/v1/students/me/cart", { token: me }), "cart", 200);
  check(c.items.length === 1 && c.items[0].course_code === "FULL101", `cart: ${JSON.stringify(c)}`);
  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  await context.close();
}

/** 3. A phone: the cart and the chooser, every action on screen. */
async function phone(browser) {
  const width = 390;
  const { context, page, search, status } = await studentPage(browser, "s000013", { width, height: 844 }, { deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await search("BIOL1406");
  await fitsPhone(page, width, "search with linked sections");
  await page.getByRole("button", { name: "Add to cart BIOL1406-002", exact: true }).click();
  await status("BIOL1406-002 is in your cart.");
  await page.getByRole("button", { name: "Add to cart BIOL1406-L04", exact: true }).click();
  await status("BIOL1406-L04 is in your cart.");
  await search("MATH2413");
  await page.getByRole("button", { name: "Add to cart MATH2413-001", exact: true }).click();
  await status("MATH2413-001 is in your cart.");
  await page.getByRole("link", { name: "Cart (3)" }).click();
  const panel = page.locator("#cart");
  await panel.getByRole("button", { name: "Check the cart" }).click();
  await panel.locator('[data-cart="MATH2413-001"] .note').waitFor(WAIT);
  await fitsPhone(page, width, "cart");
  await accessible(page, "cart open on a phone");
  // The checked cart, the phone's full width, as the README shows it.
  const box = await panel.evaluate((el) => {
    const r = el.getBoundingClientRect();
    return { y: r.top + window.scrollY, height: r.height };
  });
  const clip = { x: 0, y: Math.max(0, box.y - 12), width, height: box.height + 24 };
  await page.screenshot({ path: `${OUT}/cart-6-phone.png`, fullPage: true, clip });
  console.log(`e2e: screenshot ${OUT}/cart-6-phone.png`);
  if (process.env.E2E_DOC_SHOTS === "1") {
    await page.screenshot({ path: PHONE_CART_SHOT, fullPage: true, clip });
    console.log(`e2e: screenshot ${PHONE_CART_SHOT}`);
  }

  // The chooser on a phone.
  await search("BIOL1406");
  await page.getByRole("button", { name: "Enroll… BIOL1406-001", exact: true }).click();
  const dialog = page.getByRole("dialog", { name: /Enroll in BIOL1406-001/ });
  await dialog.getByRole("radio", { name: /BIOL1406-L01/ }).waitFor(WAIT);
  await fitsPhone(page, width, "set chooser");
  await accessible(page, "set chooser on a phone");
  await shot(page, "cart-7-phone-chooser");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached", ...WAIT });

  // Submit, then Drop on the schedule: on screen too.
  await page.getByRole("button", { name: "Submit cart" }).click();
  await status("Cart submitted");
  await page.getByLabel("My sections").getByRole("button", { name: "Drop BIOL1406-L04 and its whole set", exact: true }).waitFor(WAIT);
  await fitsPhone(page, width, "schedule after submit");
  await context.close();
}

export async function run(browser) {
  const terms = await must(await call("GET", "/api/v1/terms"), "terms", 200);
  await chooser(browser);
  await cart(browser, terms[0].id);
  await phone(browser);
}
