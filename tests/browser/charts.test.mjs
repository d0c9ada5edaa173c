// The fleet view's charts (local/fleet/charts.js, uPlot) in a real browser, during a deployment
// and its rollback: the runner in fleet mode (4 instances per function, P = 15 s), requests
// spread over every instance (GET /config, and feature-x submissions the gate decides), a gradual
// deployment of isFeatureXEnabled=true started with the fleet view's Deploy button
// (POST /local/deployments, 25 % every 15 s), stopped with its Stop button
// (POST /local/deployments/stop: rolled back) once some instances hold the new version, until
// every instance is back on the old one. Then the charts' own data (uPlot's series and points,
// read from `window.fleetCharts`) must show every instance, each instance that held the new
// version going up to it and back down, the deployment's steps, T, journeyOpensAt and
// consistentAt and the rollback marked, and per-second gate decisions, catch-ups and new versions
// equal to what GET /local/metrics says; alarms as GET /local/fleet reports them (or that it
// reports none). Screenshots (target/browser/charts-*.png): mid-deployment and after the rollback.
//
// Run by ./scripts/test after `cargo build -p lockstep-local`; fails loudly, never skips.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { OUT, api, bearer, fleetRunner, secondsSince, sleep } from "./support.mjs";

const P = 15; // seconds: the poll interval (the smallest the catch-up interval Q allows)
const EPSILON = 2;
const INSTANCES = 4; // per function: 8 AppConfig sessions, so a 25 % step reaches some soon
const STRATEGY = "lockstep-linear-25pct-1min";
const FLAG = "isFeatureXEnabled";
const GATE = ["GateOpen", "GateDraining", "GateDisabled", "GateBehind", "GateDrainEnded"];
const CATCH_UPS = ["CatchUpPolled", "CatchUpShared", "RefreshNewVersion"];

const instancesOf = (fleet) => fleet.functions.flatMap((f) => f.instances);

// Polls GET /local/fleet until `done(fleet)` holds, or fails with `what` at `deadline`.
async function fleetUntil(base, done, deadline, what) {
  for (;;) {
    const fleet = (await api(base, "GET", "/local/fleet")).body;
    if (done(fleet)) return fleet;
    assert.ok(Date.now() < deadline, `${what}: ${JSON.stringify(instancesOf(fleet).map((i) => [i.name, i.state, i.configurationVersion]))}`);
    await sleep(500);
  }
}

