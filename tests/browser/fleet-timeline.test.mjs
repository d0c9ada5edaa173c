// What the fleet view's charts draw (local/fleet/timeline.js), in node without a browser: the
// module has no DOM in it, so its rules are checked here on made-up reads, quickly; the charts
// themselves are checked in chromium by charts.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Timeline, journeyOpensAt } from "../../local/fleet/timeline.js";

const T0 = Date.parse("2026-12-06T12:00:00Z");
const iso = (ms) => new Date(ms).toISOString();

// A read of GET /local/fleet at `at`: `versions` maps instance -> [label, stamp ms].
function fleet(at, versions, { deployment = null, alarms } = {}) {
  return {
    serverTime: iso(at),
    pollIntervalSeconds: 45,
    catchUpIntervalSeconds: 15,
    functions: [
      {
        function: "config",
        instances: Object.entries(versions).map(([name, [label, stamp]]) => ({
          name,
          configurationVersion: label,
          lastModifiedTimestamp: stamp == null ? null : iso(stamp),
          flags: {},
        })),
      },
    ],
    deployed: { configurationVersion: null, flags: {}, deployment },
    ...(alarms ? { alarms } : {}),
  };
}

test("versions are ranked by their stamp, so a rollback draws each instance back down", () => {
  const t = new Timeline();
  t.addFleet(fleet(T0, { "config-1": ["b", T0 - 5000], "config-2": [null, null] }));
  t.addFleet(fleet(T0 + 1000, { "config-1": ["a", T0 - 10_000], "config-2": ["b", T0 - 5000] }));
  t.addFleet(fleet(T0 + 2000, { "config-1": ["b", T0 - 5000], "config-2": ["b", T0 - 5000] }));

  assert.deepEqual(t.versionOrder(), ["a", "b"]);
  const [seconds, one, two] = t.versionData();
  assert.deepEqual(seconds, [T0 / 1000, T0 / 1000 + 1, T0 / 1000 + 2]);
  const rank = (y) => (y == null ? null : Math.round(y) + 0); // + 0: no -0
  assert.deepEqual(one.map(rank), [1, 0, 1]);
  assert.deepEqual(two.map(rank), [null, 1, 1]);
  assert.notEqual(one[2], two[2], "two instances on one version are nudged apart");
});

test("a deployment's steps are marked when they change, and a finished one seen first is not", () => {
  const t = new Timeline();
  const step = (state, percentageComplete, deploymentNumber = 1) => ({ deploymentNumber, state, percentageComplete });
  t.addFleet(fleet(T0, {}, { deployment: step("COMPLETE", 100) }));
  t.addFleet(fleet(T0 + 1000, {}, { deployment: step("DEPLOYING", 0, 2) }));
  t.addFleet(fleet(T0 + 2000, {}, { deployment: step("DEPLOYING", 0, 2) }));
  t.addFleet(fleet(T0 + 3000, {}, { deployment: step("DEPLOYING", 25, 2) }));
  t.addFleet(fleet(T0 + 4000, {}, { deployment: step("ROLLED_BACK", 25, 2) }));

  const marks = t.visibleMarks(t.range()).map((m) => [m.at - T0, m.kind, m.label]);
  assert.deepEqual(marks, [
    [1000, "step", "deployment 2 DEPLOYING 0 %"],
    [3000, "step", "deployment 2 DEPLOYING 25 %"],
    [4000, "rollback", "deployment 2 ROLLED_BACK"],
  ]);
});

test("a started deployment marks T, journeyOpensAt of a flag switched on and consistentAt, not kept flags", () => {
  const t = new Timeline();
  t.addFleet(fleet(T0, {}));
  t.addDeployment({
    versionLabel: "v2",
    lastModifiedTimestamp: iso(T0),
    flags: {
      on: { value: true, change: "changed", consistentAt: iso(T0 + 50_000), journeyOpensAt: iso(T0 + 20_000) },
      off: { value: false, change: "changed", consistentAt: iso(T0 + 50_000), journeyOpensAt: iso(T0 + 20_000) },
      kept: { value: true, change: "kept", consistentAt: iso(T0 + 70_000), journeyOpensAt: iso(T0 + 70_000) },
    },
  });

  const marks = t.visibleMarks(t.range()).map((m) => [m.at - T0, m.kind, m.label]);
  assert.deepEqual(marks, [
    [0, "stamp", "T"],
    [20_000, "opens", "on journeyOpensAt"],
    [50_000, "consistent", "on=true consistentAt"],
    [50_000, "consistent", "off=false consistentAt"],
  ]);
  assert.equal(t.range()[1], T0 + 55_000, "the axis reaches a mark still ahead");
});

