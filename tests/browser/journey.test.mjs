// The whole journey in a real browser: Debian's chromium driven by playwright-core (no browser
// download) against the local runner in fleet mode (4 instances per function, P = 15 s).
//
//   1. with the flag disabled, the journey is not offered;
//   2. deploy isFeatureXEnabled=true (the fleet view's Deploy button, AllAtOnce: Δ = 0): before
//      consistentAt the page does not offer the journey and says when it opens;
//   3. after consistentAt (the page re-checks by itself), 20 journeys complete: 0 × 503, and at
//      least 3 different instances served them;
//   4. deploy false: the journey disappears from the page by itself;
//   5. a journey left open across that deployment meets a 503 and shows a clear message.
//
// Run by ./scripts/test after `cargo build -p lockstep-local`. It fails loudly, never skips, when
// chromium, the runner binary, Java or DynamoDB Local is missing. Screenshots and the runner's
// log go to target/browser/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || "target");
const RUNNER = process.env.LOCKSTEP_RUNNER_BIN || path.join(TARGET, "debug", "lockstep-local");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const OUT = path.join(ROOT, "target", "browser");

const P = 15; // seconds, the poll interval
const EPSILON = 5; // seconds, ε
const STRATEGY = "lockstep-all-at-once"; // the local AppConfig's strategy for the deployments
const DELTA = 0; // seconds, its duration (from the deployment itself)
const INSTANCES = 4;
const JOURNEYS = 20;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const hhmmss = (ms) => new Date(ms).toISOString().slice(11, 19); // the page runs in UTC

// Starts the runner in its own process group (DynamoDB Local's java is its child) and resolves
// with its base URL once it listens.
function startRunner(initialFlags, log) {
  if (!existsSync(RUNNER)) {
    throw new Error(`runner binary missing: ${RUNNER} (run cargo build -p lockstep-local first)`);
  }
  const child = spawn(RUNNER, [], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      LOCKSTEP_INITIAL_FLAGS: initialFlags,
      LOCKSTEP_PORT: "0",
      LOCKSTEP_INSTANCES: String(INSTANCES),
      AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS: String(P),
      LOCKSTEP_EPSILON_SECONDS: String(EPSILON),
    },
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
    log.write(chunk);
  });
  const ready = new Promise((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => reject(new Error(`runner not listening after 120 s:\n${stdout}`)), 120_000);
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      log.write(chunk);
      const match = /listening on (http:\/\/\S+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`runner exited (${code ?? signal}) before listening:\n${stderr.slice(-1500)}`));
    });
  });
  return { child, ready };
}

async function stopRunner(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    process.kill(-child.pid, "SIGTERM"); // graceful: the runner stops DynamoDB Local
  } catch (_) {
    return;
  }
  let timer;
  const graceful = await Promise.race([
    exited.then(() => true),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), 10_000);
    }),
  ]);
  clearTimeout(timer);
  try {
    process.kill(-child.pid, "SIGKILL"); // whatever is left of the group
  } catch (_) {
    // already gone
  }
  if (!graceful) await exited;
}

