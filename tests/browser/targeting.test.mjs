// Targeting in a real browser (design rule 10): journey X defined by a 25 % split, deployed
// through the runner's control endpoint as a whole document (`lockstep deploy --content`'s
// code), and two users signed in on two pages, one on each side of the split. Each page reads
// GET /config/me (its user's own evaluation, behind the local authorizer); the user in the 25 %
// is offered journey X and completes it through the gate, the other is not offered it and the
// gate refuses a direct call with 503. Which side each user is on is computed here, by a
// MurmurHash3 (buckets.mjs) checked against flagd-testbed's published vectors
// (shared/targeting/tests/fixtures/flagd-fractional-v2.json), not by asking the server.
//
// Run by ./scripts/test after `cargo build -p lockstep-local`; fails loudly, never skips.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { bucketIndex, checkAgainstTestbed } from "./buckets.mjs";
import { OUT, api, availability, bearer, fleetRunner, signIn, sleep } from "./support.mjs";

const P = 15; // seconds: the poll interval (the smallest the catch-up interval Q allows)
const EPSILON = 2;
const INSTANCES = 2;
const FLAG = "isFeatureXEnabled";
const IN_WEIGHT = 2500; // of 10,000: 25 %

const inRollout = (user) => bucketIndex(FLAG + user, [IN_WEIGHT, 10_000 - IN_WEIGHT]) === 0;

