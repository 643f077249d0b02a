// The pages load from the server: the app at / and /console, Swagger UI at /docs.
import { BASE, check, shot } from "./lib.mjs";

export async function run(browser) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${BASE}/docs`);
  await page.waitForSelector(".swagger-ui .info .title", { timeout: 15000 });
  const title = await page.textContent(".swagger-ui .info .title");
  check(title && title.includes("registrar"), `docs title: ${title}`);
  await shot(page, "docs");
  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  await page.close();
}
