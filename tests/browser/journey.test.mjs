// The whole journey in a real browser: Debian's chromium driven by playwright-core (no browser
// download) against the local runner in fleet mode (4 instances per function, P = 45 s, so the
// catch-up of rule 8 is visibly shorter than P), with journey tokens:
//
//   1. with the flag disabled, the journey is not offered;
//   2. deploy isFeatureXEnabled=true (the fleet view's Deploy button, AllAtOnce: Δ = 0): before
//      journeyOpensAt (T + Δ + Q + ε) the page does not offer the journey and says when it opens;
//      it opens by itself at about T + Δ + Q + ε (≈ 20 s), clearly before T + Δ + P + ε (≈ 50 s);
//   3. 20 journeys complete: 0 × 503, at least 3 different instances served them, every feature
//      call carried the journey's token, and instances behind it caught up (the fleet view counts
//      the catch-ups);
//   4. a planned switch-off (the fleet view's Deploy form with a drain time of 300 s): a journey
//      in flight, opened before with its token, submits successfully once every instance holds the
//      switch-off (the gate drains), while a fresh page shows the journey closed;
//   5. re-enabled, the journey reopens; a kill switch (a switch-off without drain) meets a journey
//      in flight with a 503 that the page shows clearly, with its reason.
//
// Run by ./scripts/test after `cargo build -p lockstep-local`. It fails loudly, never skips, when
// chromium, the runner binary, Java or DynamoDB Local is missing. Screenshots and the runner's
// log go to target/browser/.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { OUT, api, availability, bearer, claims, fleetRunner, secondsSince, signIn, sleep } from "./support.mjs";

const P = 45; // seconds, the poll interval
const Q = 15; // seconds, AppConfigData's minimum poll interval: the catch-up interval (rule 8)
const EPSILON = 5; // seconds, ε
const STRATEGY = "lockstep-all-at-once"; // the local AppConfig's strategy for the deployments
const DELTA = 0; // seconds, its duration (from the deployment itself)
const DRAIN = 300; // seconds, the planned switch-off's drain time
const INSTANCES = 4; // per function (LOCKSTEP_INSTANCES); cold starts P / INSTANCES apart
const JOURNEYS = 20;
const FLAG = "isFeatureXEnabled";
const JOURNEY_HEADER = "lockstep-journey";

const hhmmss = (ms) => new Date(ms).toISOString().slice(11, 19); // the page runs in UTC



// Resolves once `condition()` holds, or after `ms` (the caller asserts).
async function waitFor(condition, ms) {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await sleep(50);
}

const instancesOf = (fleet, fn) => fleet.functions.find((f) => f.function === fn).instances;

// Reloads `page` (a user arriving, or pressing reload) until `done(state, answer)` holds for what
// it shows and the /config answer it decided with (the last one the page received: `answers()`),
// or fails at `deadline`; `check(state, answer)` may assert on every one seen. Returns
// { state, answer } reached.
async function reloadUntil(page, answers, done, deadline, check = () => {}) {
  for (;;) {
    await page.reload();
    const state = await availability(page);
    const answer = await answers().at(-1).body;
    assert.ok(answer, "the page's /config answer could not be read");
    check(state, answer);
    if (done(state, answer)) return { state, answer };
    assert.ok(
      Date.now() < deadline,
      `the page still shows "${state}" (from ${answer.configurationVersion})`,
    );
    await sleep(500);
  }
}

const stampOf = (answer) => Date.parse(answer.lastModifiedTimestamp);