test("two signed-in users on either side of a 25 % split: one offered journey X, one not", { timeout: 240_000 }, async (t) => {
  const vectors = checkAgainstTestbed();
  const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);
  const inside = users.find(inRollout);
  const outside = users.find((u) => !inRollout(u));
  const share = users.filter(inRollout).length / users.length;
  assert.ok(share > 0.15 && share < 0.35, `25 % split puts ${share * 100} % of 200 users in`);
  console.log(`murmur3 checked on ${vectors} flagd-testbed vectors; in: ${inside}, out: ${outside}`);

  const fleetRun = fleetRunner(t, {
    label: "browser targeting test",
    logFile: "runner-targeting.log",
    instances: INSTANCES,
    pollSeconds: P,
    epsilonSeconds: EPSILON,
  });
  const base = await fleetRun.ready;

  // The split, deployed as a whole document through `lockstep deploy --content`'s code.
  const content = {
    [FLAG]: {
      default: false,
      rules: {
        "a quarter": {
          split: [
            { variant: "in", value: true, weight: IN_WEIGHT },
            { variant: "out", value: false, weight: 10_000 - IN_WEIGHT },
          ],
        },
      },
    },
    useSubmissionsGsi: false,
  };
  const refused = await api(base, "POST", "/local/deployments", {
    content: { ...content, [FLAG]: { default: false, rules: { bad: { when_match: true, conditions: [{ action: "NOPE", key: "k", value: 1 }] } } } },
  });
  assert.equal(refused.status, 400, "an invalid definition is refused before anything is deployed");
  assert.match(refused.body.detail, /flag "isFeatureXEnabled", rule "bad"/);
  const deployed = await api(base, "POST", "/local/deployments", { content });
  assert.equal(deployed.status, 201, JSON.stringify(deployed.body));

  // Every instance holds it at consistentAt (= journeyOpensAt for a flag defined by rules).
  const mine = async (user) => (await api(base, "GET", "/config/me", undefined, await bearer(base, user))).body;
  const deadline = Date.now() + (P + 30) * 1000;
  let inView;
  for (;;) {
    inView = await mine(inside);
    const flag = inView.flags[FLAG];
    if (flag.value === true && flag.consistent === true) break;
    assert.ok(Date.now() < deadline, `${inside}'s view: ${JSON.stringify(flag)}`);
    await sleep(1000);
  }
  assert.equal(inView.flags[FLAG].journeyOpensAt, inView.flags[FLAG].consistentAt);
  const outView = await mine(outside);
  assert.equal(outView[FLAG], false, `${outside} is outside the split`);
  assert.equal((await api(base, "GET", "/config")).body[FLAG], false, "anonymous: no bucket");
  assert.equal((await api(base, "GET", "/config/me")).status, 401, "/config/me needs a verified caller");

  const browser = await fleetRun.launch();
  const page = async (user) => {
    const context = await browser.newContext({ timezoneId: "UTC", locale: "en-GB" });
    const p = await context.newPage();
    const errors = [];
    p.on("pageerror", (e) => errors.push(e.message));
    await p.goto(base + "/");
    await availability(p);
    await signIn(p, user);
    return { p, errors };
  };

  const a = await page(inside);
  await a.p.waitForFunction(() => document.getElementById("app").dataset.availability === "open", null, { timeout: 20_000 });
  await a.p.waitForSelector("#start", { state: "visible" });
  await a.p.click("#start");
  await a.p.waitForSelector("#journey", { state: "visible" });
  await a.p.fill("#quantity", "2");
  await a.p.click("#submit");
  await a.p.waitForSelector("#confirmation:visible, #problem:visible");
  assert.equal(await a.p.isVisible("#confirmation"), true, await a.p.textContent("#problem"));
  await a.p.screenshot({ path: path.join(OUT, "targeting-inside.png") });

  const b = await page(outside);
  // Its own evaluation says no: the page settles on "closed" and offers no journey.
  await sleep(1500);
  assert.equal(await b.p.getAttribute("#app", "data-availability"), "closed");
  assert.equal(await b.p.isVisible("#start"), false, `${outside} is not offered journey X`);
  await b.p.screenshot({ path: path.join(OUT, "targeting-outside.png") });
  // And the gate agrees for a direct call with that user's verified identity.
  const direct = await api(base, "POST", "/feature-x/submissions", { journeyId: "direct-call", plan: "basic", quantity: 1 }, await bearer(base, outside));
  assert.equal(direct.status, 503, JSON.stringify(direct.body));
  assert.deepEqual([...a.errors, ...b.errors], [], "no page errors");

  // The fleet view lists the split and probes each user, deployed and on every instance.
  const fleetPage = await (await browser.newContext()).newPage();
  await fleetPage.goto(base + "/fleet");
  await fleetPage.waitForSelector("#deployed-flags td.rules div");
  const rules = await fleetPage.textContent("#deployed-flags");
  assert.match(rules, /a quarter: everyone left → split in 25 % \(true\) \/ out 75 % \(false\)/);
  // Its steps: the split's own stamp, then the plain `false` it replaced, kept with its stamp.
  const steps = await fleetPage.textContent("#deployed-flags td.steps");
  assert.match(steps, /^now: T \d\d:\d\d:\d\d · Δ 0 s · consistentAt \d\d:\d\d:\d\d/, steps);
  assert.match(steps, /step −1: T \d\d:\d\d:\d\d · Δ 0 s · consistentAt \d\d:\d\d:\d\d · false$/, steps);
  for (const [user, expected] of [[inside, true], [outside, false]]) {
    await fleetPage.selectOption("#probe-flag", FLAG);
    await fleetPage.fill("#probe-user", user);
    await fleetPage.$eval("#probe-result tbody", (body) => body.replaceChildren());
    await fleetPage.click("#probe");
    await fleetPage.waitForFunction(() => document.querySelectorAll("#probe-result tbody tr").length > 1);
    const cells = await fleetPage.$$eval("#probe-result tbody tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    const [where, version, value, reason, , deployedConsistency] = cells[0];
    assert.deepEqual([where, value, reason, deployedConsistency], ["deployed", String(expected), "SPLIT", "–"], user);
    // Instances are read without refreshing: those holding the deployed version answer alike,
    // each with the user's own consistency: consistent since the split's consistentAt (the
    // user outside is served false as before, and is consistent by the plain flag's old stamp).
    const current = cells.slice(1).filter((row) => row[1] === version);
    assert.ok(current.length > 0, `no instance holds ${version}: ${JSON.stringify(cells)}`);
    for (const row of current) {
      const [, , v, r, , consistent, consistentAt, journeyOpensAt, changesAt] = row;
      assert.deepEqual([v, r, consistent, changesAt], [String(expected), "SPLIT", "yes", "–"], `${user} on ${row[0]}`);
      assert.match(consistentAt, /^\d\d:\d\d:\d\d$/, `${user} on ${row[0]}`);
      assert.match(journeyOpensAt, /^\d\d:\d\d:\d\d$/, `${user} on ${row[0]}`);
    }
  }
  await fleetPage.screenshot({ path: path.join(OUT, "targeting-fleet-probe.png") });
});
