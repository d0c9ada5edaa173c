// The fleet view's charts, drawn live with uPlot (vendored in web/vendor/ by scripts/vendor-uplot):
// each instance's configuration version over time, the gate's decisions per second by outcome,
// catch-ups and new versions per second, and the alarms' states when GET /local/fleet has them;
// every chart marks the deployment's steps, T, each flag's journeyOpensAt and consistentAt, a
// rollback and an alarm firing (listed below the charts as text too). fleet.js hands it each read
// of GET /local/fleet and each deployment it starts; the metrics it polls itself
// (GET /local/metrics every METRICS_POLL_MS, re-reading the last seconds: an invocation's document
// may land after a later one's). What is drawn comes from timeline.js. The charts are reachable as
// `window.fleetCharts` (the browser test reads their data).
"use strict";

import uPlot from "/vendor/uPlot.esm.js";
import { ALARM_LEVEL, CATCH_UPS, GATE, Timeline, WINDOW_MS } from "./timeline.js";

const METRICS_POLL_MS = 2000;
const REREAD_SECONDS = 10; // re-read this much of the metrics on every poll
const HEIGHT = 200;
const AXIS_SIZE = 110; // px: the y axis, with its label

const PALETTE = ["#0b6bcb", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#1b7c83", "#bf3989", "#57606a"];
const COLOR = {
  GateOpen: "#1a7f37",
  GateDraining: "#0b6bcb",
  GateDisabled: "#57606a",
  GateBehind: "#cf222e",
  GateDrainEnded: "#bc4c00",
  CatchUpPolled: "#8250df",
  CatchUpShared: "#1b7c83",
  RefreshNewVersion: "#9a6700",
};
// How each kind of mark is drawn (its colour also edges its line in the list below the charts).
const MARK = {
  stamp: { color: "#1d2733", dash: [] },
  step: { color: "#0b6bcb", dash: [4, 3] },
  opens: { color: "#1a7f37", dash: [6, 3] },
  consistent: { color: "#8250df", dash: [2, 2] },
  rollback: { color: "#cf222e", dash: [] },
  alarm: { color: "#bc4c00", dash: [] },
};

const $ = (id) => document.getElementById(id);
const clock = (ms) =>
  new Date(ms).toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" });
// A version on the axis: by its stamp T (labels are `T<RFC 3339>`, too long for an axis).
const versionName = (label, stamp) => {
  if (!Number.isFinite(stamp)) return label.slice(0, 16);
  return Math.abs(Date.now() - stamp) < 86_400_000 ? `T ${clock(stamp)}` : `T ${new Date(stamp).toISOString().slice(0, 10)}`;
};

// Draws the marks across the plot area; with `labels`, names them at the top, each label in the
// first row where it overlaps no other (marks a rollback cancelled are drawn faint).
function marksPlugin(charts, labels) {
  const ROWS = 4;
  return {
    hooks: {
      draw: [
        (u) => {
          const { ctx } = u;
          const { left, top, width, height } = u.bbox;
          const px = uPlot.pxRatio;
          const rows = []; // per row, where its last label ends
          ctx.save();
          ctx.font = `${11 * px}px system-ui, sans-serif`;
          ctx.textAlign = "left"; // uPlot leaves its axes' alignment on the context
          ctx.textBaseline = "alphabetic";
          for (const mark of charts.marks) {
            const x = Math.round(u.valToPos(mark.at / 1000, "x", true));
            if (x < left || x > left + width) continue;
            const style = MARK[mark.kind];
            ctx.globalAlpha = mark.cancelled ? 0.35 : 1;
            ctx.strokeStyle = style.color;
            ctx.lineWidth = (mark.kind === "rollback" ? 2 : 1) * px;
            ctx.setLineDash(style.dash.map((d) => d * px));
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            if (!labels) continue;
            const text = mark.label;
            const w = ctx.measureText(text).width;
            const start = x + 3 * px + w > left + width ? x - 3 * px - w : x + 3 * px;
            let row = rows.findIndex((end) => end + 6 * px <= start);
            if (row < 0 && rows.length < ROWS) row = rows.push(0) - 1;
            if (row < 0) continue; // no room: the list below names it
            rows[row] = start + w;
            ctx.fillStyle = style.color;
            ctx.fillText(text, start, top + (12 + 13 * row) * px);
          }
          ctx.restore();
        },
      ],
    },
  };
}

export class Charts {
  constructor() {
    this.timeline = new Timeline();
    this.plots = {}; // name -> uPlot
    this.labels = {}; // name -> the series labels the plot was built with
    this.range = [0, 0]; // seconds
    this.order = []; // version labels, by rank
    this.marks = [];
    this.after = null; // the next metrics read: documents after this (ms)
    window.fleetCharts = this;
    window.addEventListener("resize", () => this.resize());
    this.pollMetrics();
  }

  // One read of GET /local/fleet (fleet.js calls this once a second).
  fleet(fleet) {
    this.guard(() => {
      this.timeline.addFleet(fleet);
      this.draw();
    });
  }

  // A deployment this page started.
  deployed(started) {
    this.guard(() => {
      this.timeline.addDeployment(started);
      this.draw();
    });
  }

  guard(f) {
    try {
      f();
      $("charts-error").hidden = true;
    } catch (error) {
      console.error(error);
      $("charts-error").textContent = `Charts: ${error.message}`;
      $("charts-error").hidden = false;
    }
  }

  async pollMetrics() {
    const now = Date.now() + this.timeline.skew;
    const after = this.after ?? now - WINDOW_MS;
    try {
      const response = await fetch(`/local/metrics?after=${Math.floor(after)}`, { cache: "no-store" });
      if (!response.ok) throw new Error(`GET /local/metrics: HTTP ${response.status}`);
      const documents = await response.json();
      // Every document after `after` is in this answer, so the seconds after it are complete.
      const from = Math.floor(after / 1000) + 1;
      this.guard(() => {
        this.timeline.addMetrics(documents, from);
        let latest = after;
        for (const doc of documents) latest = Math.max(latest, doc._aws.Timestamp);
        this.after = (Math.floor(latest / 1000) - REREAD_SECONDS) * 1000 - 1;
        if (this.after < after) this.after = after;
        this.draw();
      });
    } catch (error) {
      $("charts-error").textContent = `Charts: ${error.message}`;
      $("charts-error").hidden = false;
    }
    setTimeout(() => this.pollMetrics(), METRICS_POLL_MS);
  }

  draw() {
    const t = this.timeline;
    const range = t.range();
    this.range = [range[0] / 1000, range[1] / 1000];
    // Listed from the axis' start on, including marks beyond its end (one a rollback cancelled);
    // drawn where they fall on it.
    this.marks = t.visibleMarks([range[0], Infinity]);
    // The versions axis is read when drawn: a version seen later adds a rank to it.
    this.order = t.versionOrder();
    this.plot("versions", t.instances, t.versionData(), {
      stepped: true,
      labels: true,
      width: 2,
      axis: {
        label: "configuration version",
        splits: () => this.order.map((_, i) => i),
        values: (u, splits) =>
          splits.map((i) => (this.order[i] ? versionName(this.order[i], t.stamps.get(this.order[i])) : "")),
        range: () => [-0.5, Math.max(this.order.length - 0.5, 0.5)],
      },
      value: (u, v) => (v == null ? "–" : this.order[Math.round(v)] || "–"),
    });
    this.plot("gate", GATE, t.perSecond(GATE, range), { axis: { label: "decisions / s" }, colors: GATE });
    this.plot("catch-ups", CATCH_UPS, t.perSecond(CATCH_UPS, range), { axis: { label: "per second" }, colors: CATCH_UPS });
    const alarms = t.alarmNames();
    $("chart-alarms").hidden = !t.hasAlarms;
    $("alarms-none").hidden = t.hasAlarms;
    if (t.hasAlarms) {
      const levels = Object.entries(ALARM_LEVEL).sort((a, b) => a[1] - b[1]);
      this.plot("alarms", alarms, t.alarmData(), {
        stepped: true,
        width: 2,
        axis: {
          label: "state",
            splits: () => levels.map(([, level]) => level),
          values: (u, splits) => splits.map((s) => (levels.find(([, l]) => l === s) || [""])[0]),
          range: () => [-0.25, 1.25],
        },
        value: (u, v) => (v == null ? "–" : (levels.find(([, l]) => Math.abs(l - v) < 0.2) || ["?"])[0]),
      });
      this.renderAlarmStates();
    }
    this.renderMarks();
  }

  // Builds the plot `name` (again when its series changed), or hands it new data.
  plot(name, labels, data, options) {
    const key = JSON.stringify(labels);
    const existing = this.plots[name];
    if (existing && this.labels[name] === key) {
      existing.setData(data);
      return;
    }
    existing?.destroy();
    const target = $(`chart-${name}`);
    const line = (label, i) => ({
      label,
      stroke: (options.colors && COLOR[label]) || PALETTE[i % PALETTE.length],
      width: options.width || 1.5,
      paths: options.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined,
      points: { show: false },
      value: options.value,
    });
    this.plots[name] = new uPlot(
      {
        width: target.clientWidth || 800,
        height: HEIGHT,
        cursor: { sync: { key: "fleet" } },
        scales: {
          x: { time: true, range: () => this.range },
          y: options.axis.range ? { range: options.axis.range } : { range: (u, lo, hi) => [0, Math.max(1, hi)] },
        },
        axes: [
          { values: (u, splits) => splits.map((s) => clock(s * 1000)) },
          {
            label: options.axis.label,
            size: AXIS_SIZE, // one width for every chart, so that their time axes line up
            ...(options.axis.splits ? { splits: options.axis.splits, values: options.axis.values } : {}),
          },
        ],
        series: [{ label: "time", value: (u, v) => (v == null ? "–" : clock(v * 1000)) }, ...labels.map(line)],
        plugins: [marksPlugin(this, options.labels)],
      },
      data,
      target,
    );
    this.labels[name] = key;
  }

  resize() {
    for (const [name, plot] of Object.entries(this.plots)) {
      plot.setSize({ width: $(`chart-${name}`).clientWidth || 800, height: HEIGHT });
    }
  }

  renderMarks() {
    $("chart-marks").replaceChildren(
      ...this.marks.map((mark) => {
        const item = document.createElement("li");
        item.dataset.kind = mark.kind;
        item.dataset.at = new Date(mark.at).toISOString();
        if (mark.cancelled) item.className = "cancelled";
        item.style.borderColor = MARK[mark.kind].color;
        item.textContent = `${clock(mark.at)} ${mark.label}${mark.detail ? ` (${mark.detail})` : ""}`;
        return item;
      }),
    );
  }

  renderAlarmStates() {
    const rows = [...this.timeline.alarms.values()].map((alarm) => {
      const tr = document.createElement("tr");
      tr.dataset.alarm = alarm.name;
      for (const [text, className] of [
        [alarm.name, ""],
        [alarm.state, alarm.state === "ALARM" ? "bad" : ""],
        [alarm.since ? clock(Date.parse(alarm.since)) : "–", ""],
        [alarm.reason || "", "muted"],
      ]) {
        const td = document.createElement("td");
        td.textContent = text;
        td.className = className;
        tr.append(td);
      }
      return tr;
    });
    $("alarm-states").tBodies[0].replaceChildren(...rows);
    $("alarm-states").hidden = rows.length === 0;
  }
}