// Waits until every feature-x instance holds a configuration stamped at `stamp` or later. From
// that configuration's journeyOpensAt on it sends, around the fleet, feature calls carrying a
// journey token of it (read from /config): an instance behind the token catches up (rule 8), as
// it would for a user's journey. (Regular refreshes, P after each instance's last fetch, would get
// there too, only later.) Returns the instances as the fleet view shows them.
async function convergeFeatureX(base, stamp, deadline) {
  const opensAt = stamp + (DELTA + Q + EPSILON) * 1000;
  let token = null;
  for (;;) {
    const fleet = (await api(base, "GET", "/local/fleet")).body;
    const instances = instancesOf(fleet, "feature-x");
    if (instances.every((i) => Date.parse(i.lastModifiedTimestamp) >= stamp)) return instances;
    assert.ok(
      Date.now() < deadline,
      `feature-x instances still behind ${new Date(stamp).toISOString()}: ` +
        instances.map((i) => `${i.name} ${i.lastModifiedTimestamp}`).join(", "),
    );
    if (!token) {
      const config = await api(base, "GET", "/config");
      if (Date.parse(config.body.lastModifiedTimestamp) >= stamp) token = config.body.journeyToken;
    }
    if (token && Date.now() >= opensAt) {
      for (let k = 0; k < INSTANCES; k++) {
        await api(base, "GET", "/feature-x/submissions?limit=1", undefined, {
          [JOURNEY_HEADER]: token,
          ...(await bearer(base, "fleet-probe")),
        });
      }
    }
    await sleep(1000);
  }
}

