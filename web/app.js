// Lockstep's SPA: reads GET /config and offers journey X only when the flag is enabled and every
// server is ready for it.
//
// - Servers that hand out a journey token (rule 8): the journey opens once the server's clock
//   reaches the flag's `journeyOpensAt` (T + Δ + Q + ε). The token of the answer the journey
//   opened with is kept for the journey's life and sent as the `Lockstep-Journey` header on every
//   feature call of it (never a later one: a journey in flight when the flag is switched off with
//   a drain time keeps the token it opened with, and may finish). A server behind the token
//   catches up before deciding.
// - Older servers (no token): the journey opens when `isBackendConsistent` is true, or at
//   `consistentAt` (T + Δ + P + ε).
// - Answers are read newest first: an answer whose stamp is older than the one held comes from an
//   instance that has not polled yet, and is set aside until the newer one's `consistentAt` (by
//   then every instance holds it; an older stamp after that is a rollback, and is taken).
//
// While the flag is enabled but the journey not yet open it says when the journey opens and
// re-checks once, at that moment (no tight polling); otherwise it re-reads /config every P so a
// flag switched off disappears. A 503 (kill switch, drain over, a server still catching up, with
// the problem's `reason` and `Retry-After`) or a network failure mid-journey is shown as a
// message, never a broken page. All text goes through textContent.
//
// Feature calls carry the signed-in user's bearer token (the HTTP API's JWT authorizer, or the
// local runner playing it, refuses them without one); the user is the token's subject, so no
// request names a user. Locally the page signs in with the runner's dev issuer (a user name, no
// password); in AWS `window.LOCKSTEP_AUTH` (config.js) supplies the token of your OIDC client.
// A 401 mid-journey signs the page out and says so. The token is kept in localStorage (every
// tab of this origin is signed in, as with Amplify's default storage) and never shown or logged.
"use strict";

