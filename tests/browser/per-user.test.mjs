// Per-user consistency in a real browser (design rule 10; docs/consistency.md, "Per-user
// consistency"): journey X defined by a split, two users signed in on their own pages, A inside
// the 25 % and B outside (computed here by MurmurHash3, buckets.mjs, not asked of the server).
//
// 1. The 25 % split: A's journey opens at the split's consistentAt; B's page stays closed.
// 2. A starts a journey, and while it is in flight the split widens to 100 % (the same
//    definition, weights 10000/0 in the same order). A's /config/me stays consistent with its
//    old consistentAt on every instance; B's says true but not consistent, with the widening's
//    journeyOpensAt (T + Δ + Q + ε), until then; the probe (POST /local/probe) says the same per
//    instance, and the fleet view lists the steps. B's page opens by itself at that moment, never
//    before; A's page never pauses, never shows a 503, and A's journey submits with the token it
//    opened with (signed, bound to A, claiming journey X on).
// 3. B starts a journey, and while it is in flight the split narrows back to 25 % with a drain
//    time (B is dropped). Once every instance holds the narrowing, B's journey still submits:
//    the gate drains for B's token (logged as gate_open_draining). A fresh page for B shows
//    journey X closed, and a direct call with B's bearer and no token gets 503 (A's still 201).
// 4. A scheduled change: the 25 % split until an instant 45 s after the deployment. A's value is
//    on but changes before a journey could end (changesAt within the SPA's JOURNEY_MS): A's page
//    offers no journey, says it is about to change ("closing"), and looks again just after
//    changesAt, when it shows journey X closed.
//
// Run by ./scripts/test after `cargo build -p lockstep-local`; fails loudly, never skips.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import path from "node:path";
import { bucketIndex, checkAgainstTestbed } from "./buckets.mjs";
import { OUT, api, availability, bearer, claims, fleetRunner, signIn, sleep } from "./support.mjs";

const P = 15; // seconds: the poll interval (the smallest the catch-up interval Q allows)
const Q = 15; // the catch-up interval
const EPSILON = 2;
const DELTA = 0; // the default strategy, all at once
const INSTANCES = 2;
const DRAIN = 90; // seconds: the narrowing's drain time
const SCHEDULE = 45; // seconds from the scheduled deployment to the end of its date-time range
const FLAG = "isFeatureXEnabled";
const QUARTER = 2500; // of 10,000
const JOURNEY_HEADER = "lockstep-journey";

const inQuarter = (user) => bucketIndex(FLAG + user, [QUARTER, 10_000 - QUARTER]) === 0;
const ms = (iso) => {
  const at = Date.parse(iso ?? "");
  assert.ok(Number.isFinite(at), `not a time: ${iso}`);
  return at;
};

// The reference a journey token bound to `user` names them by (journey/codec.rs).
const subject = (user) => createHash("sha256").update(`lockstep subject:${user}`).digest().subarray(0, 8).toString("hex");
// Asserts `token` is signed, bound to `user` and claims journey X on for them.
function boundTo(token, user) {
  const c = claims(token);
  assert.deepEqual([c.signed, c.s, c.f[FLAG]?.v], [true, subject(user), true], `${user}'s journey token`);
}

const splitRule = (weight) => ({
  split: [
    { variant: "in", value: true, weight },
    { variant: "out", value: false, weight: 10_000 - weight },
  ],
});
const split = (weight) => ({ [FLAG]: { default: false, rules: { rollout: splitRule(weight) } }, useSubmissionsGsi: false });

// Records, in every page of a context, each change of what the page shows (its availability,
// its view, whether a problem is shown) with the browser's clock (the runner's: same machine).
function recordStates() {
  window.__states = [];
  document.addEventListener("DOMContentLoaded", () => {
    const app = document.getElementById("app");
    const note = () =>
      window.__states.push({
        at: Date.now(),
        availability: app.dataset.availability,
        view: app.dataset.view,
        problem: !document.getElementById("problem").hidden,
      });
    new MutationObserver(note).observe(app, {
      attributes: true,
      subtree: true,
      attributeFilter: ["data-availability", "data-view", "hidden"],
    });
    note();
  });
}

