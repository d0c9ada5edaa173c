// Journey X on the standard OpenFeature web SDK (web/openfeature.html: `@openfeature/web-sdk` and
// `@openfeature/ofrep-web-provider`, vendored in web/vendor/) in a real browser: Debian's chromium
// driven by playwright-core against the local runner in fleet mode (4 instances per function,
// P = 30 s, ε = 5 s), over OFREP, with sign-in:
//
//   1. with the flag disabled, the page is closed; the SDK module loads from the runner under its
//      CSP; the page signs in; the provider revalidates with If-None-Match and takes a 304;
//   2. deploy isFeatureXEnabled=true (AllAtOnce, Δ = 0): a page (re)loaded while instances pick
//      the deployment up never offers the journey before journeyOpensAt (T + Δ + Q + ε = T + 20 s),
//      says when it opens, and opens by itself then, before consistentAt (T + Δ + P + ε = T + 35 s):
//      the provider's requests carry the journey token, so the journey-safe value follows rule 8;
//   3. journeys complete with 0 × 503 on several instances, every feature call carrying the bearer
//      token and a fresh journey token naming the enabled value, and no user named in a request;
//   4. a page loaded before the deployment and never reloaded opens by itself on the provider's
//      polling, never before journeyOpensAt.
//
// P is 30 s, not the 45 s of journey.test.mjs: consistentAt (T + 35 s) stays 15 s after
// journeyOpensAt (T + 20 s), so the two rules are told apart, and the staggered cold starts are
// over 11 s sooner. Run by ./scripts/test after `cargo build -p lockstep-local`; it fails, never
// skips, when chromium, the runner binary, Java or DynamoDB Local is missing. Screenshots and the
// runner's log go to target/browser/ (openfeature-*).
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { OUT, api, availability, claims, fleetRunner, secondsSince, sleep } from "./support.mjs";

const P = 30; // seconds, the poll interval
const Q = 15; // seconds, the catch-up interval (rule 8)
const EPSILON = 5; // seconds, ε
const DELTA = 0; // seconds, the duration of lockstep-all-at-once
const STRATEGY = "lockstep-all-at-once";
const INSTANCES = 4;
const POLL = 15; // seconds, the page's OFREP poll interval (web/openfeature.js)
const JOURNEYS = 10;
const FLAG = "isFeatureXEnabled";
const BULK = "/ofrep/v1/evaluate/flags";
const SINGLE = `${BULK}/${FLAG}`;


// Every change of #app's data-availability, with the browser's clock, kept in the page (an
// init script: playwright injects it, so the page's CSP does not apply to it).
function recordAvailability() {
  window.__availability = [];
  const attach = () => {
    const app = document.getElementById("app");
    if (!app || window.__observing) return;
    window.__observing = true;
    const note = () => window.__availability.push({ state: app.dataset.availability, at: Date.now() });
    note();
    new MutationObserver(note).observe(app, { attributes: true, attributeFilter: ["data-availability"] });
  };
  document.addEventListener("readystatechange", attach);
  document.addEventListener("DOMContentLoaded", attach);
}