test("a rollback cancels the journeyOpensAt and consistentAt still ahead, and the axis stops reaching them", () => {
  const t = new Timeline();
  const deployment = (state) => ({ deploymentNumber: 2, state, percentageComplete: 25 });
  t.addFleet(fleet(T0, {}, { deployment: deployment("DEPLOYING") }));
  t.addDeployment({
    versionLabel: "v2",
    lastModifiedTimestamp: iso(T0 - 1000),
    flags: { on: { value: true, change: "changed", consistentAt: iso(T0 + 80_000), journeyOpensAt: iso(T0 + 80_000) } },
  });
  assert.equal(t.range()[1], T0 + 85_000);

  t.addFleet(fleet(T0 + 1000, {}, { deployment: deployment("ROLLED_BACK") }));

  const ahead = t.visibleMarks([T0, T0 + 90_000]).filter((m) => m.at > T0 + 1000);
  assert.deepEqual(ahead.map((m) => [m.kind, m.cancelled, m.detail]), [
    ["consistent", true, "not reached: rolled back"],
    ["opens", true, "not reached: rolled back"],
  ]);
  assert.equal(t.range()[1], T0 + 6000, "the axis ends at now (+ 5 s)");
  assert.equal(t.visibleMarks(t.range()).filter((m) => m.kind === "stamp").length, 1, "T stays");
});

test("journeyOpensAt of a deployed flag is P − Q before consistentAt, for rules too (signed-in callers' bound tokens)", () => {
  const f = { pollIntervalSeconds: 45, catchUpIntervalSeconds: 15 };
  assert.equal(journeyOpensAt({ consistentAt: iso(T0) }, f), iso(T0 - 30_000));
  assert.equal(journeyOpensAt({ consistentAt: iso(T0), definition: {} }, f), iso(T0 - 30_000));
  assert.equal(journeyOpensAt({ consistentAt: null }, f), null);
});

test("metrics re-read from a second replace that second's counts instead of adding to them", () => {
  const t = new Timeline();
  t.addFleet(fleet(T0 + 10_000, {}));
  const doc = (at, counts) => ({ _aws: { Timestamp: at }, ...counts });
  t.addMetrics([doc(T0 + 1100, { GateOpen: 1 }), doc(T0 + 2100, { GateDisabled: 1 })], T0 / 1000);
  t.addMetrics([doc(T0 + 2100, { GateDisabled: 1 }), doc(T0 + 2900, { GateDisabled: 1, CatchUpPolled: 1 })], T0 / 1000 + 2);

  const [seconds, open, disabled] = t.perSecond(["GateOpen", "GateDisabled"], [T0]);
  assert.equal(seconds.length, 11);
  assert.deepEqual(open.slice(0, 4), [0, 1, 0, 0]);
  assert.deepEqual(disabled.slice(0, 4), [0, 0, 2, 0]);
  assert.deepEqual(t.perSecond(["CatchUpPolled"], [T0])[1].slice(0, 4), [0, 0, 1, 0]);
});

test("alarm states are drawn by level and an alarm firing is marked at its since", () => {
  const t = new Timeline();
  const alarm = (state, since) => ({ name: "gate-behind", state, since: iso(since), reason: "r" });
  t.addFleet(fleet(T0, {}));
  assert.equal(t.hasAlarms, false);
  t.addFleet(fleet(T0 + 1000, {}, { alarms: [alarm("OK", T0 - 60_000)] }));
  t.addFleet(fleet(T0 + 2000, {}, { alarms: [alarm("ALARM", T0 + 1500)] }));
  t.addFleet(fleet(T0 + 3000, {}, { alarms: [alarm("ALARM", T0 + 1500)] }));

  assert.equal(t.hasAlarms, true);
  assert.deepEqual(t.alarmNames(), ["gate-behind"]);
  assert.deepEqual(t.alarmData()[1], [null, 0, 1, 1]);
  const fired = t.visibleMarks(t.range()).filter((m) => m.kind === "alarm");
  assert.deepEqual(fired.map((m) => [m.at - T0, m.label]), [[1500, "gate-behind ALARM"]]);
});
