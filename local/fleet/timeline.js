// What the fleet view's charts draw, accumulated from what the view reads (no drawing here):
// one sample per read of GET /local/fleet (each instance's configuration version, each alarm's
// state), the marks on the time axis (a deployment's stamp T and its steps, each flag's
// journeyOpensAt and consistentAt, a rollback, an alarm firing), and per-second counts from the
// EMF documents of GET /local/metrics (the gate's decisions, catch-ups, new versions). Times are
// the runner's clock (Unix milliseconds); only the last WINDOW_MS is kept.
"use strict";

export const WINDOW_MS = 5 * 60_000;

// The gate's decisions by outcome (docs/metrics.md), in the legend's order.
export const GATE = ["GateOpen", "GateDraining", "GateDisabled", "GateBehind", "GateDrainEnded"];
// Polls a journey token asked for, catch-ups served by another request's poll, and refreshes
// that brought a new version (how a deployment spreads).
export const CATCH_UPS = ["CatchUpPolled", "CatchUpShared", "RefreshNewVersion"];
const COUNTED = [...GATE, ...CATCH_UPS];

// An alarm's state as a height on its chart.
export const ALARM_LEVEL = { OK: 0, INSUFFICIENT_DATA: 0.5, ALARM: 1 };

const ROLLED_BACK = new Set(["ROLLED_BACK", "REVERTED"]);
const RUNNING = new Set(["DEPLOYING", "BAKING"]);

// journeyOpensAt of a flag as GET /local/fleet's `deployed` shows it (which gives consistentAt
// only): T + Δ + Q + ε = consistentAt − (P − Q). For a flag defined by rules it is the signed-in
// callers' whose value the deployment changed (their /config/me tokens are bound to them and
// claim their value, so an instance behind catches up; the deployment's report says the same);
// an anonymous reader's token claims such a flag off, and its journey waits for consistentAt.
export function journeyOpensAt(flag, fleet) {
  const at = Date.parse(flag.consistentAt || "");
  const q = fleet.catchUpIntervalSeconds;
  if (!Number.isFinite(at) || q == null) return null;
  return new Date(at - (fleet.pollIntervalSeconds - q) * 1000).toISOString();
}

export class Timeline {
  constructor() {
    this.instances = []; // names, in the order the fleet lists them
    this.samples = []; // { at, versions: {instance: label|null}, alarms: {name: state}|null }
    this.stamps = new Map(); // version label -> its stamp T (ms; NaN when unknown)
    this.marks = new Map(); // key -> { at, kind, label, detail, cancelled }
    this.bins = new Map(); // second -> { metric: count }
    this.alarms = new Map(); // name -> { state, since, reason } as last read
    this.hasAlarms = false; // whether GET /local/fleet has said anything about alarms
    this.step = undefined; // the latest deployment as last seen (undefined: never read)
    this.now = Date.now();
    this.skew = 0; // the runner's clock minus this page's
  }

  // One read of GET /local/fleet.
  addFleet(fleet) {
    const at = Date.parse(fleet.serverTime);
    this.now = at;
    this.skew = at - Date.now();
    const versions = {};
    for (const fn of fleet.functions) {
      for (const instance of fn.instances) {
        if (!this.instances.includes(instance.name)) this.instances.push(instance.name);
        const label = instance.configurationVersion || null;
        versions[instance.name] = label;
        if (label) this.noteVersion(label, instance.lastModifiedTimestamp);
        for (const [flag, status] of Object.entries(instance.flags || {})) {
          this.noteFlag(flag, status.value, status.consistentAt, status.journeyOpensAt);
        }
      }
    }
    const deployed = fleet.deployed || {};
    if (deployed.configurationVersion) {
      this.noteVersion(deployed.configurationVersion, deployed.lastModifiedTimestamp);
    }
    for (const [flag, status] of Object.entries(deployed.flags || {})) {
      this.noteFlag(flag, status.value, status.consistentAt, journeyOpensAt(status, fleet));
    }
    this.noteStep(deployed.deployment, at);
    let alarms = null;
    if (Array.isArray(fleet.alarms)) {
      this.hasAlarms = true;
      alarms = {};
      for (const alarm of fleet.alarms) {
        const before = this.alarms.get(alarm.name);
        if (alarm.state === "ALARM" && (!before || before.state !== "ALARM")) {
          const since = Date.parse(alarm.since || "");
          this.mark(Number.isFinite(since) ? since : at, "alarm", `${alarm.name} ALARM`);
        }
        this.alarms.set(alarm.name, alarm);
        alarms[alarm.name] = alarm.state;
      }
    }
    this.samples.push({ at, versions, alarms });
    this.prune();
  }

  // A deployment this page started (POST /local/deployments' answer): its stamp and the times
  // of the flags it changed, known before any instance holds them.
  addDeployment(started) {
    this.noteVersion(started.versionLabel, started.lastModifiedTimestamp);
    for (const [flag, report] of Object.entries(started.flags || {})) {
      if (report.change === "kept") continue;
      this.noteFlag(flag, report.value, report.consistentAt, report.journeyOpensAt);
    }
  }

  // Documents of GET /local/metrics: every document from second `from` on (earlier ones are
  // ignored), so the counts of those seconds are replaced, not added to.
  addMetrics(documents, from) {
    for (const second of [...this.bins.keys()]) if (second >= from) this.bins.delete(second);
    for (const doc of documents) {
      const at = doc && doc._aws && doc._aws.Timestamp;
      if (typeof at !== "number" || Math.floor(at / 1000) < from) continue;
      const second = Math.floor(at / 1000);
      let bin = this.bins.get(second);
      for (const name of COUNTED) {
        if (typeof doc[name] !== "number") continue;
        if (!bin) this.bins.set(second, (bin = {}));
        bin[name] = (bin[name] || 0) + doc[name];
      }
    }
    this.prune();
  }