test("journeys open at journeyOpensAt with tokens, drain and kill switch, in a real browser", { timeout: 300_000 }, async (t) => {
  const fleetRun = fleetRunner(t, {
    label: "browser journey test",
    logFile: "runner.log",
    instances: INSTANCES,
    pollSeconds: P,
    epsilonSeconds: EPSILON,
  });
  const logged = (p) => fleetRun.lines.filter((l) => l.fields && l.fields.path === p).length;
  const base = await fleetRun.ready;
  const browser = await fleetRun.launch();
  const context = await browser.newContext({
    timezoneId: "UTC",
    locale: "en-GB",
    viewport: { width: 900, height: 640 },
  });
  const pageErrors = [];
  // Every feature-x response a page saw: { page, status, instance, contentType, token, body }.
  const featureX = [];
  const configs = []; // every /config answer a page saw: { page, at, body (a promise) }
  const watch = (page, name) => {
    page.on("pageerror", (error) => pageErrors.push(`${name}: ${error.message}`));
    page.on("response", (response) => {
      const url = new URL(response.url());
      if (url.pathname.startsWith("/feature-x/")) {
        featureX.push({
          page: name,
          method: response.request().method(),
          status: response.status(),
          instance: response.headers()["x-lockstep-instance"],
          contentType: response.headers()["content-type"],
          token: response.request().headers()[JOURNEY_HEADER],
          body: response.json().catch(() => null),
        });
      } else if (url.pathname === "/config" || url.pathname === "/config/me") {
        // (a signed-in page reads its own evaluation, /config/me)
        // (null when the page navigated away before the body was read)
        configs.push({ page: name, at: Date.now(), body: response.json().catch(() => null) });
      }
    });
  };
  const answersOf = (name) => () => configs.filter((c) => c.page === name);
  const lastConfig = async (name) => {
    const answers = await Promise.all(configs.filter((c) => c.page === name).map((c) => c.body));
    return answers.filter(Boolean).at(-1);
  };
  const spa = await context.newPage();
  watch(spa, "spa");
  let fleet; // the fleet view, open from step 2 on

  await t.test("1. with the flag disabled, the journey is not offered", async () => {
    await spa.goto(base + "/");
    assert.equal(await availability(spa), "closed");
    await signIn(spa, "journey-user");
    assert.equal(await spa.isVisible("#start"), false, "no Start button");
    assert.match(await spa.textContent("#status-text"), /not available/);
    const config = await lastConfig("spa");
    assert.equal(config.isFeatureXEnabled, false);
    assert.equal(typeof config.journeyToken, "string", "/config hands out a journey token");
    assert.equal(config.catchUpIntervalSeconds, Q);
    assert.equal(config.pollIntervalSeconds, P);
  });

  let enabledAt; // T of the deployment that switched the journey on
  let journeyOpensAt;
  let consistentAt;
  await t.test("2. deployed true: not offered before journeyOpensAt, the page says when, and opens by itself at about T + Δ + Q + ε", async () => {
    // Every instance started (cold starts are staggered over P), so each picks the new version
    // up at its own moment.
    const deadline = Date.now() + (P + 10) * 1000;
    for (;;) {
      const view = await api(base, "GET", "/local/fleet");
      const states = view.body.functions.flatMap((f) => f.instances.map((i) => i.state));
      assert.equal(states.length, 2 * INSTANCES);
      if (states.every((s) => s === "warm")) break;
      assert.ok(Date.now() < deadline, `instances still starting: ${states}`);
      await sleep(500);
    }
    // The deployment goes through the fleet view's Deploy button, with the strategy chosen there
    // (its duration is Δ).
    fleet = await context.newPage();
    watch(fleet, "fleet");
    await fleet.setViewportSize({ width: 1400, height: 900 });
    await fleet.goto(base + "/fleet");
    await fleet.waitForSelector("td[data-col='catchUps']");
    await fleet.selectOption(`#deploy-${FLAG}`, "true");
    await fleet.waitForSelector(`#strategy option[value="${STRATEGY}"]`, { state: "attached" });
    await fleet.selectOption("#strategy", STRATEGY);
    const [response] = await Promise.all([
      fleet.waitForResponse((r) => r.url().endsWith("/local/deployments")),
      fleet.click("#deploy"),
    ]);
    assert.equal(response.status(), 201);
    const deployment = await response.json();
    const flag = deployment.flags[FLAG];
    assert.equal(flag.value, true);
    assert.equal(flag.change, "changed");
    assert.equal(deployment.strategy.deploymentDurationSeconds, DELTA, "Δ is the strategy's own");
    enabledAt = Date.parse(flag.lastModifiedTimestamp);
    journeyOpensAt = Date.parse(flag.journeyOpensAt);
    consistentAt = Date.parse(flag.consistentAt);
    assert.equal(journeyOpensAt, enabledAt + (DELTA + Q + EPSILON) * 1000, "journeyOpensAt = T + Δ + Q + ε");
    assert.equal(consistentAt, enabledAt + (DELTA + P + EPSILON) * 1000, "consistentAt = T + Δ + P + ε");
    await fleet.waitForSelector("#deploy-result:has-text('Deployed at')");
    assert.match(await fleet.textContent("#deploy-result"), /journeys open at/);
    await spa.bringToFront();

    // A user arriving (or reloading) while instances pick the new version up one by one: some
    // still serve the old one, so the page may say "not available" until it reaches one that
    // has the new version; it must never offer the journey before journeyOpensAt.
    const { state } = await reloadUntil(spa, answersOf("spa"), (s) => s === "waiting", journeyOpensAt - 1500, (s) =>
      assert.notEqual(s, "open", "the journey was offered before journeyOpensAt"),
    );
    console.log(`step 2: the page says when the journey opens ${secondsSince(enabledAt)} s after T`);
    assert.equal(state, "waiting");
    assert.ok(Date.now() < journeyOpensAt, "still before journeyOpensAt");
    assert.equal(await spa.isVisible("#start"), false, "no Start button while waiting");
    assert.equal(await spa.isVisible("#opens"), true);
    const config = await lastConfig("spa");
    assert.equal(config.isFeatureXEnabled, true);
    assert.equal(config.isBackendConsistent, false);
    assert.equal(Date.parse(config.flags[FLAG].journeyOpensAt), journeyOpensAt, "/config's journeyOpensAt is the deployment's");
    assert.equal(Date.parse(config.journeyOpensAt), journeyOpensAt);
    assert.equal(Date.parse(config.consistentAt), consistentAt);
    const shown = await spa.getAttribute("#opens-at", "datetime");
    assert.equal(Date.parse(shown), journeyOpensAt, "the page shows /config's journeyOpensAt");
    assert.equal(await spa.textContent("#opens-at"), hhmmss(journeyOpensAt));
    assert.match(await spa.textContent("#opens-in"), /\(in \d+ seconds?\)/);
    await spa.screenshot({ path: path.join(OUT, "step2-opens-at.png") });
    // The fleet view mid-rollout: some instances already hold the new version, some not yet.
    await fleet.waitForSelector("td:has-text('(deployed)')");
    await fleet.screenshot({ path: path.join(OUT, "fleet-view.png"), fullPage: true });

    // No reload: the page's own re-check at journeyOpensAt opens the journey.
    await spa.waitForSelector("#start", { state: "visible", timeout: journeyOpensAt - Date.now() + 10_000 });
    const openedAt = Date.now();
    const openSeconds = (openedAt - enabledAt) / 1000;
    console.log(
      `step 2: the journey opened ${openSeconds.toFixed(1)} s after T ` +
        `(journeyOpensAt T + ${DELTA + Q + EPSILON} s; consistentAt T + ${DELTA + P + EPSILON} s)`,
    );
    assert.ok(openedAt >= journeyOpensAt, `opened ${journeyOpensAt - openedAt} ms before journeyOpensAt`);
    assert.ok(openSeconds >= 15, `opened ${openSeconds} s after T: before T + Δ + Q`);
    assert.ok(openSeconds < 35, `opened ${openSeconds} s after T: not clearly before T + Δ + P + ε`);
  });

  await t.test(`3. ${JOURNEYS} journeys: 0 × 503, ≥ 3 instances, the journey's token on every call, catch-ups counted`, async () => {
    await spa.bringToFront();
    featureX.length = 0;
    const catchUpsBefore = logged("catch_up_polled");
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
    const doneAt = Date.now();

    const statuses = featureX.map((r) => r.status);
    const unavailable = statuses.filter((s) => s === 503).length;
    const instances = new Set(featureX.map((r) => r.instance));
    const fx = instancesOf((await api(base, "GET", "/local/fleet")).body, "feature-x");
    const catchUps = fx.reduce((n, i) => n + i.polls.catchUps, 0);
    console.log(
      `step 3: ${JOURNEYS} journeys by T + ${((doneAt - enabledAt) / 1000).toFixed(1)} s, ` +
        `${featureX.length} feature-x responses, 503s: ${unavailable}, ` +
        `instances: ${[...instances].sort().join(" ")}; feature-x polls (catch-ups): ` +
        fx.map((i) => `${i.name} ${i.polls.polls} (${i.polls.catchUps})`).join(", "),
    );
    assert.equal(unavailable, 0, "no 503 after journeyOpensAt");
    assert.ok(statuses.every((s) => s === 200 || s === 201), `statuses ${statuses}`);
    assert.equal(featureX.filter((r) => r.status === 201).length, JOURNEYS, "one stored submission per journey");
    assert.ok(featureX.every((r) => /^feature-x-\d+$/.test(r.instance)), "every response names its instance");
    assert.ok(instances.size >= 3, `only ${instances.size} instances served the journeys`);
    assert.equal(new Set(ids).size, JOURNEYS);
    const user = await spa.evaluate(() => localStorage.getItem("lockstep.userId"));
    assert.equal(user, "journey-user");
    const stored = await api(base, "GET", "/feature-x/submissions?limit=100", undefined, await bearer(base, user));
    assert.deepEqual(stored.body.items.map((s) => s.id).sort(), [...ids].sort(), "the server stored exactly these");
    // Every feature call carried a token of the deployment that opened the journey.
    for (const r of featureX) {
      assert.ok(r.token, `a ${r.method} to ${r.instance} carried no ${JOURNEY_HEADER} header`);
      const said = claims(r.token).f[FLAG];
      assert.deepEqual(said, { v: true, t: enabledAt }, "the token names the enabled value and its T");
    }
    // Instances that still held the old version when the journeys began caught up: they polled
    // on the token, before P was up, instead of answering 503.
    assert.ok(catchUps >= 1, "no feature-x instance caught up (all refreshed regularly?)");
    await waitFor(() => logged("catch_up_polled") - catchUpsBefore >= catchUps, 2000);
    assert.equal(logged("catch_up_polled") - catchUpsBefore, catchUps, "the log names every catch-up");
    assert.ok(logged("gate_open_caught_up") >= 1, "no gate decision after a catch-up in the log");
    assert.equal(logged("gate_closed_behind"), 0, "a gate answered behind");
    // The fleet view shows them.
    await fleet.waitForFunction(
      (n) =>
        [...document.querySelectorAll("#fn-feature-x td[data-col='catchUps']")].reduce(
          (sum, td) => sum + (Number(td.textContent) || 0),
          0,
        ) === n,
      catchUps,
    );
    await fleet.screenshot({ path: path.join(OUT, "fleet-catch-ups.png"), fullPage: true });

    // A token the authorizer refuses (its signature edited in storage, as an expired or foreign
    // one would be): the journey does not start, the page says to sign in again and is signed
    // out; signing in again brings the Start button back.
    await spa.evaluate(() => {
      const saved = JSON.parse(localStorage.getItem("lockstep.session"));
      const [header, payload, signature] = saved.token.split(".");
      const edited = (signature[0] === "A" ? "B" : "A") + signature.slice(1);
      localStorage.setItem("lockstep.session", JSON.stringify({ ...saved, token: [header, payload, edited].join(".") }));
    });
    await reloadUntil(spa, answersOf("spa"), (s) => s === "open", Date.now() + (P + 10) * 1000);
    const before = featureX.length;
    await spa.click("#start");
    await spa.waitForSelector("#problem[data-status='401']", { state: "visible" });
    assert.equal(await spa.textContent("#problem-title"), "Please sign in again");
    assert.deepEqual(featureX.slice(before).map((r) => r.status), [401], "one refused call, nothing else");
    await spa.click("#back");
    await spa.waitForSelector("#signin-form", { state: "visible" });
    assert.equal(await spa.isVisible("#start"), false, "no Start button while signed out");
    assert.match(await spa.textContent("#status-text"), /Sign in to start it/);
    await signIn(spa, "journey-user");
    await spa.waitForSelector("#start", { state: "visible" });
  });

  // A second tab starts a journey now and leaves it open across the planned switch-off (step 4).
  const late = await context.newPage();
  watch(late, "late");
  await late.bringToFront();
  await late.goto(base + "/");
  // A fresh page may first read a config instance that has not polled since the deployment.
  await reloadUntil(late, answersOf("late"), (s) => s === "open", Date.now() + (P + 10) * 1000);
  await late.click("#start");
  await late.waitForSelector("#journey", { state: "visible" });
  await late.waitForFunction(() => !/Looking up/.test(document.getElementById("history").textContent));
  await late.fill("#quantity", "3");
  const lateOpened = featureX.filter((r) => r.page === "late");
  assert.equal(lateOpened.length, 1, "the journey read its history");
  const lateToken = lateOpened[0].token;
  assert.ok(lateToken, "the journey in flight carries a token");

  await t.test("4. a planned switch-off with a drain: the journey in flight submits, a fresh page shows the journey closed", async () => {
    // The fleet view's Deploy form, with a drain time: POST /local/deployments
    // {flags: {isFeatureXEnabled: false}, strategy, drainSeconds: 300}.
    await fleet.bringToFront();
    await fleet.selectOption(`#deploy-${FLAG}`, "false");
    await fleet.selectOption("#strategy", STRATEGY);
    await fleet.fill("#drain", String(DRAIN));
    const [request, response] = await Promise.all([
      fleet.waitForRequest((r) => r.url().endsWith("/local/deployments")),
      fleet.waitForResponse((r) => r.url().endsWith("/local/deployments")),
      fleet.click("#deploy"),
    ]);
    assert.deepEqual(request.postDataJSON(), { flags: { [FLAG]: false }, strategy: STRATEGY, drainSeconds: DRAIN });
    assert.equal(response.status(), 201);
    const deployment = await response.json();
    const flag = deployment.flags[FLAG];
    const offAt = Date.parse(flag.lastModifiedTimestamp);
    assert.equal(flag.value, false);
    assert.equal(flag.drainSeconds, DRAIN);
    assert.equal(Date.parse(flag.drainEndsAt), offAt + (DELTA + P + EPSILON + DRAIN) * 1000, "drainEndsAt = T + Δ + P + ε + drain");
    await fleet.waitForSelector("#deploy-result:has-text('may finish until')");
    assert.equal(await fleet.inputValue("#drain"), "", "the drain time belongs to one deployment");

    // The journey in flight opened before the switch-off, with a token of the enabled value.
    const said = claims(lateToken);
    assert.deepEqual(said.f[FLAG], { v: true, t: enabledAt });
    assert.ok(said.i < offAt, "its token was issued before the switch-off");
    assert.ok(said.signed, "a signed token (only those open a drain)");

    // Meanwhile a fresh page: closed once the config instance it reads holds the switch-off
    // (within P of the deployment: instances hold it on their next refresh).
    const fresh = await context.newPage();
    watch(fresh, "fresh");
    await fresh.bringToFront();
    await fresh.goto(base + "/");
    const [instances, { answer: closedWith }] = await Promise.all([
      // Every feature-x instance holds the switch-off, so the submit below meets the drain, not an
      // instance that has not polled yet.
      convergeFeatureX(base, offAt, offAt + (DELTA + P + EPSILON + 10) * 1000),
      // (A config instance that has not polled since the switch-off still says enabled, or, not
      // polled since before the switch-on, disabled with the first stamp: neither counts here.)
      reloadUntil(
        fresh,
        answersOf("fresh"),
        (s, answer) => stampOf(answer) >= offAt,
        offAt + (DELTA + P + EPSILON + 5) * 1000,
      ).then((reached) => {
        console.log(`step 4: a fresh page shows the switch-off ${secondsSince(offAt)} s after it`);
        return reached;
      }),
    ]);
    assert.ok(instances.every((i) => i.flags[FLAG].value === false));
    assert.equal(closedWith.isFeatureXEnabled, false);
    assert.equal(await fresh.getAttribute("#app", "data-availability"), "closed");
    assert.equal(await fresh.isVisible("#start"), false, "no Start button on a fresh page");
    assert.match(await fresh.textContent("#status-text"), /not available/);
    await fresh.screenshot({ path: path.join(OUT, "step4-fresh-closed.png") });

    // The journey in flight submits, with the token it opened with, on instances that hold the
    // switch-off: the gate drains.
    const draining = logged("gate_open_draining");
    featureX.length = 0;
    await late.bringToFront();
    await late.click("#submit");
    await late.waitForSelector("#confirmation:visible, #problem:visible");
    assert.equal(await late.isVisible("#confirmation"), true, `the journey in flight: ${await late.textContent("#problem")}`);
    await late.waitForSelector("#confirmation-note:has-text('read back from')");
    console.log(`step 4: the journey in flight submitted ${secondsSince(offAt)} s after the switch-off`);
    const calls = featureX.filter((r) => r.page === "late");
    assert.deepEqual(calls.map((r) => [r.method, r.status]), [["POST", 201], ["GET", 200]]);
    for (const r of calls) assert.equal(r.token, lateToken, "the journey kept the token it opened with");
    await waitFor(() => logged("gate_open_draining") - draining >= 2, 2000);
    assert.equal(logged("gate_open_draining") - draining, 2, "both calls went through the drain");
    await late.screenshot({ path: path.join(OUT, "step4-drained-submit.png") });
    await late.close();
  });

  await t.test("5. re-enabled, the journey reopens; a kill switch meets a journey in flight with a 503 shown clearly", async () => {
    const on = await api(base, "POST", "/local/deployments", { flags: { [FLAG]: true }, strategy: STRATEGY });
    assert.equal(on.status, 201);
    const onAt = Date.parse(on.body.flags[FLAG].lastModifiedTimestamp);
    const opensAt = Date.parse(on.body.flags[FLAG].journeyOpensAt);
    const page = await context.newPage();
    watch(page, "kill");
    await page.bringToFront();
    await page.goto(base + "/");
    // (Config instances that have not polled since then still answer with an older stamp.)
    const { state } = await reloadUntil(
      page,
      answersOf("kill"),
      (s, answer) => stampOf(answer) >= onAt,
      onAt + (DELTA + P + EPSILON + 5) * 1000,
      (s, answer) =>
        assert.ok(
          stampOf(answer) < onAt || s !== "open" || Date.now() >= opensAt,
          "the journey was offered before journeyOpensAt",
        ),
    );
    assert.ok(["waiting", "open"].includes(state), `re-enabled, the page shows ${state}`);
    if (state === "waiting") {
      await page.waitForSelector("#start", { state: "visible", timeout: opensAt - Date.now() + 10_000 });
    }
    console.log(`step 5: the journey reopened ${secondsSince(onAt)} s after T (the page saw it ${state})`);

    // A server still catching up (reason "behind") is a wait, not a switch-off: the page says so,
    // with the Retry-After, and offers the retry once it has passed. (Faked once here: the fleet
    // catches up at once from journeyOpensAt on, so the real gate rarely answers it.)
    await page.route((url) => url.pathname === "/feature-x/submissions", (route) =>
      route.fulfill({
        status: 503,
        headers: { "content-type": "application/problem+json", "retry-after": "2" },
        body: JSON.stringify({
          type: "urn:lockstep:problem:feature-disabled",
          title: "Feature Disabled",
          status: 503,
          detail: "This server has not caught up with the flag isFeatureXEnabled yet.",
          flag: FLAG,
          reason: "behind",
        }),
      }),
      { times: 1 },
    );
    await page.click("#start");
    await page.waitForSelector("#problem", { state: "visible" });
    assert.match(await page.textContent("#problem-title"), /catching up/);
    assert.match(await page.textContent("#problem-facts"), /HTTP 503 · reason: behind .* · Retry-After: 2 seconds/);
    assert.equal(await page.isDisabled("#retry"), true, "no retry before Retry-After");
    assert.match(await page.textContent("#retry"), /in \d+ seconds?/);
    await page.screenshot({ path: path.join(OUT, "step5-behind.png") });
    await page.waitForSelector("#retry:enabled", { timeout: 5000 });
    await page.click("#retry");
    await page.waitForSelector("#journey", { state: "visible" });
    await page.waitForFunction(() => !/Looking up/.test(document.getElementById("history").textContent));
    await page.fill("#quantity", "2");

    // The kill switch: a switch-off without drain.
    const off = await api(base, "POST", "/local/deployments", { flags: { [FLAG]: false }, strategy: STRATEGY });
    assert.equal(off.status, 201);
    const offAt = Date.parse(off.body.flags[FLAG].lastModifiedTimestamp);
    assert.equal(off.body.flags[FLAG].drainEndsAt, undefined, "no drain: a kill switch");
    await convergeFeatureX(base, offAt, offAt + (DELTA + P + EPSILON + 10) * 1000);

    featureX.length = 0;
    await page.click("#submit");
    await page.waitForSelector("#problem", { state: "visible" });
    console.log(`step 5: the kill switch met the journey in flight ${secondsSince(offAt)} s after it`);
    const refused = featureX.filter((r) => r.page === "kill");
    assert.deepEqual(
      refused.map((r) => [r.method, r.status, r.contentType]),
      [["POST", 503, "application/problem+json"]],
    );
    const problem = await refused[0].body;
    assert.equal(problem.reason, "disabled");
    assert.equal(problem.flag, FLAG);
    assert.match(await page.textContent("#problem-title"), /switched off/);
    assert.match(await page.textContent("#problem-text"), /Nothing was saved/);
    assert.match(await page.textContent("#problem-facts"), /HTTP 503 · reason: disabled \(.*kill switch\)/);
    assert.equal(await page.getAttribute("#problem", "data-reason"), "disabled");
    assert.equal(await page.isVisible("#retry"), false, "no retry after a kill switch");
    assert.equal(await page.isVisible("#back"), true);
    // The refusal proves a switch-off newer than the journey's configuration: the page no longer
    // offers the journey, even from a config instance that has not polled since.
    await page.waitForSelector("#app[data-availability='closed']");
    await page.screenshot({ path: path.join(OUT, "step5-kill-switch-503.png") });
    await page.click("#back");
    await page.waitForSelector("#app[data-view='home'][data-availability='closed']");
    assert.equal(await page.isVisible("#start"), false);
    assert.deepEqual(pageErrors, [], "no page error anywhere");
  });
});