// Requests spread round robin over every instance until stopped: an instance refreshes only
// when a request reaches it (every P), and the gate decides every submission.
function traffic(base, auth) {
  let running = true;
  let sent = 0;
  const done = (async () => {
    while (running) {
      sent += 1;
      const submission = { journeyId: `charts-${sent}`, plan: "basic", quantity: 1 };
      await Promise.all([
        api(base, "GET", "/config"),
        api(base, "POST", "/feature-x/submissions", submission, auth),
      ]).catch(() => {});
      await sleep(200);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return sent;
    },
  };
}

// Per-second sums of `names` over GET /local/metrics' documents, for the seconds in `seconds`.
function sums(documents, names, seconds) {
  const inRange = new Set(seconds);
  const total = Object.fromEntries(names.map((n) => [n, 0]));
  for (const doc of documents) {
    if (!inRange.has(Math.floor(doc._aws.Timestamp / 1000))) continue;
    for (const name of names) if (typeof doc[name] === "number") total[name] += doc[name];
  }
  return total;
}

// What the page's charts hold: each uPlot's series labels and data, the marks listed under them.
const readCharts = (page) =>
  page.evaluate(() => {
    const plots = {};
    for (const [name, u] of Object.entries(window.fleetCharts.plots)) {
      plots[name] = {
        series: u.series.slice(1).map((s) => s.label),
        data: u.data,
        drawn: u.ctx.canvas.width > 0,
        x: [u.scales.x.min * 1000, u.scales.x.max * 1000],
      };
    }
    const marks = [...document.querySelectorAll("#chart-marks li")].map((li) => ({
      kind: li.dataset.kind,
      at: Date.parse(li.dataset.at),
      text: li.textContent,
      cancelled: li.classList.contains("cancelled"),
    }));
    return { plots, marks, order: window.fleetCharts.timeline.versionOrder() };
  });

test("the fleet view's charts show every instance through a deployment and its rollback", { timeout: 300_000 }, async (t) => {
  const fleetRun = fleetRunner(t, {
    label: "browser charts test",
    logFile: "runner-charts.log",
    instances: INSTANCES,
    pollSeconds: P,
    epsilonSeconds: EPSILON,
  });
  const base = await fleetRun.ready;
  const load = traffic(base, await bearer(base, "charts-user"));
  t.after(() => load.stop());

  // Every instance started (cold starts are staggered over P) and holding the initial version.
  const before = await fleetUntil(
    base,
    (f) => instancesOf(f).every((i) => i.state === "warm" && i.configurationVersion),
    Date.now() + (P + 20) * 1000,
    "instances still starting",
  );
  const oldVersion = before.deployed.configurationVersion;
  const names = instancesOf(before).map((i) => i.name);
  assert.equal(names.length, 2 * INSTANCES);

  const browser = await fleetRun.launch();
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  await page.goto(base + "/fleet");
  await page.waitForFunction(
    (n) => window.fleetCharts?.plots.versions?.series.length === n + 1,
    names.length,
  );

  // The deployment, from the fleet view's Deploy form.
  await page.selectOption(`#deploy-${FLAG}`, "true");
  await page.waitForSelector(`#strategy option[value="${STRATEGY}"]`, { state: "attached" });
  await page.selectOption("#strategy", STRATEGY);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/local/deployments")),
    page.click("#deploy"),
  ]);
  assert.equal(response.status(), 201);
  const started = await response.json();
  const newVersion = started.versionLabel;
  const deployedAt = Date.now();
  assert.notEqual(newVersion, oldVersion);

  // Some instances pick the new version up (their sessions' buckets under the percentage), the
  // deployment still in progress: two, or one once the deployment is at 75 %; and among them a
  // feature-x instance, the only kind whose gate can open (config instances hold sessions too).
  const held = new Set();
  const midway = await fleetUntil(
    base,
    (f) => {
      for (const i of instancesOf(f)) if (i.configurationVersion === newVersion) held.add(i.name);
      const { state, percentageComplete } = f.deployed.deployment;
      assert.equal(state, "DEPLOYING", "the deployment ended before enough instances held it");
      const gateCanOpen = [...held].some((name) => name.startsWith("feature-x-"));
      return gateCanOpen && (held.size >= 2 || (held.size >= 1 && percentageComplete >= 75));
    },
    Date.now() + 70_000,
    "no instance holds the new version",
  );
  console.log(`${held.size} instance(s) on the new version ${secondsSince(deployedAt)} s after the deployment, at ${midway.deployed.deployment.percentageComplete} %`);
  await sleep(2500); // a metrics poll and a few fleet reads
  await page.locator("#charts").screenshot({ path: path.join(OUT, "charts-deployment.png") });

  // Mid-deployment, the time axis reaches the flag's journeyOpensAt and consistentAt (from the
  // deployment's answer), still ahead, and marks them.
  const flag = started.flags[FLAG];
  const ahead = [["opens", Date.parse(flag.journeyOpensAt)], ["consistent", Date.parse(flag.consistentAt)]];
  const during = await readCharts(page);
  for (const [kind, at] of ahead) {
    assert.ok(at > Date.now(), `${kind} is still ahead`);
    assert.ok(during.marks.some((m) => m.kind === kind && m.at === at && !m.cancelled), `${kind} marked: ${JSON.stringify(during.marks)}`);
    assert.ok(during.plots.versions.x[1] >= at, `the time axis reaches ${kind}`);
  }

  // Stopped: AppConfig rolls it back; every instance returns to the old version at its next poll.
  await page.click("#stop");
  await page.waitForSelector("#deploy-result:has-text('stopped')");
  const stoppedAt = Date.now();
  assert.match(await page.textContent("#deploy-result"), /ROLLED_BACK/);
  await fleetUntil(
    base,
    (f) => {
      for (const i of instancesOf(f)) if (i.configurationVersion === newVersion) held.add(i.name);
      return instancesOf(f).every((i) => i.configurationVersion === oldVersion);
    },
    Date.now() + (P + 15) * 1000,
    "not every instance is back on the old version",
  );
  console.log(`every instance back on the old version ${secondsSince(stoppedAt)} s after the stop; ${held.size} had held the new one`);
  await sleep(2500);
  await load.stop();
  await sleep(4500); // the last documents read (metrics every 2 s), and no more coming
  await page.locator("#charts").screenshot({ path: path.join(OUT, "charts-rollback.png") });

  const charts = await readCharts(page);
  const documents = (await api(base, "GET", "/local/metrics")).body;
  const fleet = (await api(base, "GET", "/local/fleet")).body;

  // The versions chart: one series per instance, each on the old version at the end; every
  // instance that held the new version goes up to it and back down (the rollback), in the
  // chart's own points.
  const versions = charts.plots.versions;
  assert.deepEqual(versions.series, names, "one series per instance");
  assert.ok(versions.drawn, "the versions chart is drawn");
  const rank = (label) => charts.order.indexOf(label);
  assert.ok(rank(newVersion) > rank(oldVersion) && rank(oldVersion) >= 0, `version order ${charts.order}`);
  for (const [i, name] of names.entries()) {
    const points = versions.data[i + 1].filter((y) => y != null).map((y) => Math.round(y) + 0); // + 0: no -0
    assert.equal(points.at(-1), rank(oldVersion), `${name} ends on the old version`);
    const up = points.indexOf(rank(newVersion));
    if (held.has(name)) {
      assert.ok(up > 0 && points[up - 1] === rank(oldVersion), `${name} goes up to the new version: ${points}`);
      assert.ok(points.slice(up).includes(rank(oldVersion)), `${name} comes back down: ${points}`);
    } else {
      assert.equal(up, -1, `${name} never held the new version: ${points}`);
    }
  }

  // The marks: the deployment's T, its steps, the rollback when it happened, and the flag's
  // journeyOpensAt and consistentAt still listed, as not reached (rolled back).
  const marked = (kind, at) => charts.marks.find((m) => m.kind === kind && m.at === at);
  assert.ok(marked("stamp", Date.parse(started.lastModifiedTimestamp)), `T marked: ${JSON.stringify(charts.marks)}`);
  for (const [kind, at] of ahead) {
    const mark = marked(kind, at);
    assert.ok(mark && mark.cancelled && /not reached: rolled back/.test(mark.text), `${kind}: ${JSON.stringify(mark)}`);
  }
  const steps = charts.marks.filter((m) => m.kind === "step").map((m) => m.text);
  assert.ok(steps.some((s) => s.includes(`deployment ${started.deploymentNumber} DEPLOYING`)), `steps: ${steps}`);
  const rollbacks = charts.marks.filter((m) => m.kind === "rollback");
  assert.equal(rollbacks.length, 1, JSON.stringify(charts.marks));
  assert.match(rollbacks[0].text, new RegExp(`deployment ${started.deploymentNumber} ROLLED_BACK`));
  assert.ok(
    Math.abs(rollbacks[0].at - stoppedAt) < 3000,
    `the rollback is marked when it happened (${secondsSince(stoppedAt, rollbacks[0].at)} s from the stop)`,
  );

  // Gate decisions, catch-ups and new versions per second: what the instances' EMF documents say,
  // second by second over the chart's range.
  for (const [name, metrics] of [["gate", GATE], ["catch-ups", CATCH_UPS]]) {
    const plot = charts.plots[name];
    assert.deepEqual(plot.series, metrics, `${name} series`);
    const [seconds, ...counts] = plot.data;
    const drawn = Object.fromEntries(metrics.map((m, i) => [m, counts[i].reduce((a, b) => a + b, 0)]));
    assert.deepEqual(drawn, sums(documents, metrics, seconds), `${name}: the chart's per-second counts, summed`);
  }
  const total = (name, metric) => {
    const plot = charts.plots[name];
    return plot.data[plot.series.indexOf(metric) + 1].reduce((a, b) => a + b, 0);
  };
  assert.ok(total("gate", "GateDisabled") > 0, "503 disabled before the instances held the new version");
  assert.ok(total("gate", "GateOpen") > 0, "the gate opened on instances holding the new version");
  assert.ok(total("catch-ups", "RefreshNewVersion") >= 2 * held.size, "each instance that held it: up and back down");

  // Alarms, as GET /local/fleet reports them.
  if (Array.isArray(fleet.alarms) && fleet.alarms.length > 0) {
    assert.deepEqual(charts.plots.alarms.series, fleet.alarms.map((a) => a.name), "one series per alarm");
    const rows = await page.$$eval("#alarm-states tbody tr", (trs) => trs.map((tr) => tr.dataset.alarm));
    assert.deepEqual(rows, fleet.alarms.map((a) => a.name));
  } else {
    assert.equal(charts.plots.alarms, undefined, "no alarms chart without alarm states");
    assert.equal(await page.isVisible("#alarms-none"), true, "the view says it has no alarm states");
  }
  assert.deepEqual(problems, [], "no page errors, no console errors (a CSP violation is one)");
});