  noteVersion(label, stamp) {
    const t = Date.parse(stamp || "");
    if (!this.stamps.has(label) || (Number.isNaN(this.stamps.get(label)) && Number.isFinite(t))) {
      this.stamps.set(label, t);
      if (Number.isFinite(t)) this.mark(t, "stamp", "T", `version ${label}`);
    }
  }

  noteFlag(flag, value, consistentAt, opensAt) {
    const consistent = Date.parse(consistentAt || "");
    if (Number.isFinite(consistent)) this.mark(consistent, "consistent", `${flag}=${value} consistentAt`);
    // A journey opens on a flag switched on; a switch-off has no journeyOpensAt worth marking.
    const opens = Date.parse(opensAt || "");
    if (value === true && Number.isFinite(opens)) this.mark(opens, "opens", `${flag} journeyOpensAt`);
  }

  // The latest deployment's number, state and percentage: each change is a step. The first
  // read shows what happened before this page was open, so it counts only if still running.
  noteStep(deployment, at) {
    const key = deployment
      ? `${deployment.deploymentNumber}|${deployment.state}|${deployment.percentageComplete}`
      : null;
    const first = this.step === undefined;
    if (key === this.step) return;
    this.step = key;
    if (!deployment || (first && !RUNNING.has(deployment.state))) return;
    const kind = ROLLED_BACK.has(deployment.state) ? "rollback" : "step";
    const percent = RUNNING.has(deployment.state) ? ` ${deployment.percentageComplete.toFixed(0)} %` : "";
    this.mark(at, kind, `deployment ${deployment.deploymentNumber} ${deployment.state}${percent}`);
    // The rolled-back content's journeyOpensAt and consistentAt still ahead will not come.
    if (kind === "rollback") {
      for (const mark of this.marks.values()) {
        if (mark.at > at && (mark.kind === "opens" || mark.kind === "consistent")) {
          mark.cancelled = true;
          mark.detail = "not reached: rolled back";
        }
      }
    }
  }

  // A mark: `label` is drawn on the chart, `detail` only listed beside it.
  mark(at, kind, label, detail = "") {
    const key = `${kind}|${label}|${at}`;
    if (!this.marks.has(key)) this.marks.set(key, { at, kind, label, detail });
  }

  prune() {
    const oldest = this.now - WINDOW_MS;
    while (this.samples.length > 0 && this.samples[0].at < oldest) this.samples.shift();
    for (const second of this.bins.keys()) if (second * 1000 < oldest) this.bins.delete(second);
    for (const [key, mark] of this.marks) if (mark.at < oldest) this.marks.delete(key);
  }

  // The time axis, ms: from the first sample (at most WINDOW_MS ago) to now, or to a mark still
  // ahead (a journeyOpensAt, a consistentAt) when one is due within half the window and was not
  // cancelled by a rollback.
  range() {
    const first = this.samples.length > 0 ? this.samples[0].at : this.now;
    const min = Math.max(this.now - WINDOW_MS, first - 10_000);
    let max = this.now;
    for (const mark of this.marks.values()) {
      if (!mark.cancelled && mark.at > max && mark.at <= this.now + WINDOW_MS / 2) max = mark.at;
    }
    return [min, max + 5_000];
  }

  // The marks within `[min, max]`, oldest first.
  visibleMarks([min, max]) {
    return [...this.marks.values()].filter((m) => m.at >= min && m.at <= max).sort((a, b) => a.at - b.at);
  }

  // Version labels, oldest stamp first: a version's rank is its height on the chart.
  versionOrder() {
    return [...this.stamps.entries()]
      .sort(([la, ta], [lb, tb]) => (ta || 0) - (tb || 0) || la.localeCompare(lb))
      .map(([label]) => label);
  }

  // uPlot data for the versions chart: seconds, then per instance its version's rank, nudged
  // apart by instance (by less than half a rank) so that lines on the same version stay visible.
  versionData() {
    const order = this.versionOrder();
    const rank = new Map(order.map((label, i) => [label, i]));
    const n = this.instances.length;
    const nudge = (i) => (n > 1 ? (i / (n - 1) - 0.5) * 0.3 : 0);
    return [
      this.samples.map((s) => s.at / 1000),
      ...this.instances.map((name, i) =>
        this.samples.map((s) => (s.versions[name] ? rank.get(s.versions[name]) + nudge(i) : null)),
      ),
    ];
  }

  // uPlot data: every second of `[min, now]`, then per metric its count in that second.
  perSecond(names, [min]) {
    const seconds = [];
    for (let s = Math.ceil(min / 1000); s <= Math.floor(this.now / 1000); s++) seconds.push(s);
    return [seconds, ...names.map((name) => seconds.map((s) => (this.bins.get(s) || {})[name] || 0))];
  }

  // The alarms' names, in the order GET /local/fleet first gave them.
  alarmNames() {
    return [...this.alarms.keys()];
  }

  // uPlot data for the alarms chart: per alarm its state's level (ALARM_LEVEL), nudged apart.
  alarmData() {
    const names = this.alarmNames();
    const n = names.length;
    const nudge = (i) => (n > 1 ? (i / (n - 1) - 0.5) * 0.12 : 0);
    return [
      this.samples.map((s) => s.at / 1000),
      ...names.map((name, i) =>
        this.samples.map((s) => {
          const level = s.alarms ? ALARM_LEVEL[s.alarms[name]] : undefined;
          return level === undefined ? null : level + nudge(i);
        }),
      ),
    ];
  }
}