async function api(base, method, route, body) {
  const response = await fetch(base + route, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

// Waits until the SPA has read /config after a load, and returns what it decided.
async function availability(page) {
  await page.waitForFunction(() => document.getElementById("app").dataset.availability !== "loading");
  return page.getAttribute("#app", "data-availability");
}

test("the journey opens only when the fleet is consistent, in a real browser", { timeout: 300_000 }, async (t) => {
  const started = Date.now();
  mkdirSync(OUT, { recursive: true });
  assert.ok(existsSync(CHROMIUM), `chromium missing at ${CHROMIUM} (Debian: apt-get install chromium)`);
  const flagsDir = mkdtempSync(path.join(tmpdir(), "lockstep-browser-"));
  // The runner deploys these to its local AppConfig first: the journey starts disabled.
  const initialFlags = path.join(flagsDir, "initial-flags.json");
  writeFileSync(
    initialFlags,
    JSON.stringify({
      isFeatureXEnabled: false,
      useSubmissionsGsi: false,
      lockstepMetadata: { lastModifiedTimestamp: "2020-01-01T00:00:00Z", deploymentDurationSeconds: 0 },
    }),
  );
  const log = createWriteStream(path.join(OUT, "runner.log"));
  const runner = startRunner(initialFlags, log);
  const killOnExit = () => {
    try {
      process.kill(-runner.child.pid, "SIGKILL");
    } catch (_) {
      // already gone
    }
  };
  process.once("exit", killOnExit);
  let browser;
  t.after(async () => {
    await browser?.close().catch(() => {});
    await stopRunner(runner.child);
    process.removeListener("exit", killOnExit);
    log.end();
    rmSync(flagsDir, { recursive: true, force: true });
    console.log(`browser journey test: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  const base = await runner.ready;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  const context = await browser.newContext({
    timezoneId: "UTC",
    locale: "en-GB",
    viewport: { width: 900, height: 640 },
  });
  const pageErrors = [];
  const featureX = []; // every feature-x response any page saw: { page, status, instance, type }
  const configs = []; // every /config response the SPA saw
  const watch = (page, name) => {
    page.on("pageerror", (error) => pageErrors.push(`${name}: ${error.message}`));
    page.on("response", (response) => {
      const url = new URL(response.url());
      if (url.pathname.startsWith("/feature-x/")) {
        featureX.push({
          page: name,
          status: response.status(),
          instance: response.headers()["x-lockstep-instance"],
          contentType: response.headers()["content-type"],
        });
      } else if (url.pathname === "/config") {
        configs.push(response);
      }
    });
  };
  const spa = await context.newPage();
  watch(spa, "spa");

  await t.test("1. with the flag disabled, the journey is not offered", async () => {
    await spa.goto(base + "/");
    assert.equal(await availability(spa), "closed");
    assert.equal(await spa.isVisible("#start"), false, "no Start button");
    assert.match(await spa.textContent("#status-text"), /not available/);
    const config = await configs.at(-1).json();
    assert.equal(config.isFeatureXEnabled, false);
  });

  let consistentAt;
  await t.test("2. after deploying true, the journey is not offered before consistentAt, and the page says when", async () => {
    // Every instance started (cold starts are staggered over P), so each picks the new version
    // up at its own moment.
    const deadline = Date.now() + (P + 10) * 1000;
    for (;;) {
      const fleet = await api(base, "GET", "/local/fleet");
      const states = fleet.body.functions.flatMap((f) => f.instances.map((i) => i.state));
      assert.equal(states.length, 2 * INSTANCES);
      if (states.every((s) => s === "warm")) break;
      assert.ok(Date.now() < deadline, `instances still starting: ${states}`);
      await sleep(500);
    }
    // The deployment goes through the fleet view's Deploy button, with the strategy chosen there
    // (its duration is Δ).
    const fleet = await context.newPage();
    watch(fleet, "fleet");
    await fleet.setViewportSize({ width: 1280, height: 900 });
    await fleet.goto(base + "/fleet");
    await fleet.selectOption("#deploy-isFeatureXEnabled", "true");
    await fleet.waitForSelector(`#strategy option[value="${STRATEGY}"]`, { state: "attached" });
    await fleet.selectOption("#strategy", STRATEGY);
    const [response] = await Promise.all([
      fleet.waitForResponse((r) => r.url().endsWith("/local/deployments")),
      fleet.click("#deploy"),
    ]);
    assert.equal(response.status(), 201);
    const deployment = await response.json();
    const flag = deployment.flags.isFeatureXEnabled;
    assert.equal(flag.value, true);
    assert.equal(flag.change, "changed");
    assert.equal(deployment.strategy.deploymentDurationSeconds, DELTA, "Δ is the strategy's own");
    const stampedAt = Date.parse(flag.lastModifiedTimestamp);
    consistentAt = Date.parse(flag.consistentAt);
    assert.equal(consistentAt, stampedAt + (DELTA + P + EPSILON) * 1000, "consistentAt = T + Δ + P + ε");
    await fleet.waitForSelector("#deploy-result:has-text('Deployed at')");

    // A user arriving (or reloading) while instances pick the new version up one by one: some
    // still serve the old one, so the page may say "not available" until it reaches one that
    // has the new version; it must never offer the journey before consistentAt.
    let state;
    while (Date.now() < consistentAt - 4000) {
      await spa.reload();
      state = await availability(spa);
      assert.notEqual(state, "open", "the journey was offered before consistentAt");
      if (state === "waiting") break;
      await sleep(1000);
    }
    assert.equal(state, "waiting", "the page never said when the journey opens");
    assert.ok(Date.now() < consistentAt, "still before consistentAt");
    assert.equal(await spa.isVisible("#start"), false, "no Start button while waiting");
    assert.equal(await spa.isVisible("#opens"), true);
    const config = await configs.at(-1).json();
    assert.equal(config.isFeatureXEnabled, true);
    assert.equal(config.isBackendConsistent, false);
    assert.equal(Date.parse(config.consistentAt), consistentAt, "/config's consistentAt is the deployment's");
    const shown = await spa.getAttribute("#opens-at", "datetime");
    assert.equal(Date.parse(shown), consistentAt, "the page shows /config's consistentAt");
    assert.equal(await spa.textContent("#opens-at"), hhmmss(consistentAt));
    assert.match(await spa.textContent("#opens-in"), /\(in \d+ seconds?\)/);
    await spa.screenshot({ path: path.join(OUT, "step2-opens-at.png") });
    // The fleet view mid-rollout: some instances already hold the new version, some not yet.
    await fleet.waitForSelector("td:has-text('(deployed)')");
    await fleet.screenshot({ path: path.join(OUT, "fleet-view.png"), fullPage: true });
    await fleet.close();
  });

  await t.test(`3. after consistentAt the page opens the journey by itself; ${JOURNEYS} journeys, 0 × 503, ≥ 3 instances`, async () => {
    // No reload: the page's own re-check at consistentAt opens the journey.
    await spa.waitForSelector("#start", { state: "visible", timeout: consistentAt - Date.now() + 10_000 });
    const openedAt = Date.now();
    assert.ok(openedAt >= consistentAt, `opened ${consistentAt - openedAt} ms before consistentAt`);
    assert.ok(openedAt <= consistentAt + 5000, `opened ${openedAt - consistentAt} ms after consistentAt`);

    featureX.length = 0;
    const ids = [];
    for (let i = 0; i < JOURNEYS; i++) {
      await spa.click("#start");
      await spa.waitForSelector("#journey", { state: "visible" });
      await spa.waitForFunction(() => !/Looking up/.test(document.getElementById("history").textContent));
      await spa.selectOption("#plan", i % 2 ? "premium" : "basic");
      await spa.fill("#quantity", String((i % 10) + 1));
      await spa.click("#submit");
      await spa.waitForSelector("#confirmation:visible, #problem:visible");
      assert.equal(
        await spa.isVisible("#confirmation"),
        true,
        `journey ${i + 1}: ${await spa.textContent("#problem")}`,
      );
      await spa.waitForSelector("#confirmation-note:has-text('read back from')");
      ids.push(await spa.textContent("#confirmation-id"));
      if (i === JOURNEYS - 1) await spa.screenshot({ path: path.join(OUT, "step3-confirmation.png") });
      await spa.click("#done");
      await spa.waitForSelector("#start", { state: "visible" });
    }

    const statuses = featureX.map((r) => r.status);
    const unavailable = statuses.filter((s) => s === 503).length;
    const instances = new Set(featureX.map((r) => r.instance));
    console.log(
      `step 3: ${JOURNEYS} journeys, ${featureX.length} feature-x responses, 503s: ${unavailable}, ` +
        `instances: ${[...instances].sort().join(" ")}`,
    );
    assert.equal(unavailable, 0, "no 503 after consistentAt");
    assert.ok(statuses.every((s) => s === 200 || s === 201), `statuses ${statuses}`);
    assert.equal(featureX.filter((r) => r.status === 201).length, JOURNEYS, "one stored submission per journey");
    assert.ok(featureX.every((r) => /^feature-x-\d+$/.test(r.instance)), "every response names its instance");
    assert.ok(instances.size >= 3, `only ${instances.size} instances served the journeys`);
    assert.equal(new Set(ids).size, JOURNEYS);
    const user = await spa.evaluate(() => localStorage.getItem("lockstep.userId"));
    const stored = await api(base, "GET", `/feature-x/submissions?userId=${user}&limit=100`);
    assert.deepEqual(stored.body.items.map((s) => s.id).sort(), [...ids].sort(), "the server stored exactly these");
  });

  // A second tab starts a journey now and leaves it open across the next deployment (step 5).
  const late = await context.newPage();
  watch(late, "late");
  await late.goto(base + "/");
  await late.waitForSelector("#start", { state: "visible" });
  await late.click("#start");
  await late.waitForSelector("#journey", { state: "visible" });
  await late.fill("#quantity", "3");

  let disabledAt;
  await t.test("4. after deploying false, the journey disappears from the page by itself", async () => {
    const deployment = await api(base, "POST", "/local/deployments", {
      flags: { isFeatureXEnabled: false },
      strategy: STRATEGY,
    });
    assert.equal(deployment.status, 201);
    disabledAt = Date.parse(deployment.body.lastModifiedTimestamp);
    // Instances refresh within P; the page re-reads /config every P: gone within about 2P.
    await spa.waitForSelector("#start", { state: "hidden", timeout: (2 * P + 10) * 1000 });
    console.log(`step 4: the journey disappeared ${((Date.now() - disabledAt) / 1000).toFixed(1)} s after the deployment`);
    assert.equal(await spa.getAttribute("#app", "data-availability"), "closed");
    assert.match(await spa.textContent("#status-text"), /not available/);
    await spa.screenshot({ path: path.join(OUT, "step4-closed.png") });
  });

  await t.test("5. a journey left open across the deployment meets a 503 shown as a clear message", async () => {
    // P after the deployment every feature-x instance refreshes before deciding: the gate is closed.
    await sleep(Math.max(0, disabledAt + (P + 1) * 1000 - Date.now()));
    featureX.length = 0;
    await late.click("#submit");
    await late.waitForSelector("#problem", { state: "visible" });
    const refused = featureX.filter((r) => r.page === "late");
    assert.deepEqual(
      refused.map((r) => [r.status, r.contentType]),
      [[503, "application/problem+json"]],
    );
    assert.match(await late.textContent("#problem-title"), /switched off/);
    assert.match(await late.textContent("#problem-text"), /Nothing was saved/);
    assert.equal(await late.isVisible("#back"), true);
    await late.screenshot({ path: path.join(OUT, "step5-503.png") });
    await late.click("#back");
    await late.waitForSelector("#app[data-view='home'][data-availability='closed']");
    assert.deepEqual(pageErrors, [], "no page error anywhere");
  });
});
