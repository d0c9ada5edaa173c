// The local runner's fleet view: every instance's configuration version, fetch age, health and
// calls to AppConfigData (regular polls, and the catch-ups journey tokens asked for: rule 8; a
// catch-up that just happened is highlighted), read from GET /local/fleet once a second (a local
// development view; the SPA never polls like this), with freeze/thaw buttons, and a Deploy form
// (a strategy to choose, a drain time for a planned switch-off, a Stop button) that deploys to
// the local AppConfig through `lockstep deploy`'s code (POST /local/deployments,
// POST /local/deployments/stop), each deployed flag's rules and splits, and a probe that evaluates
// one user (POST /local/probe) on the deployed content and on every instance, with that user's
// own consistentAt, journeyOpensAt and changesAt as each instance computes them (design rule 10).
// A flag defined by rules lists its steps: the current definition's stamp, then the previous
// definitions the content keeps for per-user consistency, each with its stamp. Each read of the
// fleet and each deployment started here also goes to the charts (charts.js). All text goes
// through textContent.
"use strict";

import { Charts } from "./charts.js";
import { journeyOpensAt } from "./timeline.js";

const charts = new Charts();

(() => {
  const $ = (id) => document.getElementById(id);
  const rows = new Map(); // instance name -> { row, cells, button, catchUps }
  let deployedVersion = null;
  let rollingOutVersion = null; // the version of a deployment in progress
  let deployBuilt = false;
  let strategiesBuilt = false;

  const el = (tag, props = {}, children = []) => {
    const node = document.createElement(tag);
    Object.assign(node, props);
    for (const child of children) node.append(child);
    return node;
  };

  const time = (iso) =>
    iso
      ? new Date(iso).toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" })
      : "–";

  const shortVersion = (version) => version || "–";

  const until = (iso, now) => {
    if (!iso) return "–";
    const s = (Date.parse(iso) - now) / 1000;
    return s > 0 ? `in ${s.toFixed(0)} s` : "reached";
  };

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error((data && data.detail) || `HTTP ${response.status}`);
    }
    return data;
  }

  function renderDeployed(fleet) {
    const deployed = fleet.deployed;
    deployedVersion = deployed.configurationVersion;
    const now = Date.parse(fleet.serverTime);
    $("deployed").textContent =
      `lockstep/local/flags · version ${shortVersion(deployed.configurationVersion)} · ` +
      `T ${time(deployed.lastModifiedTimestamp)}` + (deployed.error ? ` · ${deployed.error}` : "");
    const d = deployed.deployment;
    const running = d && (d.state === "DEPLOYING" || d.state === "BAKING");
    $("deployment").textContent = d
      ? `deployment ${d.deploymentNumber}: ${d.state} ${d.percentageComplete.toFixed(0)}%`
      : "no deployment yet";
    $("deployment").dataset.state = d ? d.state : "";
    $("stop").disabled = !running;
    rollingOutVersion = running ? d.versionLabel : null;
    if (!strategiesBuilt && fleet.strategies.length) {
      $("strategy").replaceChildren(
        ...fleet.strategies.map((s) =>
          el("option", { value: s.name, textContent: `${s.name} (Δ ${s.deploymentDurationSeconds} s)` }),
        ),
      );
      strategiesBuilt = true;
    }
    const body = $("deployed-flags").tBodies[0];
    body.replaceChildren(
      ...Object.entries(deployed.flags).map(([name, flag]) =>
        el("tr", {}, [
          el("td", { textContent: name }),
          flag.definition
            ? el("td", { textContent: "per user", className: "muted" })
            : el("td", { textContent: String(flag.value), className: flag.value ? "on" : "off" }),
          el("td", { textContent: time(flag.lastModifiedTimestamp) }),
          el("td", { textContent: flag.deploymentDurationSeconds == null ? "–" : `${flag.deploymentDurationSeconds} s` }),
          el("td", { textContent: time(journeyOpensAt(flag, fleet)) }),
          el("td", { textContent: time(flag.consistentAt) }),
          el("td", { textContent: until(flag.consistentAt, now) }),
          el("td", { className: "rules" }, describeRules(flag.definition)),
          el("td", { className: "steps" }, describeSteps(flag)),
        ]),
      ),
    );
    const probeFlag = $("probe-flag");
    const names = Object.keys(deployed.flags);
    if (probeFlag.options.length !== names.length) {
      probeFlag.replaceChildren(...names.map((name) => el("option", { value: name, textContent: name })));
    }
    if (!deployBuilt) {
      const names = new Set(Object.keys(deployed.flags));
      for (const fn of fleet.functions) for (const i of fn.instances) for (const n of Object.keys(i.flags)) names.add(n);
      $("deploy-flags").replaceChildren(
        ...[...names].sort().map((name) =>
          el("label", { textContent: `${name} ` }, [
            el("select", { id: `deploy-${name}`, name }, [
              el("option", { value: "", textContent: "unchanged" }),
              el("option", { value: "true", textContent: "true" }),
              el("option", { value: "false", textContent: "false" }),
            ]),
          ]),
        ),
      );
      deployBuilt = true;
    }
  }

  // A flag defined by rules (docs/targeting.md), one line per rule in order, then the default.
  const operand = (value) => JSON.stringify(value);
  const percent = (weight, total) => `${((100 * weight) / total).toFixed(2).replace(/\.?0+$/, "")} %`;
  function describeRule(name, rule) {
    const conditions = (rule.conditions || []).map((c) => `${c.key} ${c.action} ${operand(c.value)}`);
    const when = conditions.length ? `if ${conditions.join(" and ")}` : "everyone left";
    let serves;
    if (Array.isArray(rule.split)) {
      const total = rule.split.reduce((sum, b) => sum + b.weight, 0);
      serves = "split " + rule.split.map((b) => `${b.variant} ${percent(b.weight, total)} (${operand(b.value)})`).join(" / ");
      if (rule.ramp) {
        serves += `, ramping to ${percent(rule.ramp.weight, total)} from ${time(rule.ramp.start)} to ${time(rule.ramp.end)}`;
      }
    } else {
      serves = operand(rule.when_match);
    }
    return `${name}: ${when} → ${serves}`;
  }
  function describeRules(definition) {
    if (!definition) return [el("span", { className: "muted", textContent: "one value for everyone" })];
    const lines = Object.entries(definition.rules || {}).map(([name, rule]) => el("div", { textContent: describeRule(name, rule) }));
    lines.push(el("div", { className: "muted", textContent: `otherwise ${operand(definition.default)}` }));
    return lines;
  }

  // What a step served: a plain value, or its rules in one line.
  function stepValue(value) {
    if (value === null || typeof value !== "object") return operand(value);
    const rules = Object.entries(value.rules || {}).map(([name, rule]) => describeRule(name, rule));
    return [...rules, `otherwise ${operand(value.default)}`].join("; ");
  }

  // A flag defined by rules (or one that had rules), step by step, newest first: the current
  // definition's stamp, then each previous definition the content keeps (per-user consistency:
  // a user's consistentAt is that of the latest step that changed their value).
  function describeSteps(flag) {
    const previous = Array.isArray(flag.previous) ? flag.previous : [];
    if (!flag.definition && previous.length === 0) return [el("span", { className: "muted", textContent: "–" })];
    const stamp = (s) =>
      `T ${time(s.lastModifiedTimestamp)} · Δ ${s.deploymentDurationSeconds ?? "–"} s · consistentAt ${time(s.consistentAt)}` +
      (s.drainSeconds == null ? "" : ` · drain ${s.drainSeconds} s`);
    const lines = [el("div", { className: "step current", textContent: `now: ${stamp(flag)}` })];
    previous.forEach((step, i) => {
      lines.push(
        el("div", { className: "step previous", textContent: `step −${i + 1}: ${stamp(step)} · ${stepValue(step.value)}` }),
      );
    });
    return lines;
  }

  async function probe(event) {
    event.preventDefault();
    const error = $("probe-error");
    error.hidden = true;
    let context = {};
    const attributes = $("probe-attributes").value.trim();
    try {
      if (attributes) context = JSON.parse(attributes);
      if (typeof context !== "object" || context === null || Array.isArray(context)) throw new Error("not an object");
    } catch (e) {
      error.textContent = `attributes must be a JSON object: ${e.message}`;
      error.hidden = false;
      return;
    }
    const user = $("probe-user").value.trim();
    if (user) context.targetingKey = user;
    try {
      const answer = await post("/local/probe", { flag: $("probe-flag").value, context });
      // Each instance also says this user's own consistency as it computes it now; the
      // deployed content has no clock of its own (–).
      const consistency = (a) =>
        "consistent" in a
          ? [
              el("td", { textContent: a.consistent ? "yes" : "not yet", className: a.consistent ? "" : "stale" }),
              el("td", { textContent: time(a.consistentAt), title: a.consistentAt || "" }),
              el("td", { textContent: time(a.journeyOpensAt), title: a.journeyOpensAt || "" }),
              el("td", { textContent: time(a.changesAt), title: a.changesAt || "" }),
            ]
          : [el("td", { colSpan: 4, className: "muted", textContent: "–" })];
      const rowOf = (where, version, a) =>
        el("tr", {}, [
          el("td", { textContent: where }),
          el("td", { textContent: version }),
          el("td", { textContent: JSON.stringify(a.value), className: a.value === true ? "on" : "off" }),
          el("td", { textContent: a.reason }),
          el("td", { textContent: a.variant }),
          ...consistency(a),
        ]);
      const rows = answer.deployed
        ? [rowOf("deployed", deployedVersion || "–", answer.deployed)]
        : [el("tr", {}, [el("td", { textContent: "deployed" }), el("td", { colSpan: 8, textContent: answer.deployedError })])];
      for (const i of answer.instances) rows.push(rowOf(i.name, i.configurationVersion, i));
      $("probe-result").tBodies[0].replaceChildren(...rows);
      $("probe-result").hidden = false;
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  }

  function row(instance) {
    let entry = rows.get(instance.name);
    if (entry) return entry;
    const cells = {};
    const names = [
      "name", "state", "version", "flag", "consistent", "age", "refresh", "degraded", "polls", "catchUps", "served", "idle",
    ];
    const tr = el(
      "tr",
      {},
      names.map((n) => {
        cells[n] = el("td");
        cells[n].dataset.col = n;
        return cells[n];
      }),
    );
    const button = el("button", { type: "button", className: "secondary" });
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      try {
        await post(`/local/instances/${encodeURIComponent(instance.name)}/${action}`);
        refresh();
      } catch (error) {
        showError(`${action} ${instance.name}: ${error.message}`);
      }
    });
    tr.append(el("td", {}, [button]));
    entry = { row: tr, cells, button, catchUps: null };
    rows.set(instance.name, entry);
    return entry;
  }

  function renderFunctions(fleet) {
    const now = Date.parse(fleet.serverTime);
    const container = $("functions");
    for (const fn of fleet.functions) {
      let table = document.getElementById(`fn-${fn.function}`);
      if (!table) {
        table = el("table", { id: `fn-${fn.function}` }, [
          el("thead", {}, [
            el("tr", {}, [
              ["instance"], ["state"], ["version"], ["isFeatureXEnabled"], ["consistent"], ["last fetch"],
              ["next refresh"], ["degraded"],
              ["polls", "Calls to AppConfigData since the cold start, regular and catch-up"],
              ["catch-ups", "Polls a journey token asked for (rule 8): at most one per Q"],
              ["served"], ["idle"], [""],
            ].map(([h, title]) => el("th", { textContent: h, title: title || "" }))),
          ]),
          el("tbody"),
        ]);
        container.append(el("h3", { textContent: fn.function }), table);
      }
      for (const instance of fn.instances) {
        const entry = row(instance);
        const { row: tr, cells, button } = entry;
        if (!tr.parentNode) table.tBodies[0].append(tr);
        tr.className = instance.state;
        tr.dataset.instance = instance.name;
        const flag = instance.flags.isFeatureXEnabled;
        const v = instance.configurationVersion;
        const latest = v && v === deployedVersion;
        const rolling = v && v === rollingOutVersion;
        cells.name.textContent = instance.name;
        cells.state.textContent =
          instance.state === "starting" ? `starting ${until(instance.startsAt, now)}` : instance.state;
        cells.version.textContent = v
          ? `${shortVersion(v)} ${rolling ? "(new, rolling out)" : latest ? "(deployed)" : "(older)"}`
          : "–";
        cells.version.className = v && !latest && !rolling ? "stale" : rolling ? "rolling" : "";
        cells.flag.textContent = flag ? String(flag.value) : "–";
        cells.flag.className = flag ? (flag.value ? "on" : "off") : "";
        cells.consistent.textContent =
          instance.isBackendConsistent == null ? "–" : instance.isBackendConsistent ? "yes" : "not yet";
        cells.age.textContent = instance.fetchAgeSeconds == null ? "never" : `${instance.fetchAgeSeconds.toFixed(1)} s ago`;
        cells.refresh.textContent =
          instance.nextRefreshAt == null ? "–" : instance.refreshDue ? "due (on next request)" : until(instance.nextRefreshAt, now);
        cells.degraded.textContent = instance.degraded || "no";
        cells.degraded.className = instance.degraded ? "bad" : "";
        const polls = instance.polls;
        cells.polls.textContent = polls ? String(polls.polls) : "–";
        cells.catchUps.textContent = polls ? String(polls.catchUps) : "–";
        // A catch-up since the last refresh of this view: highlighted for a few seconds.
        if (polls && entry.catchUps != null && polls.catchUps > entry.catchUps) {
          cells.catchUps.classList.remove("caught-up");
          void cells.catchUps.offsetWidth; // restarts the highlight
          cells.catchUps.classList.add("caught-up");
        }
        if (polls) entry.catchUps = polls.catchUps;
        cells.served.textContent = String(instance.served);
        cells.idle.textContent = instance.idleSeconds == null ? "–" : `${instance.idleSeconds.toFixed(0)} s`;
        const frozen = instance.state === "frozen";
        button.dataset.action = frozen ? "thaw" : "freeze";
        button.textContent = frozen ? "Thaw" : "Freeze";
        button.disabled = instance.state === "starting";
      }
    }
  }

  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = !message;
  }

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    try {
      const response = await fetch("/local/fleet", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const fleet = await response.json();
      $("summary").textContent =
        `server time ${time(fleet.serverTime)} · P = ${fleet.pollIntervalSeconds} s · ` +
        `Q = ${fleet.catchUpIntervalSeconds} s · ε = ${fleet.epsilonSeconds} s · ` +
        "consistentAt = T + Δ + P + ε · journeyOpensAt = T + Δ + Q + ε";
      renderDeployed(fleet);
      renderFunctions(fleet);
      showError("");
      charts.fleet(fleet);
    } catch (error) {
      showError(`Can't read the fleet: ${error.message}`);
    }
    timer = setTimeout(refresh, 1000);
  }

  $("probe-form").addEventListener("submit", probe);
  $("deploy-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const flags = {};
    for (const select of $("deploy-flags").querySelectorAll("select")) {
      if (select.value) flags[select.name] = select.value === "true";
    }
    const strategy = $("strategy").value;
    const result = $("deploy-result");
    const request = { flags, strategy };
    const drain = $("drain").value.trim();
    if (drain) {
      const seconds = Number(drain);
      if (!Number.isInteger(seconds) || seconds < 0) {
        result.className = "error";
        result.textContent = "Refused: the drain time is a whole number of seconds.";
        return;
      }
      request.drainSeconds = seconds;
    }
    try {
      const deployment = await post("/local/deployments", request);
      const changed = Object.entries(deployment.flags)
        .filter(([name]) => name in flags)
        .map(([name, f]) => {
          const parts = [f.change];
          if (f.journeyOpensAt && f.value) parts.push(`journeys open at ${time(f.journeyOpensAt)}`);
          parts.push(`consistent at ${time(f.consistentAt)}`);
          if (f.drainEndsAt) parts.push(`journeys in flight may finish until ${time(f.drainEndsAt)}`);
          return `${name}=${f.value} (${parts.join(", ")})`;
        });
      result.className = "";
      result.textContent =
        `Deployed at ${time(deployment.lastModifiedTimestamp)} with ${deployment.strategy.name}: ${changed.join(", ")}.`;
      result.dataset.deployedAt = deployment.lastModifiedTimestamp;
      charts.deployed(deployment);
      $("drain").value = ""; // a drain time belongs to one deployment
      refresh();
    } catch (error) {
      result.className = "error";
      result.textContent = `Refused: ${error.message}`;
    }
  });

  $("stop").addEventListener("click", async () => {
    const result = $("deploy-result");
    try {
      const stopped = await post("/local/deployments/stop");
      result.className = "";
      result.textContent = `Deployment ${stopped.deploymentNumber} stopped: ${stopped.state}.`;
      refresh();
    } catch (error) {
      result.className = "error";
      result.textContent = `Stop refused: ${error.message}`;
    }
  });

  refresh();
})();
