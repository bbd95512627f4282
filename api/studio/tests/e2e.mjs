// ORFEAS Studio in a real browser (Debian's Chromium driven by Playwright), against a real fleet
// that the Rust test `cli/tests/fleet/studio.rs` starts. It speaks a line protocol on stdout:
// `{"phase": "need_worker"}` asks the test to start a worker (jobs submitted before then stay
// queued, so one can be canceled for sure); the last line is `{"result": {...}}` with what the
// test checks further (the downloaded GLB is validated there). Any failed check throws: the
// process exits non-zero with the reason on stderr.
//
// Environment: STUDIO_URL, JOBS_KEY, ADMIN_KEY, SAMPLES (a folder holding star.png, vase.png and
// blank.png), OUT (artefacts: screenshots, the GLB), STUDIO_NODE_MODULES (the pinned packages,
// scripts/studio_vendor.sh), CHROMIUM (default /usr/bin/chromium).

import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const env = (k, d) => process.env[k] ?? d ?? (() => { throw new Error(`${k} is not set`); })();
const URL_BASE = env("STUDIO_URL");
const OUT = env("OUT");
const SAMPLES = env("SAMPLES");
const require = createRequire(join(env("STUDIO_NODE_MODULES"), "noop.js"));
const { chromium } = require("playwright-core");
const { AxeBuilder } = require("@axe-core/playwright");
mkdirSync(OUT, { recursive: true });

const T = 90_000;
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();
const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const log = (...a) => process.stderr.write(`[studio] ${a.join(" ")}\n`);
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const browser = await chromium.launch({
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  headless: true,
  args: ["--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--ignore-gpu-blocklist"],
});
const result = { views: {}, axe: {}, overflow: {} };

// Console errors, page errors and CSP violations fail the run, except the browser's own line for
// a refusal the test provokes on purpose (listed with its status and path).
const expectedRefusals = [];
const consoleErrors = [];
function watch(page, label) {
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const text = msg.text();
    const url = msg.location()?.url ?? "";
    const expected = expectedRefusals.some(([status, path]) => text.includes(`status of ${status}`) && url.includes(path));
    if (!expected) consoleErrors.push(`${label}: ${text} (${url})`);
  });
  page.on("pageerror", (err) => consoleErrors.push(`${label}: ${err.message}`));
}

async function axe(page, name) {
  const r = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]).analyze();
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  result.axe[name] = { violations: r.violations.length, serious_or_critical: bad.length };
  check(bad.length === 0, `axe on ${name}: ${bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`).join("; ")}`);
}

async function shot(page, name) {
  const path = join(OUT, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  result.views[name] = path;
}

async function narrow(page, name) {
  const before = page.viewportSize();
  await page.setViewportSize({ width: 360, height: 800 });
  await page.waitForTimeout(150);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  result.overflow[name] = width;
  check(width <= 360, `${name} scrolls sideways at 360 px (content is ${width} px wide)`);
  await shot(page, `${name}-360`);
  await page.setViewportSize(before);
}

async function signIn(page, key) {
  await page.goto(`${URL_BASE}/#/signin`);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Generate 3D meshes" }).waitFor({ timeout: T });
}

/** Pixel statistics of a screenshot, computed in the page: share of pixels far from the most
 *  common colour, and the luminance's standard deviation. */
async function pixelStats(page, png) {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width;
    c.height = img.height;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const counts = new Map();
    let sum = 0;
    let sum2 = 0;
    const n = d.length / 4;
    for (let i = 0; i < d.length; i += 4) {
      const key = (d[i] >> 3) << 10 | (d[i + 1] >> 3) << 5 | (d[i + 2] >> 3);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      const y = 0.2126 * d[i] + 0.7152 * d[i + 1] + 0.0722 * d[i + 2];
      sum += y;
      sum2 += y * y;
    }
    const mode = Math.max(...counts.values());
    const mean = sum / n;
    return { differing: 1 - mode / n, luminance_std: Math.sqrt(Math.max(0, sum2 / n - mean * mean)), colours: counts.size };
  }, png.toString("base64"));
}

async function tabTo(page, predicate, what, { arg = null, max = 80 } = {}) {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(predicate, arg)) return;
  }
  throw new Error(`keyboard: never reached ${what} in ${max} tabs`);
}