test("journey X on the OpenFeature web SDK over OFREP opens at the journey-safe moment, in a real browser", { timeout: 240_000 }, async (t) => {
  const fleetRun = fleetRunner(t, {
    label: "openfeature browser test",
    logFile: "openfeature-runner.log",
    instances: INSTANCES,
    pollSeconds: P,
    epsilonSeconds: EPSILON,
  });
  const { started } = fleetRun;
  const base = await fleetRun.ready;
  const runnerReady = Date.now();
  const browser = await fleetRun.launch();
  const context = await browser.newContext({ timezoneId: "UTC", locale: "en-GB", viewport: { width: 900, height: 760 } });
  await context.addInitScript(recordAvailability);

  const pageErrors = [];
  const cspViolations = [];
  const offOrigin = [];
  const ofrep = []; // { page, kind, status, ifNoneMatch, etag, token, at, body (a promise) }
  const featureX = []; // { page, method, url, status, instance, token, authorization, postData, body }
  const assets = []; // { url, status }
  const watch = (page, name) => {
    page.on("pageerror", (error) => pageErrors.push(`${name}: ${error.message}`));
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(`${name}: ${message.text()}`);
    });
    page.on("request", (request) => {
      if (!request.url().startsWith(base + "/") && !request.url().startsWith("data:")) offOrigin.push(request.url());
    });
    page.on("response", (response) => {
      const request = response.request();
      const url = new URL(response.url());
      const headers = request.headers();
      if (url.pathname === BULK || url.pathname === SINGLE) {
        ofrep.push({
          page: name,
          kind: url.pathname === BULK ? "bulk" : "single",
          status: response.status(),
          ifNoneMatch: headers["if-none-match"] ?? null,
          etag: response.headers()["etag"] ?? null,
          token: headers["lockstep-journey"] ?? null,
          instance: response.headers()["x-lockstep-instance"],
          at: Date.now(),
          body: response.status() === 200 ? response.json().catch(() => null) : Promise.resolve(null),
        });
      } else if (url.pathname.startsWith("/feature-x/")) {
        featureX.push({
          page: name,
          method: request.method(),
          url: url.pathname + url.search,
          status: response.status(),
          instance: response.headers()["x-lockstep-instance"],
          token: headers["lockstep-journey"] ?? null,
          authorization: headers["authorization"] ?? null,
          postData: request.postData(),
          body: response.json().catch(() => null),
        });
      } else {
        assets.push({ page: name, url: url.pathname, status: response.status() });
      }
    });
  };
  const bulkOf = (name) => ofrep.filter((r) => r.page === name && r.kind === "bulk");
  const transitions = (page) => page.evaluate(() => window.__availability);

  // The tab that stays open, never reloaded, from before the deployment on.
  const idle = await context.newPage();
  watch(idle, "idle");
  let user;

  await t.test("1. disabled: closed; the SDK loads under the CSP; signed in; If-None-Match answered 304", async () => {
    const response = await idle.goto(base + "/openfeature.html");
    assert.match(response.headers()["content-security-policy"], /default-src 'self'/);
    assert.equal(await availability(idle), "closed");
    assert.equal(await idle.isVisible("#start"), false, "no Start button");
    assert.match(await idle.textContent("#status-text"), /not available/);
    const vendor = assets.find((a) => a.url === "/vendor/openfeature.js");
    assert.equal(vendor && vendor.status, 200, "the vendored SDK module came from the runner");
    await idle.waitForSelector("#app[data-signed-in='bearer']");
    user = await idle.inputValue("#user");
    assert.match(await idle.textContent("#session-text"), new RegExp(`Signed in as ${user}`));
    const [first] = bulkOf("idle");
    assert.equal(first.status, 200);
    assert.equal(first.ifNoneMatch, null, "the first evaluation is unconditional");
    assert.equal(first.token, null, "no journey token before the first answer");
    const answer = (await first.body).flags.find((f) => f.key === FLAG);
    assert.equal(answer.value, false);
    assert.equal(answer.metadata.rawValue, false);
    assert.equal(answer.reason, "CACHED");

    // The tab becoming visible again is one of the provider's three triggers (with its poll and
    // a context change): it re-asks with the last ETag, and an unchanged answer is a 304.
    const wire = () => bulkOf("idle").map((r) => `${r.status} ${r.etag} (If-None-Match ${r.ifNoneMatch})`);
    for (let tries = 0; !bulkOf("idle").some((r) => r.status === 304); tries++) {
      assert.ok(tries < 4, `no 304:\n${wire().join("\n")}`);
      const seen = bulkOf("idle").length;
      const deadline = Date.now() + 5000;
      await idle.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
      while (bulkOf("idle").length === seen && Date.now() < deadline) await sleep(50);
    }
    const requests = bulkOf("idle");
    const revalidated = requests.find((r) => r.status === 304);
    assert.ok(revalidated.ifNoneMatch, "a 304 answers an If-None-Match");
    const earlier = requests.filter((r) => r.at < revalidated.at && r.status === 200).at(-1);
    assert.equal(revalidated.ifNoneMatch, earlier.etag, "If-None-Match names the last 200's ETag");
    assert.ok(revalidated.token && claims(revalidated.token), "later requests carry the journey token");
    assert.equal(await idle.getAttribute("#app", "data-availability"), "closed", "a 304 changes nothing");
    assert.match(await idle.textContent("#meta"), /[1-9] × 304/);

    // Signing in as another user is a new evaluation context (targetingKey): the provider drops
    // its ETag and evaluates unconditionally.
    const before = bulkOf("idle").length;
    user = "openfeature-user";
    await idle.fill("#user", user);
    await idle.click("#sign-in-button");
    await idle.waitForSelector(`#session-text:has-text('Signed in as ${user}')`);
    while (bulkOf("idle").length === before) await sleep(50);
    const renewed = bulkOf("idle")[before];
    assert.equal(renewed.status, 200);
    assert.equal(renewed.ifNoneMatch, null, "a new targetingKey starts without If-None-Match");
    assert.equal(await availability(idle), "closed");
    await idle.screenshot({ path: path.join(OUT, "openfeature-step1-closed.png") });
  });

  let enabledAt;
  let journeyOpensAt;
  let consistentAt;
  const spa = await context.newPage();
  watch(spa, "spa");
  await t.test("2. deployed true: not open before journeyOpensAt, says when, opens by itself then, before consistentAt", async () => {
    // Every instance started (cold starts staggered over P), so each picks the deployment up at
    // its own poll: some still serve the old version at journeyOpensAt.
    const deadline = Date.now() + (P + 15) * 1000;
    for (;;) {
      const fleet = (await api(base, "GET", "/local/fleet")).body;
      const states = fleet.functions.flatMap((f) => f.instances.map((i) => i.state));
      if (states.length === 2 * INSTANCES && states.every((s) => s === "warm")) break;
      assert.ok(Date.now() < deadline, `instances still starting: ${states}`);
      await sleep(250);
    }
    const deployment = await api(base, "POST", "/local/deployments", { flags: { [FLAG]: true }, strategy: STRATEGY });
    assert.equal(deployment.status, 201, JSON.stringify(deployment.body));
    const flag = deployment.body.flags[FLAG];
    enabledAt = Date.parse(flag.lastModifiedTimestamp);
    journeyOpensAt = Date.parse(flag.journeyOpensAt);
    consistentAt = Date.parse(flag.consistentAt);
    assert.equal(journeyOpensAt, enabledAt + (DELTA + Q + EPSILON) * 1000);
    assert.equal(consistentAt, enabledAt + (DELTA + P + EPSILON) * 1000);

    // A user arriving (or reloading) while the instances pick the deployment up, until the page
    // says when the journey opens; it never offers it before journeyOpensAt.
    await spa.bringToFront();
    for (;;) {
      await spa.goto(base + "/openfeature.html");
      const state = await availability(spa);
      assert.notEqual(state, "open", "the journey was offered before journeyOpensAt");
      if (state === "closed") {
        // (An instance that has not polled since the deployment: ask again.)
        assert.ok(Date.now() < journeyOpensAt - 1500, "the page never said the journey opens");
        await sleep(500);
        continue;
      }
      assert.equal(state, "waiting");
      // The first answer came by consistentAt (no token yet): the page asks again with the token,
      // and the time it shows becomes journeyOpensAt.
      await spa.waitForFunction(
        (at) => Date.parse(document.getElementById("opens-at").dateTime) === at,
        journeyOpensAt,
        { timeout: Math.max(1000, journeyOpensAt - Date.now() - 500) },
      );
      break;
    }
    console.log(`step 2: the page says when the journey opens ${secondsSince(enabledAt)} s after T`);
    assert.ok(Date.now() < journeyOpensAt, "still before journeyOpensAt");
    assert.equal(await spa.isVisible("#start"), false, "no Start button while waiting");
    assert.match(await spa.textContent("#opens-in"), /\(in \d+ seconds?\)/);
    const waitingAnswer = (await Promise.all(bulkOf("spa").map((r) => r.body))).filter(Boolean).at(-1);
    const meta = waitingAnswer.flags.find((f) => f.key === FLAG).metadata;
    assert.equal(meta.openRule, "journeyOpensAt", "the page's request carried its journey token");
    assert.equal(Date.parse(meta.opensAt), journeyOpensAt);
    await spa.screenshot({ path: path.join(OUT, "openfeature-step2-waiting.png") });

    // No reload: the page asks the provider to evaluate again at opensAt.
    await spa.waitForSelector("#start", { state: "visible", timeout: journeyOpensAt - Date.now() + 10_000 });
    const seen = await transitions(spa);
    const opened = seen.find((s) => s.state === "open");
    const openSeconds = (opened.at - enabledAt) / 1000;
    console.log(
      `step 2: the journey opened ${openSeconds.toFixed(1)} s after T ` +
        `(journeyOpensAt T + ${DELTA + Q + EPSILON} s, consistentAt T + ${DELTA + P + EPSILON} s)`,
    );
    assert.ok(opened.at >= journeyOpensAt, `opened ${journeyOpensAt - opened.at} ms before journeyOpensAt`);
    assert.ok(opened.at < journeyOpensAt + 5000, `opened ${openSeconds} s after T: not at journeyOpensAt`);
    assert.ok(opened.at < consistentAt, "opened only at consistentAt");
    const openedBy = ofrep.filter((r) => r.page === "spa" && r.at <= opened.at + 50).at(-1);
    assert.equal(openedBy.status, 200, "a fresh answer opened it");
    assert.equal((await openedBy.body).flags.find((f) => f.key === FLAG).value, true);
    await spa.screenshot({ path: path.join(OUT, "openfeature-step2-open.png") });
  });

  await t.test(`3. ${JOURNEYS} journeys: 0 × 503, bearer and fresh journey tokens on every call, no user named`, async () => {
    featureX.length = 0;
    const ids = [];
    const starts = [];
    for (let i = 0; i < JOURNEYS; i++) {
      const from = featureX.length;
      starts.push({ at: Date.now(), from });
      await spa.click("#start");
      await spa.waitForSelector("#journey", { state: "visible" });
      await spa.waitForFunction(() => !/Looking up/.test(document.getElementById("history").textContent));
      await spa.selectOption("#plan", i % 2 ? "premium" : "basic");
      await spa.fill("#quantity", String((i % 10) + 1));
      await spa.click("#submit");
      await spa.waitForSelector("#confirmation:visible, #problem:visible");
      assert.equal(await spa.isVisible("#confirmation"), true, `journey ${i + 1}: ${await spa.textContent("#problem")}`);
      await spa.waitForSelector("#confirmation-note:has-text('read back from')");
      ids.push(await spa.textContent("#confirmation-id"));
      if (i === JOURNEYS - 1) await spa.screenshot({ path: path.join(OUT, "openfeature-step3-confirmation.png") });
      await spa.click("#done");
      await spa.waitForSelector("#start", { state: "visible" });
    }
    const statuses = featureX.map((r) => r.status);
    const instances = new Set(featureX.map((r) => r.instance));
    console.log(
      `step 3: ${JOURNEYS} journeys by T + ${secondsSince(enabledAt)} s, ${featureX.length} feature-x calls, ` +
        `503s: ${statuses.filter((s) => s === 503).length}, instances: ${[...instances].sort().join(" ")}`,
    );
    assert.equal(statuses.filter((s) => s === 503).length, 0, "no 503");
    assert.ok(statuses.every((s) => s === 200 || s === 201), `statuses ${statuses}`);
    assert.equal(featureX.filter((r) => r.status === 201).length, JOURNEYS, "one stored submission per journey");
    assert.ok(instances.size >= 3, `only ${instances.size} feature-x instances served the journeys`);
    for (const r of featureX) {
      assert.match(r.authorization || "", /^Bearer \S+$/, `${r.method} ${r.url} without a bearer token`);
      assert.doesNotMatch(r.url, /userId=/, "the user comes from the token, not the query");
      if (r.postData) assert.equal(JSON.parse(r.postData).userId, undefined, "nor from the body");
      assert.ok(r.token, `${r.method} ${r.url} without a journey token`);
      assert.deepEqual(claims(r.token).f[FLAG], { v: true, t: enabledAt }, "the token names the enabled value and its T");
    }
    // Each journey opened with a fresh evaluation of the flag, and carried that answer's token on
    // all its calls: issued as the journey started, not when the provider's answer last changed.
    const singles = ofrep.filter((r) => r.page === "spa" && r.kind === "single");
    assert.equal(singles.length, JOURNEYS, "one single-flag evaluation per journey");
    assert.ok(singles.every((r) => r.status === 200), `single-flag statuses ${singles.map((r) => r.status)}`);
    starts.forEach((s, i) => {
      const calls = featureX.slice(s.from, starts[i + 1]?.from ?? featureX.length);
      assert.equal(calls.length, 3, `journey ${i + 1}: history, submit, read-back`);
      assert.equal(new Set(calls.map((c) => c.token)).size, 1, `journey ${i + 1} kept one token`);
      // A token says the start of the second it was issued in (journey::ISSUE_RESOLUTION_MS).
      const issued = claims(calls[0].token).i;
      assert.ok(issued >= s.at - 1_100 && issued <= Date.now(), `journey ${i + 1}: its token was issued ${s.at - issued} ms before it started`);
    });
    // What the server stored for this user, read with the user's own bearer token.
    const signIn = await api(base, "POST", "/local/auth/sign-in", { user });
    assert.equal(signIn.status, 200);
    const stored = await api(base, "GET", "/feature-x/submissions?limit=100", undefined, {
      authorization: `Bearer ${signIn.body.accessToken}`,
    });
    assert.equal(stored.status, 200);
    assert.deepEqual(stored.body.items.map((s) => s.id).sort(), [...ids].sort(), "the server stored exactly these, for this user");
  });

  await t.test("4. the page loaded before the deployment, never reloaded, opens by itself on its polling", async () => {
    await idle.bringToFront();
    await idle.waitForSelector("#start", { state: "visible", timeout: Math.max(0, consistentAt - Date.now()) + (POLL + 5) * 1000 });
    const seen = await transitions(idle);
    const opened = seen.find((s) => s.state === "open");
    console.log(`step 4: the tab loaded before the deployment opened ${secondsSince(enabledAt, opened.at)} s after T`);
    assert.ok(opened.at >= journeyOpensAt, `the idle tab opened ${journeyOpensAt - opened.at} ms before journeyOpensAt`);
    await idle.screenshot({ path: path.join(OUT, "openfeature-step4-idle-open.png") });

    // The provider's protocol, as seen on the wire.
    for (const name of ["idle", "spa"]) {
      const requests = bulkOf(name);
      const byStatus = requests.reduce((n, r) => ({ ...n, [r.status]: (n[r.status] || 0) + 1 }), {});
      console.log(`${name}: ${requests.length} bulk evaluations ${JSON.stringify(byStatus)}`);
      assert.ok(requests.every((r) => [200, 304, 429].includes(r.status)), `${name}: ${JSON.stringify(byStatus)}`);
    }
    for (const r of ofrep) {
      if (r.ifNoneMatch) {
        assert.ok(
          ofrep.some((e) => e.page === r.page && e.etag === r.ifNoneMatch && e.status === 200 && e.at <= r.at),
          `If-None-Match ${r.ifNoneMatch} names no ETag the page received`,
        );
      }
    }
    for (const page of [idle, spa]) {
      const states = (await transitions(page)).map((s) => s.state);
      assert.ok(!states.includes("unreachable"), `a page could not reach OFREP: ${states}`);
    }
    // cacheMode "disabled": the provider's default keeps every answer in localStorage for 30 days
    // and serves it first on the next load.
    const stored = await spa.evaluate(() => Object.keys(localStorage));
    assert.deepEqual(stored.filter((k) => k.startsWith("ofrep-web-provider")), [], "the provider persisted answers");
    assert.deepEqual(pageErrors, [], "no page error");
    assert.deepEqual(cspViolations, [], "no Content-Security-Policy violation");
    assert.deepEqual(offOrigin, [], "nothing fetched from another origin");
    console.log(`the runner listened after ${secondsSince(started, runnerReady)} s`);
  });
});