test("per-user consistency: a widening keeps the users in, newly included users wait, a narrowing drains, a schedule closes", { timeout: 300_000 }, async (t) => {
  const vectors = checkAgainstTestbed();
  const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);
  const A = users.find(inQuarter);
  const B = users.find((u) => !inQuarter(u));
  console.log(`murmur3 checked on ${vectors} flagd-testbed vectors; A (in the 25 %): ${A}, B (out): ${B}`);

  const fleetRun = fleetRunner(t, {
    label: "browser per-user test",
    logFile: "runner-per-user.log",
    instances: INSTANCES,
    pollSeconds: P,
    epsilonSeconds: EPSILON,
  });
  const base = await fleetRun.ready;
  const logged = (p) => fleetRun.lines.filter((l) => l.fields && l.fields.path === p).length;
  const bearers = new Map();
  const auth = async (user) => {
    if (!bearers.has(user)) bearers.set(user, await bearer(base, user));
    return bearers.get(user);
  };
  const me = async (user) => {
    const answer = await api(base, "GET", "/config/me", undefined, await auth(user));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body;
  };
  // A deployment through the runner's control endpoint (`lockstep deploy --content`'s code); a
  // 409 while the previous one completes is retried for a few seconds.
  const deploy = async (content, extra = {}) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const started = await api(base, "POST", "/local/deployments", { content, ...extra });
      if (started.status === 201) {
        assert.equal(started.body.restamped, false, "no extension stamps again locally");
        return started.body;
      }
      assert.ok(started.status === 409 && Date.now() < deadline, JSON.stringify(started.body));
      await sleep(500);
    }
  };
  const until = async (at) => {
    if (at > Date.now()) await sleep(at - Date.now());
  };

  const browser = await fleetRun.launch();
  const errors = [];
  // A signed-in page of its own context: its state changes, and every feature call with the
  // journey token it carried, and every /config/me answer it received, in order.
  const open = async (user, name) => {
    const context = await browser.newContext({ timezoneId: "UTC", locale: "en-GB" });
    await context.addInitScript(recordStates);
    const p = await context.newPage();
    const calls = [];
    const configs = [];
    p.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
    p.on("response", (response) => {
      const url = new URL(response.url());
      if (url.pathname.startsWith("/feature-x/")) {
        calls.push({
          at: Date.now(),
          method: response.request().method(),
          status: response.status(),
          token: response.request().headers()[JOURNEY_HEADER],
        });
      } else if (url.pathname === "/config/me") {
        configs.push({ at: Date.now(), body: response.json().catch(() => null) });
      }
    });
    await p.goto(base + "/");
    await availability(p);
    await signIn(p, user);
    const states = () => p.evaluate(() => window.__states);
    const showing = (wanted, timeout) =>
      p.waitForFunction((w) => document.getElementById("app").dataset.availability === w, wanted, { timeout });
    // The journey token of the last /config/me answer received before `at`.
    const tokenBefore = async (at) => {
      const before = await Promise.all(configs.filter((c) => c.at <= at).map((c) => c.body));
      return before.filter(Boolean).at(-1)?.journeyToken;
    };
    return { p, calls, states, showing, tokenBefore };
  };

  // ---- 1. the 25 % split ----------------------------------------------------------------------
  const quarter = await deploy(split(QUARTER));
  const quarterConsistentAt = ms(quarter.flags[FLAG].consistentAt);
  assert.equal(quarter.flags[FLAG].perUser, true);
  let aFlag;
  for (const deadline = quarterConsistentAt + 10_000; ; ) {
    aFlag = (await me(A)).flags[FLAG];
    if (aFlag.value === true && aFlag.consistent === true) break;
    assert.ok(Date.now() < deadline, `${A}'s view: ${JSON.stringify(aFlag)}`);
    await sleep(1000);
  }
  const aConsistentAt = ms(aFlag.consistentAt);
  assert.equal(aConsistentAt, quarterConsistentAt, "A's step is the quarter");
  assert.equal((await me(B))[FLAG], false, `${B} is outside the 25 %`);

  const a = await open(A, "A");
  await a.showing("open", 20_000);
  const b = await open(B, "B");
  assert.equal(await availability(b.p), "closed", `${B} is not offered journey X`);

  // ---- 2. A's journey in flight; the split widens to 100 % -------------------------------------
  await a.p.click("#start");
  await a.p.waitForSelector("#journey", { state: "visible" });
  await a.p.fill("#quantity", "3");
  const aStarted = Date.now();
  const widened = await deploy(split(10_000));
  const w = widened.flags[FLAG];
  const widenedAt = ms(w.lastModifiedTimestamp);
  const wOpensAt = ms(w.journeyOpensAt);
  const wConsistentAt = ms(w.consistentAt);
  assert.deepEqual([w.change, w.perUser], ["changed", true]);
  assert.equal(wOpensAt, widenedAt + (DELTA + Q + EPSILON) * 1000, "journeyOpensAt = T + Δ + Q + ε");
  assert.equal(wConsistentAt, widenedAt + (DELTA + P + EPSILON) * 1000, "consistentAt = T + Δ + P + ε");
  console.log(`widened at ${new Date(widenedAt).toISOString()}; B's journey opens at ${w.journeyOpensAt}`);

  // Each user's own view, read on every instance (twice each, round robin), until every
  // instance holds the widening and a little after.
  const seen = { aReads: 0, bOld: 0, bWaiting: 0, bConsistent: 0 };
  while (Date.now() < wConsistentAt + 3000) {
    for (const _ of [1, 2]) {
      const body = await me(A);
      const f = body.flags[FLAG];
      const where = `${A} on ${body.configurationVersion} at ${body.serverTime}: ${JSON.stringify(f)}`;
      assert.deepEqual([f.value, f.consistent], [true, true], where);
      assert.equal(ms(f.consistentAt), aConsistentAt, `A keeps the quarter's consistentAt: ${where}`);
      seen.aReads += 1;
    }
    for (const _ of [1, 2]) {
      const body = await me(B);
      const f = body.flags[FLAG];
      const now = ms(body.serverTime);
      const where = `${B} on ${body.configurationVersion} at ${body.serverTime}: ${JSON.stringify(f)}`;
      if (f.value === false) {
        // Only an instance that has not polled since the widening; none after its consistentAt.
        assert.notEqual(body.configurationVersion, widened.versionLabel, where);
        assert.ok(now < wConsistentAt, `still off after consistentAt: ${where}`);
        seen.bOld += 1;
        continue;
      }
      assert.equal(body.configurationVersion, widened.versionLabel, where);
      assert.equal(ms(f.journeyOpensAt), wOpensAt, `B's journeyOpensAt is the widening's: ${where}`);
      assert.equal(ms(f.consistentAt), wConsistentAt, where);
      assert.equal(f.consistent, now >= wConsistentAt, where);
      if (f.consistent) seen.bConsistent += 1;
      else seen.bWaiting += 1;
    }
    await sleep(300);
  }
  console.log(`during the widening: ${JSON.stringify(seen)}`);
  assert.ok(seen.bWaiting > 0, "B's view never showed the widening before its consistentAt");
  assert.ok(seen.bConsistent > 0, "B's view never turned consistent");

  // The probe says the same per instance (those holding the widening; read without refreshing).
  for (const [user, consistentAt, opensAt] of [
    [A, aConsistentAt, aConsistentAt],
    [B, wConsistentAt, wOpensAt],
  ]) {
    const probe = await api(base, "POST", "/local/probe", { flag: FLAG, context: { targetingKey: user } });
    assert.equal(probe.status, 200, JSON.stringify(probe.body));
    assert.deepEqual([probe.body.deployed.value, probe.body.deployed.variant], [true, "in"]);
    const holding = probe.body.instances.filter((i) => i.configurationVersion === widened.versionLabel);
    assert.ok(holding.some((i) => i.name.startsWith("config-")), JSON.stringify(probe.body.instances));
    for (const i of holding) {
      const where = `${user} on ${i.name}: ${JSON.stringify(i)}`;
      assert.deepEqual([i.value, i.consistent, i.changesAt], [true, true, null], where);
      assert.equal(ms(i.consistentAt), consistentAt, where);
      assert.equal(ms(i.journeyOpensAt), opensAt, where);
    }
  }
  // The fleet view lists the steps: the 100 %, then the 25 % and the plain `false` it replaced.
  const fleetPage = await (await browser.newContext()).newPage();
  await fleetPage.goto(base + "/fleet");
  await fleetPage.waitForFunction(
    () => document.querySelectorAll("#deployed-flags td.steps div.previous").length === 2,
    null,
    { timeout: 5000 },
  );
  const steps = await fleetPage.$$eval("#deployed-flags td.steps div", (divs) => divs.map((d) => d.textContent));
  assert.match(steps[0], /^now: T /, steps.join("\n"));
  assert.match(steps[1], /^step −1: .* · rollout: everyone left → split in 25 % \(true\) \/ out 75 % \(false\); otherwise false$/, steps.join("\n"));
  assert.match(steps[2], /^step −2: .* · false$/, steps.join("\n"));
  await fleetPage.screenshot({ path: path.join(OUT, "per-user-fleet-steps.png"), fullPage: true });
  await fleetPage.close();

  // B's page offers the journey by itself, not before B's journeyOpensAt.
  await b.showing("open", Math.max(0, wOpensAt - Date.now()) + (P + 5) * 1000);
  await b.p.waitForSelector("#start", { state: "visible" });
  const bOpened = (await b.states()).find((s) => s.availability === "open");
  assert.ok(bOpened.at >= wOpensAt, `B's page opened ${wOpensAt - bOpened.at} ms before its journeyOpensAt`);
  console.log(`B's page opened ${((bOpened.at - wOpensAt) / 1000).toFixed(1)} s after its journeyOpensAt`);

  // A's journey, in flight all along, submits; its page never paused or showed a problem.
  await a.p.click("#submit");
  await a.p.waitForSelector("#confirmation:visible, #problem:visible");
  assert.equal(await a.p.isVisible("#confirmation"), true, await a.p.textContent("#problem"));
  await a.p.waitForSelector("#confirmation-note:has-text('read back from')");
  const aStates = (await a.states()).filter((s) => s.at >= aStarted);
  assert.deepEqual([...new Set(aStates.map((s) => s.availability))], ["open"], JSON.stringify(aStates));
  assert.ok(aStates.every((s) => !s.problem), `A's page showed a problem: ${JSON.stringify(aStates)}`);
  const aToken = await a.tokenBefore(a.calls[0].at);
  assert.equal(typeof aToken, "string");
  assert.deepEqual(a.calls.map((c) => [c.method, c.status]), [["GET", 200], ["POST", 201], ["GET", 200]]);
  for (const c of a.calls) assert.equal(c.token, aToken, "A's journey sends the token of the read that opened it");
  boundTo(aToken, A);
  await a.p.screenshot({ path: path.join(OUT, "per-user-a-submitted.png") });

  // ---- 3. B's journey in flight; the split narrows back to 25 % with a drain ---------------------
  await b.p.click("#start");
  await b.p.waitForSelector("#journey", { state: "visible" });
  await b.p.waitForSelector("#history:has-text('earlier submission')");
  await b.p.fill("#quantity", "4");
  const narrowed = await deploy(split(QUARTER), { drainSeconds: DRAIN });
  const n = narrowed.flags[FLAG];
  assert.deepEqual([n.change, n.perUser, n.drainSeconds], ["changed", true, DRAIN]);
  const nConsistentAt = ms(n.consistentAt);
  const drainEndsAt = ms(n.drainEndsAt);
  assert.equal(drainEndsAt, nConsistentAt + DRAIN * 1000, "drainEndsAt = T + Δ + P + ε + drain");
  // The fleet view's deployed flag: the drain, and the steps before it, newest first.
  const deployedFlag = (await api(base, "GET", "/local/fleet")).body.deployed.flags[FLAG];
  assert.equal(deployedFlag.drainSeconds, DRAIN);
  const kept = deployedFlag.previous.map((step) => [ms(step.lastModifiedTimestamp), step.value.rules?.rollout.split[0].weight ?? step.value]);
  assert.deepEqual(kept.slice(0, 2), [[widenedAt, 10_000], [ms(quarter.lastModifiedTimestamp), QUARTER]]);
  // (the runner's initial deployment: journey X off for everyone)
  assert.equal(kept.length, 3);
  assert.ok(kept[2][0] < ms(quarter.lastModifiedTimestamp) && kept[2][1] === false, JSON.stringify(kept));
  // Every instance holds the narrowing: B's own view is off everywhere.
  await until(nConsistentAt + 1000);
  for (const _ of [1, 2]) {
    const body = await me(B);
    assert.equal(body.configurationVersion, narrowed.versionLabel);
    assert.equal(body.flags[FLAG].value, false, `B is dropped: ${JSON.stringify(body.flags[FLAG])}`);
  }
  // B's journey submits with the token it opened with (issued under the enabled value): the
  // gate drains for it.
  const draining = logged("gate_open_draining");
  const bCallsBefore = b.calls.length;
  await b.p.click("#submit");
  await b.p.waitForSelector("#confirmation:visible, #problem:visible");
  assert.equal(await b.p.isVisible("#confirmation"), true, `B's journey in flight: ${await b.p.textContent("#problem")}`);
  await b.p.waitForSelector("#confirmation-note:has-text('read back from')");
  assert.ok(Date.now() < drainEndsAt, "submitted within the drain");
  const bToken = await b.tokenBefore(b.calls[0].at);
  assert.deepEqual(b.calls.slice(bCallsBefore).map((c) => [c.method, c.status]), [["POST", 201], ["GET", 200]]);
  for (const c of b.calls) assert.equal(c.token, bToken, "B's journey sends the token of the read that opened it");
  boundTo(bToken, B);
  const deadline = Date.now() + 2000;
  while (logged("gate_open_draining") - draining < 2 && Date.now() < deadline) await sleep(50);
  assert.equal(logged("gate_open_draining") - draining, 2, "B's submit and read-back went through the drain");
  await b.p.screenshot({ path: path.join(OUT, "per-user-b-drained.png") });

  // A fresh page for B: closed. B's bearer without a token: 503; A is still in.
  const fresh = await open(B, "B fresh");
  assert.equal(await availability(fresh.p), "closed");
  await sleep(1000);
  assert.equal(await fresh.p.getAttribute("#app", "data-availability"), "closed");
  assert.equal(await fresh.p.isVisible("#start"), false, "no journey for B after the narrowing");
  await fresh.p.screenshot({ path: path.join(OUT, "per-user-b-fresh-closed.png") });
  const submission = (id) => ({ journeyId: id, plan: "basic", quantity: 1 });
  const refused = await api(base, "POST", "/feature-x/submissions", submission("direct-b"), await auth(B));
  assert.equal(refused.status, 503, JSON.stringify(refused.body));
  assert.equal(refused.body.reason, "disabled", JSON.stringify(refused.body));
  const accepted = await api(base, "POST", "/feature-x/submissions", submission("direct-a"), await auth(A));
  assert.equal(accepted.status, 201, `A is untouched by the narrowing: ${JSON.stringify(accepted.body)}`);

  // ---- 4. a scheduled change: A's value ends SCHEDULE s after the deployment -------------------
  const utc = (at) => new Date(at).toISOString().slice(0, 19); // a wall-clock date-time in UTC
  const endAt = Math.ceil((Date.now() + SCHEDULE * 1000) / 1000) * 1000;
  const scheduled = await deploy({
    [FLAG]: {
      default: false,
      rules: {
        "quarter until the end": {
          conditions: [
            {
              action: "SCHEDULE_BETWEEN_DATETIME_RANGE",
              key: "CURRENT_DATETIME",
              value: { START: utc(Date.now() - 3_600_000), END: utc(endAt) },
            },
          ],
          ...splitRule(QUARTER),
        },
      },
    },
    useSubmissionsGsi: false,
  });
  await until(ms(scheduled.flags[FLAG].consistentAt) + 1000);
  const changesAt = endAt + 1; // the range includes its end, to the millisecond
  for (const _ of [1, 2]) {
    const f = (await me(A)).flags[FLAG];
    assert.equal(f.value, true, JSON.stringify(f));
    assert.equal(ms(f.changesAt), changesAt, `A's value changes at the range's end: ${JSON.stringify(f)}`);
  }
  assert.ok(changesAt - Date.now() < 60_000, "the change is within a journey's length");
  // Back to the start page: no journey is offered, the page says it is about to change.
  await a.p.click("#done");
  await a.showing("closing", 5000);
  assert.equal(await a.p.isVisible("#start"), false, "no journey offered just before a change");
  assert.match(await a.p.textContent("#status-text"), /about to change/);
  await a.p.screenshot({ path: path.join(OUT, "per-user-a-closing.png") });
  // One look just after changesAt: closed.
  await a.showing("closed", Math.max(0, changesAt - Date.now()) + 5000);
  const closed = (await a.states()).filter((s) => s.availability === "closed").at(-1);
  assert.ok(closed.at >= changesAt, "closed before changesAt");
  assert.ok(closed.at < changesAt + 3000, `closed ${closed.at - changesAt} ms after changesAt: one look just after it`);
  console.log(`A's page closed ${((closed.at - changesAt) / 1000).toFixed(1)} s after changesAt`);

  assert.deepEqual(errors, [], "no page errors");
});