async function waitStatus(page, id, status) {
  await page.locator(`article.job[data-job="${id}"][data-status="${status}"]`).first().waitFor({ timeout: T });
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  watch(page, "user");

  // --- Signed out: the sign-in view.
  expectedRefusals.push([401, "/api/me"], [401, "/api/session"]);
  await page.goto(`${URL_BASE}/`);
  await page.getByRole("heading", { name: "Sign in to ORFEAS Studio" }).waitFor({ timeout: T });
  await axe(page, "signin");
  await narrow(page, "signin");
  await shot(page, "signin");
  await page.getByLabel("API key").fill("orf_not_a_key");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#api-key-error").filter({ hasText: "unauthorized" }).waitFor({ timeout: T });
  await signIn(page, env("JOBS_KEY"));
  check(!(await page.locator("#nav-operators").isVisible()), "a jobs key sees no Operators link");

  // --- Generate: a 422 shown at its option, then a job canceled while it waits for a worker.
  await axe(page, "generate");
  await narrow(page, "generate");
  // Three files, as a user brings them: dropped, pasted, and one that is not an image.
  const star = readFileSync(join(SAMPLES, "star.png")).toString("base64");
  const files = (specs) => page.evaluateHandle((list) => {
    const dt = new DataTransfer();
    for (const [name, b64, type] of list) {
      const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bin], name, { type }));
    }
    return dt;
  }, specs);
  await page.dispatchEvent("#drop", "drop", { dataTransfer: await files([["dropped.png", star, "image/png"]]) });
  const pasted = await files([["image.png", star, "image/png"]]);
  await page.evaluate((dt) => document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true })), pasted);
  const notes = Buffer.from("these are notes, not an image").toString("base64");
  await page.dispatchEvent("#drop", "drop", { dataTransfer: await files([["notes.png", notes, "image/png"]]) });
  const names = await page.locator(".thumb .name").allTextContents();
  check(names.length === 3 && names[0] === "dropped.png" && names[1].startsWith("pasted-") && names[2] === "notes.png", `thumbnails of the dropped and pasted files: ${names}`);
  await page.getByLabel("Face budget").fill("5");
  expectedRefusals.push([422, "/api/jobs"], [429, "/api/jobs"], [415, "/api/jobs"]);
  await page.getByRole("button", { name: "Generate 3 meshes" }).click();
  const faceError = page.locator("#opt-face_count-error");
  await faceError.filter({ hasText: "face_count" }).waitFor({ timeout: T });
  check(await page.getByLabel("Face budget").getAttribute("aria-invalid") === "true", "the refused option is marked invalid");
  result.field_error = await faceError.textContent();
  await shot(page, "generate-error");
  await page.getByLabel("Face budget").fill("3000");
  await page.getByRole("button", { name: "Generate 3 meshes" }).click();
  // The key may have one job at a time: the first is queued, the second refused with 429 and
  // the time to wait, which the button counts down.
  const queuedCard = page.locator("article.job").first();
  const limitError = page.locator(".form-error").filter({ hasText: "Try again in" });
  await limitError.waitFor({ timeout: T });
  result.limit_error = await limitError.textContent();
  check(await page.getByRole("button", { name: /^Wait \d+ s$/ }).isDisabled(), "the button waits out Retry-After");
  await queuedCard.locator(".queue").filter({ hasText: "in the queue" }).waitFor({ timeout: T });
  result.queue_line = await queuedCard.locator(".queue").textContent();
  const canceledId = await queuedCard.getAttribute("data-job");
  await shot(page, "generate-queued");
  await queuedCard.getByRole("button", { name: /^Cancel/ }).click();
  await waitStatus(page, canceledId, "canceled");
  await page.locator(".toast").filter({ hasText: "was canceled" }).waitFor({ timeout: T });
  result.canceled = canceledId;
  // Once the wait is over the rest go: the pasted image is accepted, the text file refused (415)
  // on its own thumbnail.
  await page.getByRole("button", { name: "Generate 2 meshes" }).click({ timeout: 30_000 });
  const refused = page.locator(".thumb.has-error .thumb-error");
  await refused.waitFor({ timeout: T });
  result.refused_file = await refused.textContent();
  check(result.refused_file.includes("unsupported_media_type"), `the text file is refused on its thumbnail: ${result.refused_file}`);
  check((await page.locator(".thumb .name").allTextContents()).join() === "notes.png", "only the refused file stays");
  const second = page.locator(`article.job:not([data-job="${canceledId}"])`).first();
  await second.waitFor({ timeout: T });
  const secondId = await second.getAttribute("data-job");
  await second.getByRole("button", { name: /^Cancel/ }).click();
  await waitStatus(page, secondId, "canceled");

  // --- A worker joins.
  say({ phase: "need_worker" });
  const answer = await lines.next();
  check(!answer.done && JSON.parse(answer.value).worker === "ready", "the test started a worker");

  // --- The journey by keyboard alone: choose a file, submit, open the result, download the GLB.
  await page.goto(`${URL_BASE}/#/`);
  await page.getByRole("heading", { name: "Generate 3D meshes" }).waitFor();
  await page.getByLabel("Face budget").fill("3000");
  await page.locator("body").focus();
  await page.evaluate(() => document.activeElement?.blur());
  await tabTo(page, () => document.activeElement?.id === "images", "the image chooser");
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.keyboard.press("Space")]);
  await chooser.setFiles(join(SAMPLES, "vase.png"));
  await tabTo(page, () => document.activeElement?.type === "submit", "the Generate button");
  await page.keyboard.press("Enter");
  const card = page.locator(`article.job:not([data-job="${canceledId}"]):not([data-job="${secondId}"])`).first();
  await card.waitFor({ timeout: T });
  const jobId = await card.getAttribute("data-job");
  await tabTo(page, (id) => document.activeElement?.getAttribute("href") === `#/jobs/${id}`, "the job's link", { arg: jobId, max: 120 });
  await page.keyboard.press("Enter");
  await page.waitForURL(`**/#/jobs/${jobId}`);
  // The stages arrive live: each of the five is marked done with a time.
  await waitStatus(page, jobId, "succeeded");
  const stages = await page.locator(`article.job[data-job="${jobId}"] li.stage`).evaluateAll((els) => els.map((e) => ({ stage: e.dataset.stage, state: e.dataset.state, time: e.querySelector(".time").textContent })));
  check(stages.length === 5 && stages.every((s) => s.state === "done" && s.time), `five finished stages with times: ${JSON.stringify(stages)}`);
  result.stages = stages;
  await page.locator(".toast").filter({ hasText: "is ready" }).first().waitFor({ timeout: T });
  await page.locator('.preview[data-loaded="true"]').waitFor({ timeout: T });
  await page.waitForTimeout(1500);
  const preview = await page.locator(".preview model-viewer").screenshot();
  writeFileSync(join(OUT, "preview.png"), preview);
  result.preview = await pixelStats(page, preview);
  check(result.preview.differing > 0.05 && result.preview.luminance_std > 8, `the WebGL preview is not blank: ${JSON.stringify(result.preview)}`);
  const cutout = page.locator("img.cutout");
  await cutout.waitFor();
  result.cutout_width = await cutout.evaluate(async (img) => { await img.decode(); return img.naturalWidth; });
  check(result.cutout_width === 512, "the cut-out is the 512² image the engine saw");
  result.mesh = {
    vertices: Number((await page.locator('[data-stat="vertices"]').textContent()).replaceAll(/[^0-9]/g, "")),
    faces: Number((await page.locator('[data-stat="faces"]').textContent()).replaceAll(/[^0-9]/g, "")),
  };
  check(result.mesh.faces > 0 && result.mesh.faces <= 3000, `mesh statistics: ${JSON.stringify(result.mesh)}`);
  await axe(page, "job");
  await narrow(page, "job");
  await shot(page, "job");
  await tabTo(page, () => document.activeElement?.dataset?.artifact === "glb", "the GLB download");
  const [download] = await Promise.all([page.waitForEvent("download"), page.keyboard.press("Enter")]);
  const glbPath = join(OUT, "studio.glb");
  await download.saveAs(glbPath);
  result.glb = glbPath;
  result.job = jobId;

  // --- A share link opens the job read-only in a browser without the session.
  await page.getByRole("button", { name: "Share…" }).click();
  const shareUrl = await page.locator("#share-url").inputValue();
  check(shareUrl.includes(`#/jobs/${jobId}?token=`), "a share link to the job");
  const visitor = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const vpage = await visitor.newPage();
  watch(vpage, "visitor");
  await vpage.goto(shareUrl);
  await vpage.locator('.preview[data-loaded="true"]').waitFor({ timeout: T });
  check(!(await vpage.getByRole("button", { name: /^Cancel/ }).count()), "a shared job cannot be canceled");
  result.shared = true;
  await visitor.close();

  // --- A failure: a blank image has no object; the toast explains the code.
  await page.goto(`${URL_BASE}/#/`);
  await page.getByRole("heading", { name: "Generate 3D meshes" }).waitFor();
  await page.setInputFiles("#images", join(SAMPLES, "blank.png"));
  await page.getByRole("button", { name: "Generate" }).click();
  const failedToast = page.locator(".toast-error").filter({ hasText: "no_foreground" });
  await failedToast.waitFor({ timeout: T });
  result.failure_toast = await failedToast.locator("p").textContent();

  // --- Run again, from the result.
  await page.goto(`${URL_BASE}/#/jobs/${jobId}`);
  await page.getByRole("button", { name: "Run again" }).click();
  await page.waitForURL((u) => u.hash.startsWith("#/jobs/") && !u.hash.includes(jobId));
  const rerunId = new URL(page.url()).hash.split("/")[2];
  await waitStatus(page, rerunId, "succeeded");
  result.rerun = rerunId;

  // --- History: filters and keyset pages (two per page here).
  await page.goto(`${URL_BASE}/#/history?limit=2`);
  await page.getByRole("heading", { name: "History" }).waitFor();
  const rows = page.locator(".history-table tbody tr");
  await rows.first().waitFor();
  const page1 = await rows.evaluateAll((r) => r.map((e) => e.dataset.job));
  await page.getByRole("button", { name: "Next page" }).click();
  await page.locator(".page-note").filter({ hasText: "Page 2" }).waitFor();
  await rows.first().waitFor();
  const page2 = await rows.evaluateAll((r) => r.map((e) => e.dataset.job));
  check(page1.length === 2 && page2.length >= 1 && !page2.some((id) => page1.includes(id)), `pages do not overlap: ${page1} / ${page2}`);
  await page.getByRole("button", { name: "Previous page" }).click();
  await page.locator(".page-note").filter({ hasText: "Page 1" }).waitFor();
  await page.getByLabel("Status").selectOption("canceled");
  await page.locator(`.history-table tbody tr[data-job="${canceledId}"]`).waitFor();
  const statuses = await page.locator(".history-table tbody .badge").allTextContents();
  check(statuses.length >= 1 && statuses.every((s) => s === "canceled"), `the filter keeps canceled jobs only: ${statuses}`);
  result.history = { page1, page2 };
  await axe(page, "history");
  await narrow(page, "history");
  await shot(page, "history");

  // --- Operators, with an admin key: the charts hold the endpoints' numbers.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to ORFEAS Studio" }).waitFor();
  await signIn(page, env("ADMIN_KEY"));
  await page.getByRole("link", { name: "Operators" }).click();
  await page.locator('[data-chart="stages"] .bars').waitFor({ timeout: T });
  const api = await page.evaluate(async () => {
    const get = async (p) => (await fetch(p)).json();
    return {
      summary: await get("/api/performance/summary?window=24h"),
      recs: await get("/api/performance/recommendations?window=24h"),
      gpu: await get("/api/gpu/status"),
      workers: await get("/api/workers"),
    };
  });
  const bars = async (chart) => page.locator(`[data-chart="${chart}"] .bar`).evaluateAll((g) => g.map((e) => [e.dataset.key, Number(e.dataset.value)]));
  const stageBars = await bars("stages");
  check(stageBars.length === api.summary.stages.length && api.summary.stages.every((s) => stageBars.some(([k, v]) => k === s.stage && Math.abs(v - s.share_percent) < 1e-9)), `stage chart = summary.stages: ${JSON.stringify(stageBars)}`);
  const slowest = [...api.summary.stages].sort((a, b) => b.share_percent - a.share_percent)[0];
  check((await page.locator(".bar.highlight").getAttribute("data-key")) === slowest.stage, "the slowest stage is highlighted");
  check((await page.locator(".slowest").textContent()) === `Slowest stage: ${slowest.stage} (${slowest.share_percent.toFixed(1)} %)`, "the slowest stage line");
  const failures = await bars("failures");
  check(JSON.stringify(failures) === JSON.stringify(api.summary.failures), `failure chart = summary.failures: ${JSON.stringify(failures)} vs ${JSON.stringify(api.summary.failures)}`);
  check(failures.some(([code]) => code === "no_foreground"), "the blank image's failure is counted");
  const durations = await bars("durations");
  check(durations.length === 3 && Math.abs(durations[2][1] - api.summary.duration.p95_seconds) < 1e-9, "percentile chart = summary.duration");
  const total = await page.locator('[data-figure="total_pipelines"] .figure-value').textContent();
  check(Number(total) === api.summary.total_pipelines && api.summary.total_pipelines >= 2, `pipelines run: ${total}`);
  const recRules = await page.locator(".rec").evaluateAll((r) => r.map((e) => e.dataset.rule));
  check(JSON.stringify(recRules) === JSON.stringify(api.recs.details.map((d) => d.id)), "every recommendation is listed");
  const workerRows = await page.locator("table.workers tbody tr").evaluateAll((r) => r.map((e) => e.dataset.worker));
  check(api.workers.workers.length >= 1 && api.workers.workers.every((w) => workerRows.includes(w.id)), "every live worker is listed");
  const devices = await page.locator("article.device").count();
  check(devices === api.gpu.devices.length, "one card per device");
  result.operators = { stage_bars: stageBars, failures, total: Number(total), workers: workerRows.length, devices };
  await axe(page, "operators");
  await narrow(page, "operators");
  await shot(page, "operators");

  check(consoleErrors.length === 0, `console errors: ${consoleErrors.join(" | ")}`);
  await context.close();
  say({ result });
} finally {
  await browser.close();
  stdin.close();
}