(() => {
  const API = String(window.LOCKSTEP_API || "").replace(/\/+$/, "");
  const FLAG = "isFeatureXEnabled";
  const INSTANCE_HEADER = "x-lockstep-instance";
  const JOURNEY_HEADER = "Lockstep-Journey";
  const $ = (id) => document.getElementById(id);
  const app = $("app");

  const AUTH =
    window.LOCKSTEP_AUTH && typeof window.LOCKSTEP_AUTH.token === "function" ? window.LOCKSTEP_AUTH : null;
  const SESSION_KEY = "lockstep.session";
  let session = loadSession(); // local sign-in: { user, token, expiresAt } (browser clock, ms)
  let externalUser = null; // with LOCKSTEP_AUTH: the user it reports
  let config = null; // the /config body in use (the newest seen), with its instance and receipt time
  let offsetMs = 0; // the server's clock minus the browser's, from the last /config answer
  let setAside = null; // the last older answer set aside: { instance, version }
  // A feature server refused a journey's token as switched off: answers stamped no later than the
  // configuration that journey opened with are out of date, for P (then every instance has polled).
  let refuted = null; // { stamp, until } (server clock)
  let availability = "loading";
  let decision = { availability: "loading" }; // what the last /config said about journey X
  let nextCheckAt = null; // when the next /config read is scheduled (browser clock)
  let view = "home";
  let checkTimer = null;
  let ticker = null;
  let unconfirmedChecks = 0;
  let unreachableChecks = 0;
  let journey = null; // { id, body, token } of the journey in progress (token: what it opened with)
  let submitting = false;
  let problemTimer = null;

  // ---- helpers ----------------------------------------------------------------------------

  function randomHex(bytes) {
    const values = new Uint8Array(bytes);
    crypto.getRandomValues(values);
    return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function validUser(id) {
    return typeof id === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(id);
  }

  // The user name the sign-in form suggests: the last one used on this browser, or a new one.
  function suggestedUser() {
    const valid = validUser;
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

  function loadSession() {
    try {
      const saved = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
      if (
        saved &&
        validUser(saved.user) &&
        typeof saved.token === "string" &&
        Number.isFinite(saved.expiresAt) &&
        saved.expiresAt > Date.now() + 30_000
      ) {
        return saved;
      }
    } catch (_) {
      // storage disabled or garbage: signed out
    }
    return null;
  }

  function saveSession(next) {
    session = next;
    try {
      if (next) localStorage.setItem(SESSION_KEY, JSON.stringify(next));
      else localStorage.removeItem(SESSION_KEY);
    } catch (_) {
      // storage disabled: the session lives as long as this page
    }
  }

  function signedInUser() {
    if (AUTH) return externalUser;
    if (session && session.expiresAt <= Date.now()) saveSession(null);
    return session ? session.user : null;
  }

  // The Authorization header of a feature call, when signed in.
  async function bearer() {
    let token = null;
    if (AUTH) {
      try {
        token = await AUTH.token();
      } catch (_) {
        token = null;
      }
    } else if (signedInUser()) {
      token = session.token;
    }
    return typeof token === "string" && token ? { Authorization: `Bearer ${token}` } : {};
  }

  async function signIn(event) {
    if (event) event.preventDefault();
    const error = $("signin-error");
    error.hidden = true;
    if (AUTH) {
      if (typeof AUTH.signIn === "function") AUTH.signIn();
      return;
    }
    const name = $("signin-user").value.trim();
    if (!validUser(name)) {
      error.textContent = "A user name is 1 to 64 letters, digits, '_' or '-'.";
      error.hidden = false;
      return;
    }
    $("signin").disabled = true;
    try {
      const result = await call("POST", "/local/auth/sign-in", { user: name });
      const data = result.data || {};
      if (result.ok && typeof data.accessToken === "string" && Number.isFinite(data.expiresIn)) {
        saveSession({ user: data.user, token: data.accessToken, expiresAt: Date.now() + data.expiresIn * 1000 });
        try {
          localStorage.setItem("lockstep.userId", data.user);
        } catch (_) {
          // storage disabled
        }
      } else {
        error.textContent =
          result.status === 404
            ? "This server has no local sign-in: configure LOCKSTEP_AUTH (config.js)."
            : data.detail
              ? String(data.detail)
              : `Sign-in failed (HTTP ${result.status}).`;
        error.hidden = false;
      }
    } catch (_) {
      error.textContent = "Can't reach the service to sign in.";
      error.hidden = false;
    } finally {
      $("signin").disabled = false;
    }
    render();
  }

  function signOut() {
    if (AUTH) {
      if (typeof AUTH.signOut === "function") AUTH.signOut();
      return;
    }
    saveSession(null);
    journey = null;
    show("home");
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
    return Date.now() + offsetMs;
  }

  function time(value) {
    const ms = Date.parse(value || "");
    return Number.isFinite(ms) ? ms : null;
  }

  function pollMs() {
    const p = Number(config && config.pollIntervalSeconds);
    return (Number.isFinite(p) && p >= 15 ? p : 45) * 1000;
  }

  class NetworkError extends Error {}

  // The headers of a feature call of `of` (a journey): its token, when it opened with one.
  function journeyHeaders(of, headers) {
    return of && of.token ? { ...headers, [JOURNEY_HEADER]: of.token } : headers;
  }

  // One API call: the parsed JSON (or null), the status and the instance that served it.
  async function call(method, path, body, headers) {
    let response;
    // Only feature calls carry the token: /config is public.
    const auth = path.startsWith("/feature-x/") ? await bearer() : {};
    headers = { ...headers, ...auth };
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

  // The journey token of an answer, if its server hands them out.
  function tokenOf(cfg) {
    return typeof cfg.journeyToken === "string" && cfg.journeyToken ? cfg.journeyToken : null;
  }

  // When journey X may open for a client that sends the token: the flag's own journeyOpensAt
  // (a deployment of other flags does not move it), else the top-level one. None from a
  // degraded server: it cannot vouch for anything.
  function journeyOpensAt(cfg) {
    if (cfg.degraded) return null;
    const flag = cfg.flags && typeof cfg.flags === "object" ? cfg.flags[FLAG] : null;
    return time(flag && flag.journeyOpensAt) ?? time(cfg.journeyOpensAt);
  }

  // What /config says about journey X at `now` (the server's clock).
  function decide(cfg, now) {
    if (!cfg || cfg[FLAG] !== true) return { availability: "closed" };
    if (refuted && now < refuted.until && (time(cfg.lastModifiedTimestamp) ?? -Infinity) <= refuted.stamp) {
      return { availability: "closed" };
    }
    const token = tokenOf(cfg);
    const opensAt = token ? journeyOpensAt(cfg) : null;
    if (opensAt !== null) {
      if (now >= opensAt) return { availability: "open", token };
      return { availability: "waiting", at: opensAt, inMs: opensAt - now, token };
    }
    // A server without tokens (or one that cannot vouch): every instance must hold the value.
    if (cfg.isBackendConsistent === true) return { availability: "open", token: null };
    const at = time(cfg.consistentAt);
    if (at !== null && at > now) {
      return { availability: "waiting", at, inMs: at - now, token: null };
    }
    // Degraded or unstamped: this server cannot vouch for the others.
    return { availability: "unconfirmed" };
  }

  // Whether `answer` (just received) replaces the answer held. An answer stamped before the one
  // held most likely comes from an instance that has not polled since that deployment: it is set
  // aside, but only until every instance must hold the newer version (its consistentAt) and at
  // most P after the newer one was last received (an instance that had it then polls within P):
  // an older stamp after that is a rollback (rule 7), and is taken.
  function newerOrDue(answer, now) {
    if (!config) return true;
    const held = time(config.lastModifiedTimestamp);
    const got = time(answer.lastModifiedTimestamp);
    if (held === null || got === null || got >= held) return true;
    const until = Math.min(time(config.consistentAt) ?? Infinity, config.receivedAt + pollMs());
    return now >= until;
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
    const serverTime = time(result.data.serverTime);
    if (serverTime !== null) offsetMs = serverTime - Date.now();
    const now = serverNow();
    if (newerOrDue(result.data, now)) {
      config = { ...result.data, instance: result.instance, receivedAt: now };
      setAside = null;
    } else {
      setAside = { instance: result.instance, version: result.data.configurationVersion };
    }
    decision = decide(config, now);
    availability = decision.availability;
    let delay;
    if (decision.availability === "waiting") {
      // The one re-check: just after journeyOpensAt (or consistentAt), on the server's clock.
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
    const inJourney = journey !== null && view === "journey";
    switch (availability) {
      case "loading":
        text.textContent = "Checking which journeys are open…";
        break;
      case "open":
        text.textContent = "Journey X is open.";
        break;
      case "closed":
        text.textContent = inJourney
          ? "Journey X is closed to new journeys. The one you started can still be submitted " +
            "while the service allows it."
          : "Journey X is not available right now.";
        break;
      case "waiting": {
        const at = decision.at;
        text.textContent = "Journey X has been switched on and is being rolled out to every server.";
        const shown = $("opens-at");
        shown.dateTime = new Date(at).toISOString();
        shown.textContent = clock(at);
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
    const user = signedInUser();
    app.dataset.signedIn = user ? "true" : "false";
    $("signin-form").hidden = Boolean(user);
    $("signed-in").hidden = !user;
    $("signed-in-as").textContent = user || "";
    if (!user && availability === "open") text.textContent = "Journey X is open. Sign in to start it.";
    $("start").hidden = !(availability === "open" && view === "home" && user);
    renderMeta();
  }

  function renderMeta() {
    const user = signedInUser();
    const parts = [user ? `Signed in as ${user}.` : "Not signed in."];
    if (config) {
      parts.push(`Configuration ${config.configurationVersion || "?"}`);
      if (config.instance) parts.push(`read from ${config.instance}`);
      if (setAside) {
        parts.push(`${setAside.instance || "a server"} still served ${setAside.version || "an older version"}`);
      }
      parts.push(`P = ${pollMs() / 1000} s`);
      if (config.degraded) parts.push(`degraded: ${config.degraded}`);
    }
    $("meta").textContent = parts.join(" · ");
  }

  // ---- the journey --------------------------------------------------------------------------

  function show(next) {
    if (next !== "problem") clearInterval(problemTimer);
    view = next;
    for (const id of ["journey", "confirmation", "problem"]) $(id).hidden = id !== next;
    render();
  }

  async function start() {
    // The page may have been open a while: ask the backend again before opening the journey.
    await checkConfig();
    if (availability !== "open") return;
    // The token is captured now, as the journey opens, and kept for the whole journey.
    journey = {
      id: "journey-" + randomHex(8),
      body: null,
      token: decision.token || null,
      stamp: time(config.lastModifiedTimestamp),
    };
    const opened = journey;
    $("form").reset();
    $("form-error").hidden = true;
    $("submit").disabled = false;
    $("submit").textContent = "Submit";
    $("history").textContent = "Looking up your earlier submissions…";
    show("journey");
    let result;
    try {
      result = await call(
        "GET",
        "/feature-x/submissions?limit=100",
        undefined,
        journeyHeaders(opened),
      );
    } catch (_) {
      $("history").textContent = "Couldn't load your earlier submissions; you can still submit.";
      return;
    }
    if (result.ok && result.data && Array.isArray(result.data.items)) {
      const n = result.data.items.length;
      const count = result.data.nextCursor ? `${n} or more` : String(n);
      $("history").textContent = `You have ${count} earlier submission${n === 1 ? "" : "s"}.`;
    } else if (result.status === 503 || result.status === 401) {
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
    const body = { journeyId: journey.id, plan: $("plan").value, quantity };
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
      const result = await call(
        "POST",
        "/feature-x/submissions",
        journey.body,
        journeyHeaders(journey, { "Idempotency-Key": journey.id }),
      );
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
    const opened = journey;
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
        `/feature-x/submissions/${encodeURIComponent(submission.id || "")}`,
        undefined,
        journeyHeaders(opened),
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
    const data = result.data && typeof result.data === "object" ? result.data : {};
    const type = typeof data.type === "string" ? data.type : "";
    const reason = typeof data.reason === "string" ? data.reason : "";
    const after = result.retryAfterSeconds;
    const retryAt = after ? Date.now() + after * 1000 : null;
    const when = retryAt ? ` Try again after ${clock(retryAt)}.` : "";
    if (result.status === 401) {
      // No token, or one the authorizer refused (expired): sign in again; nothing was saved.
      if (!AUTH) saveSession(null);
      journey = null;
      problem(
        "Please sign in again",
        "Your sign-in is missing or has expired, so the service refused the request. Nothing " +
          "was saved. Sign in and start journey X again.",
        null,
        { status: 401 },
      );
      return;
    }
    if (result.status === 503 && type.endsWith(":feature-disabled")) {
      const facts = { status: 503, reason, retryAfterSeconds: after };
      if (reason === "behind") {
        // Not a switch-off: the server has not caught up with the configuration this journey
        // opened with, and may ask for it in Retry-After seconds. Retrying then is safe.
        problem(
          "The server is still catching up",
          "The server that took your request has not caught up with journey X yet. Nothing was " +
            "saved." + when,
          retry,
          { ...facts, retryAt },
        );
        return;
      }
      if (reason === "drain-ended") {
        problem(
          "Journey X has been switched off",
          "Journey X was switched off, and the time given to journeys already under way to " +
            "finish is over. Nothing was saved.",
          null,
          facts,
        );
      } else if (journey && journey.token) {
        // With the journey's token, "disabled" is a switch-off without drain (a kill switch):
        // retrying cannot help.
        problem(
          "Journey X has just been switched off",
          "The service answered 503: journey X has been switched off on the server that took " +
            "your request. Nothing was saved. The journey is offered again once it is switched " +
            "back on.",
          null,
          { ...facts, reasonText: "disabled (switched off without a drain: a kill switch)" },
        );
      } else {
        problem(
          "Journey X has just been switched off",
          "The service answered 503: journey X is disabled on the server that took your " +
            "request. Nothing was saved." + when,
          retry,
          facts,
        );
      }
      // With a token, "disabled" (or "drain-ended") proves a switch-off newer than the
      // configuration this journey opened with (an instance behind the token says "behind"):
      // an instance still answering /config with that configuration has not polled since.
      if (journey && journey.token && journey.stamp !== null) {
        refuted = { stamp: journey.stamp, until: serverNow() + pollMs() };
      }
      checkConfig(); // the start page should reflect it
    } else if (result.status === 503) {
      problem("The service is busy", "The service answered 503. Nothing was saved." + when, retry, {
        status: 503,
        retryAfterSeconds: after,
      });
    } else if (result.status >= 400 && result.status < 500) {
      const detail = data.detail ? String(data.detail) : "";
      problem("The service refused this request", detail || `HTTP ${result.status}.`, null, {
        status: result.status,
      });
    } else {
      problem(
        "Something went wrong on the server",
        `The service answered ${result.status}. Nothing is lost on this page; try again later.`,
        retry,
        { status: result.status },
      );
    }
  }

  const REASONS = {
    disabled: "disabled (the flag is off on that server)",
    "drain-ended": "drain-ended (the flag is off and the drain is over)",
    behind: "behind (this server has not caught up yet)",
  };

  // Shows a problem; `facts` (status, reason and its reasonText, retryAfterSeconds, retryAt) are
  // told in a line of their own. With retryAt, the retry button waits for it, counting down.
  function problem(title, text, retry, facts = {}) {
    clearInterval(problemTimer);
    $("problem-title").textContent = title;
    $("problem-text").textContent = text;
    const card = $("problem");
    card.dataset.status = facts.status ? String(facts.status) : "";
    card.dataset.reason = facts.reason || "";
    const line = [];
    if (facts.status) line.push(`HTTP ${facts.status}`);
    if (facts.reason) line.push(`reason: ${facts.reasonText || REASONS[facts.reason] || facts.reason}`);
    if (facts.retryAfterSeconds) line.push(`Retry-After: ${seconds(facts.retryAfterSeconds * 1000)}`);
    $("problem-facts").textContent = line.join(" · ");
    $("problem-facts").hidden = line.length === 0;
    const button = $("retry");
    button.hidden = !retry;
    button.disabled = false;
    button.textContent = "Try again";
    button.onclick = retry
      ? () => {
          show(journey ? "journey" : "home");
          retry();
        }
      : null;
    if (retry && facts.retryAt) {
      const tick = () => {
        const left = facts.retryAt - Date.now();
        button.disabled = left > 0;
        button.textContent = left > 0 ? `Try again (in ${seconds(left)})` : "Try again";
        if (left <= 0) clearInterval(problemTimer);
      };
      tick();
      problemTimer = setInterval(tick, 1000);
    }
    show("problem");
  }

  function home() {
    journey = null;
    show("home");
    checkConfig();
  }

  // ---- wiring -------------------------------------------------------------------------------

  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("signin-user").value = suggestedUser();
  if (AUTH && typeof AUTH.user === "function") {
    Promise.resolve(AUTH.user())
      .then((name) => {
        externalUser = typeof name === "string" && name ? name : null;
        render();
      })
      .catch(() => render());
  }
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
