// Lockstep's SPA: reads GET /config and offers journey X only when the flag is enabled AND the
// backend is consistent. While the flag is enabled but not yet consistent it says when the
// journey opens and re-checks once, at that moment (no tight polling); otherwise it re-reads
// /config every P so a flag switched off disappears. A 503 or a network failure mid-journey is
// shown as a message, never a broken page. All text goes through textContent.
"use strict";

(() => {
  const API = String(window.LOCKSTEP_API || "").replace(/\/+$/, "");
  const FLAG = "isFeatureXEnabled";
  const INSTANCE_HEADER = "x-lockstep-instance";
  const $ = (id) => document.getElementById(id);
  const app = $("app");

  const user = userId();
  let config = null; // the last /config body, with the browser's clock offset to the server's
  let availability = "loading";
  let decision = { availability: "loading" }; // what the last /config said about journey X
  let nextCheckAt = null; // when the next /config read is scheduled (browser clock)
  let view = "home";
  let checkTimer = null;
  let ticker = null;
  let unconfirmedChecks = 0;
  let unreachableChecks = 0;
  let journey = null; // { id, body } of the journey in progress
  let submitting = false;

  // ---- helpers ----------------------------------------------------------------------------

  function randomHex(bytes) {
    const values = new Uint8Array(bytes);
    crypto.getRandomValues(values);
    return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function userId() {
    const valid = (id) => typeof id === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(id);
    try {
      let id = localStorage.getItem("lockstep.userId");
      if (!valid(id)) {
        id = "user-" + randomHex(8);
        localStorage.setItem("lockstep.userId", id);
      }
      return id;
    } catch (_) {
      return "user-" + randomHex(8); // storage disabled: one id for this page's life
    }
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], {
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hour12: false,
    });
  }

  function seconds(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    return s === 1 ? "1 second" : `${s} seconds`;
  }

  // The server's clock now, from the offset measured at the last /config.
  function serverNow() {
    return config ? Date.now() + config.offsetMs : Date.now();
  }

  function pollMs() {
    const p = Number(config && config.pollIntervalSeconds);
    return (Number.isFinite(p) && p >= 15 ? p : 45) * 1000;
  }

  class NetworkError extends Error {}

  // One API call: the parsed JSON (or null), the status and the instance that served it.
  async function call(method, path, body, headers) {
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers: body === undefined ? headers : { "Content-Type": "application/json", ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (error) {
      throw new NetworkError(String(error && error.message ? error.message : error));
    }
    let data = null;
    try {
      const text = await response.text();
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    const retryAfter = Number.parseInt(response.headers.get("retry-after") || "", 10);
    return {
      status: response.status,
      ok: response.ok,
      data,
      instance: response.headers.get(INSTANCE_HEADER),
      retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : null,
    };
  }

  // ---- availability -------------------------------------------------------------------------

  // What /config says about journey X.
  function decide(cfg) {
    if (!cfg || cfg[FLAG] !== true) return { availability: "closed" };
    if (cfg.isBackendConsistent === true) return { availability: "open" };
    const at = Date.parse(cfg.consistentAt || "");
    const now = Date.parse(cfg.serverTime || "");
    if (Number.isFinite(at) && Number.isFinite(now) && at > now) {
      return { availability: "waiting", at, inMs: at - now };
    }
    // Degraded or unstamped: this server cannot vouch for the others.
    return { availability: "unconfirmed" };
  }

  async function checkConfig() {
    clearTimeout(checkTimer);
    let result;
    try {
      result = await call("GET", "/config");
    } catch (_) {
      result = null;
    }
    if (!result || !result.ok || !result.data || typeof result.data !== "object") {
      unreachableChecks += 1;
      availability = "unreachable";
      // 2 s, 4 s, 8 s … up to P.
      const delay = Math.min(pollMs(), 1000 * 2 ** Math.min(unreachableChecks, 6));
      nextCheckAt = Date.now() + delay;
      render();
      checkTimer = setTimeout(checkConfig, delay);
      return;
    }
    unreachableChecks = 0;
    const receivedAt = Date.now();
    const serverTime = Date.parse(result.data.serverTime || "");
    config = {
      ...result.data,
      instance: result.instance,
      offsetMs: Number.isFinite(serverTime) ? serverTime - receivedAt : 0,
    };
    decision = decide(config);
    availability = decision.availability;
    let delay;
    if (decision.availability === "waiting") {
      // The one re-check: just after consistentAt, measured on the server's clock.
      unconfirmedChecks = 0;
      delay = decision.inMs + 500;
    } else if (decision.availability === "unconfirmed") {
      unconfirmedChecks += 1;
      delay = Math.min(pollMs(), 1000 * 2 ** Math.min(unconfirmedChecks, 6));
    } else {
      // Slow refresh, so a flag switched off (or on) shows within about two P.
      unconfirmedChecks = 0;
      delay = pollMs();
    }
    nextCheckAt = Date.now() + delay;
    render();
    checkTimer = setTimeout(checkConfig, delay);
  }

  function render() {
    app.dataset.availability = availability;
    app.dataset.view = view;
    const text = $("status-text");
    const opens = $("opens");
    clearInterval(ticker);
    opens.hidden = true;
    switch (availability) {
      case "loading":
        text.textContent = "Checking which journeys are open…";
        break;
      case "open":
        text.textContent = "Journey X is open.";
        break;
      case "closed":
        text.textContent = "Journey X is not available right now.";
        break;
      case "waiting": {
        const at = decision.at;
        text.textContent = "Journey X has been switched on and is being rolled out to every server.";
        const time = $("opens-at");
        time.dateTime = new Date(at).toISOString();
        time.textContent = clock(at);
        const tick = () => {
          const left = at - serverNow();
          $("opens-in").textContent = left > 0 ? `(in ${seconds(left)})` : "(any moment now)";
        };
        tick();
        ticker = setInterval(tick, 1000); // the countdown only; no request
        opens.hidden = false;
        break;
      }
      case "unconfirmed":
        text.textContent =
          "Journey X has been switched on, but the server cannot yet confirm that every server " +
          `serves it. Checking again at ${clock(nextCheckAt)}.`;
        break;
      case "unreachable":
        text.textContent = `Can't reach the service right now. Checking again at ${clock(nextCheckAt)}.`;
        break;
      default:
        break;
    }
    $("start").hidden = !(availability === "open" && view === "home");
    renderMeta();
  }

  function renderMeta() {
    const parts = [`You are ${user}.`];
    if (config) {
      parts.push(`Configuration ${config.configurationVersion || "?"}`);
      if (config.instance) parts.push(`read from ${config.instance}`);
      parts.push(`P = ${pollMs() / 1000} s`);
      if (config.degraded) parts.push(`degraded: ${config.degraded}`);
    }
    $("meta").textContent = parts.join(" · ");
  }

  // ---- the journey --------------------------------------------------------------------------

  function show(next) {
    view = next;
    for (const id of ["journey", "confirmation", "problem"]) $(id).hidden = id !== next;
    render();
  }

  async function start() {
    // The page may have been open a while: ask the backend again before opening the journey.
    await checkConfig();
    if (availability !== "open") return;
    journey = { id: "journey-" + randomHex(8), body: null };
    $("form").reset();
    $("form-error").hidden = true;
    $("submit").disabled = false;
    $("submit").textContent = "Submit";
    $("history").textContent = "Looking up your earlier submissions…";
    show("journey");
    let result;
    try {
      result = await call("GET", `/feature-x/submissions?userId=${encodeURIComponent(user)}&limit=100`);
    } catch (_) {
      $("history").textContent = "Couldn't load your earlier submissions; you can still submit.";
      return;
    }
    if (result.ok && result.data && Array.isArray(result.data.items)) {
      const n = result.data.items.length;
      const count = result.data.nextCursor ? `${n} or more` : String(n);
      $("history").textContent = `You have ${count} earlier submission${n === 1 ? "" : "s"}.`;
    } else if (result.status === 503) {
      failed(result, start);
    } else {
      $("history").textContent = "";
    }
  }

  function readForm() {
    const quantity = Number($("quantity").value);
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > 10) {
      return { error: "Quantity must be a whole number from 1 to 10." };
    }
    const note = $("note").value.trim();
    const body = { userId: user, journeyId: journey.id, plan: $("plan").value, quantity };
    if (note) body.note = note;
    return { body };
  }

  async function submit(event) {
    if (event) event.preventDefault();
    if (submitting || !journey) return;
    if (!journey.body) {
      const { body, error } = readForm();
      if (error) {
        $("form-error").textContent = error;
        $("form-error").hidden = false;
        return;
      }
      journey.body = body;
    }
    submitting = true;
    $("submit").disabled = true;
    $("submit").textContent = "Submitting…";
    try {
      // The journey id is the idempotency key: a retry never stores a second submission.
      const result = await call("POST", "/feature-x/submissions", journey.body, {
        "Idempotency-Key": journey.id,
      });
      if (result.status === 201 || result.status === 200) {
        await confirm(result);
      } else {
        failed(result, submit);
      }
    } catch (error) {
      if (!(error instanceof NetworkError)) throw error;
      problem(
        "Can't reach the service",
        "Your submission may not have been sent. Trying again is safe: it goes with the same " +
          "idempotency key, so it is never stored twice.",
        submit,
      );
    } finally {
      submitting = false;
    }
  }

  async function confirm(created) {
    const submission = created.data || {};
    $("confirmation-id").textContent = submission.id || "?";
    $("confirmation-plan").textContent = submission.plan || "?";
    $("confirmation-quantity").textContent = String(submission.quantity ?? "?");
    $("confirmation-created").textContent = submission.createdAt
      ? new Date(submission.createdAt).toLocaleString()
      : "?";
    const served = [created.instance && `stored by ${created.instance}`];
    let note = "";
    try {
      const read = await call(
        "GET",
        `/feature-x/submissions/${encodeURIComponent(submission.id || "")}?userId=${encodeURIComponent(user)}`,
      );
      if (read.ok) served.push(read.instance && `read back from ${read.instance}`);
      else note = "It is stored, but could not be read back just now.";
    } catch (_) {
      note = "It is stored, but could not be read back just now (network).";
    }
    const by = served.filter(Boolean).join(", ");
    $("confirmation-note").textContent = [by && `Your submission was ${by}.`, note]
      .filter(Boolean)
      .join(" ");
    journey = null;
    show("confirmation");
  }

  // A refused call mid-journey, told as what it means for the user.
  function failed(result, retry) {
    const type = result.data && typeof result.data.type === "string" ? result.data.type : "";
    const after = result.retryAfterSeconds;
    const when = after ? ` Try again after ${clock(Date.now() + after * 1000)}.` : "";
    if (result.status === 503 && type.endsWith(":feature-disabled")) {
      problem(
        "Journey X has just been switched off",
        "The service answered 503: journey X is disabled on the server that took your request. " +
          "Nothing was saved." + when,
        retry,
      );
      checkConfig(); // the start page should reflect it
    } else if (result.status === 503) {
      problem("The service is busy", "The service answered 503. Nothing was saved." + when, retry);
    } else if (result.status >= 400 && result.status < 500) {
      const detail = result.data && result.data.detail ? String(result.data.detail) : "";
      problem("The service refused this request", detail || `HTTP ${result.status}.`, null);
    } else {
      problem(
        "Something went wrong on the server",
        `The service answered ${result.status}. Nothing is lost on this page; try again later.`,
        retry,
      );
    }
  }

  function problem(title, text, retry) {
    $("problem-title").textContent = title;
    $("problem-text").textContent = text;
    const button = $("retry");
    button.hidden = !retry;
    button.onclick = retry
      ? () => {
          show(journey ? "journey" : "home");
          retry();
        }
      : null;
    show("problem");
  }

  function home() {
    journey = null;
    show("home");
    checkConfig();
  }

  // ---- wiring -------------------------------------------------------------------------------

  $("start").addEventListener("click", () => start());
  $("form").addEventListener("submit", submit);
  $("cancel").addEventListener("click", home);
  $("done").addEventListener("click", home);
  $("back").addEventListener("click", home);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && view === "home") checkConfig();
  });
  // Whatever happens, the page stays usable.
  const broken = () =>
    problem("Something went wrong in this page", "Nothing was lost on the server. Go back to start.", null);
  window.addEventListener("error", broken);
  window.addEventListener("unhandledrejection", broken);

  render();
  checkConfig();
})();
