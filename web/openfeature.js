// Journey X on the standard OpenFeature web SDK: the same journey as app.js, but the page asks
// `@openfeature/web-sdk` with `@openfeature/ofrep-web-provider` (OFREP, the OpenFeature Remote
// Evaluation Protocol), not GET /config, whether journey X is open.
//
// - The provider evaluates every flag in one `POST /ofrep/v1/evaluate/flags` (If-None-Match with
//   the last ETag; 304 when nothing changed), caches the answer, and polls it every POLL_MS; an
//   evaluation is a synchronous read of that cache. The server's value for `isFeatureXEnabled` is
//   *journey-safe*: true only when the flag is on and the journey may open, so the page opens the
//   journey exactly when the SDK says true, with no consistency rule of its own.
// - Its requests carry the journey token of the last answer (`Lockstep-Journey`): the server
//   then opens journeys at `journeyOpensAt` (T + Δ + Q + ε) rather than `consistentAt`, and an
//   instance behind the token catches up (or answers 429) instead of handing back an older value.
// - What the page adds, from the flag's metadata: while the flag is on but the journey not yet
//   open, it says when it opens (`opensAt`) and asks the provider to evaluate again at that
//   moment (a context change: the provider has no public refresh and never reads metadata
//   itself), instead of waiting for the next poll.
// - A journey opens with a fresh evaluation of its own (`POST /ofrep/v1/evaluate/flags/{key}`):
//   the provider keeps the token of the last *changed* answer (a 304 carries none), which can be
//   hours old, and a token older than a switch-off's drain does not let its journey finish. The
//   journey keeps that token and sends it as `Lockstep-Journey` on every feature call of the
//   journey (rules 8 and 9, as app.js).
// - The user signs in (`POST /local/auth/sign-in` on the local runner; in AWS, config.js's
//   LOCKSTEP_AUTH, as for app.js) and feature calls carry `Authorization: Bearer <token>`; the
//   user is then the token's, never named in a request. Where there is no sign-in endpoint (404),
//   the page sends no header and names the user in the request, as the SPA did before
//   authentication.
//
// Provider behaviours this relies on, and the ones that surprised: docs/openfeature.md, "The SPA
// on the OpenFeature web SDK". All text goes through textContent.
import { OFREPWebProvider, OpenFeature, ProviderEvents, ProviderStatus } from "./vendor/openfeature.js";

const API = String(window.LOCKSTEP_API || "").replace(/\/+$/, "");
// The provider needs an absolute base URL to build its requests from ("" is the page's origin).
const BASE_URL = API || window.location.origin;
const FLAG = "isFeatureXEnabled";
const JOURNEY_HEADER = "Lockstep-Journey";
const INSTANCE_HEADER = "x-lockstep-instance";
// The provider's poll interval. It does not poll unless told to (OFREP ADR-0010); 15 s is Q,
// AppConfigData's minimum poll interval: no server instance refreshes faster than that.
const POLL_MS = 15_000;
// Shared with app.js: a user signed in on one page of this origin is signed in on the other.
const USER_KEY = "lockstep.userId";
const SESSION_KEY = "lockstep.session"; // { user, token, expiresAt (browser clock, ms) }
// In AWS, config.js's LOCKSTEP_AUTH hands out the OIDC client's token (as for app.js).
const AUTH =
  window.LOCKSTEP_AUTH && typeof window.LOCKSTEP_AUTH.token === "function" ? window.LOCKSTEP_AUTH : null;
const $ = (id) => document.getElementById(id);
const app = $("app");

let session = null; // { user, accessToken (null: none to send), expiresAt }
let signingIn = null; // the sign-in in progress (a promise)
let provider = null;
let client = null;
let offsetMs = 0; // the server's clock minus the browser's, from the last OFREP answer's Date
let lastOfrep = null; // { status, instance, at, etag } of the provider's last request
let revalidated = 0; // 304 answers the provider received (If-None-Match matched)
let availability = "loading";
let decision = { availability: "loading" };
let view = "home";
let journey = null; // { id, body, token } of the journey in progress (token: what it opened with)
let submitting = false;
let recheck = { timer: null, key: null, attempts: 0 };
let retryTimer = null;
let retries = 0;
let ticker = null;
let problemTimer = null;

// ---- helpers ------------------------------------------------------------------------------

function randomHex(bytes) {
  const values = new Uint8Array(bytes);
  crypto.getRandomValues(values);
  return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
}

const validUser = (name) => typeof name === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(name);

// The user name to sign in with: the last one used on this browser, or a new one (kept).
let suggested = null;
function rememberedUser() {
  try {
    const name = localStorage.getItem(USER_KEY);
    if (validUser(name)) return name;
  } catch (_) {
    // storage disabled
  }
  suggested = suggested || "user-" + randomHex(6);
  return suggested;
}

function savedSession() {
  try {
    const saved = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
    if (saved && validUser(saved.user) && typeof saved.token === "string" && Number.isFinite(saved.expiresAt)) {
      return { user: saved.user, accessToken: saved.token, expiresAt: saved.expiresAt - 60_000 };
    }
  } catch (_) {
    // storage disabled or garbage
  }
  return null;
}

function remember(signed, expiresAt) {
  try {
    localStorage.setItem(USER_KEY, signed.user);
    if (signed.accessToken) {
      localStorage.setItem(SESSION_KEY, JSON.stringify({ user: signed.user, token: signed.accessToken, expiresAt }));
    }
  } catch (_) {
    // storage disabled: this page's life only
  }
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

function seconds(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return s === 1 ? "1 second" : `${s} seconds`;
}

const serverNow = () => Date.now() + offsetMs;

function time(value) {
  const ms = Date.parse(typeof value === "string" ? value : "");
  return Number.isFinite(ms) ? ms : null;
}

class NetworkError extends Error {}

// One API call: the parsed JSON (or null), the status and the instance that served it.
async function call(method, path, body, headers = {}) {
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

// ---- signing in ---------------------------------------------------------------------------

// Signs `user` in. The local runner issues a one-hour bearer token; a server without the
// endpoint (404, 405) has no authentication: the page then names the user in its requests. With
// LOCKSTEP_AUTH, its token is asked for on every call (it refreshes its own), and its user shown.
async function signIn(user) {
  if (AUTH) {
    const [name, token] = await Promise.all([
      typeof AUTH.user === "function" ? Promise.resolve(AUTH.user()).catch(() => null) : null,
      Promise.resolve(AUTH.token()).catch(() => null),
    ]);
    return { user: validUser(name) ? name : "", accessToken: typeof token === "string" && token ? token : null, expiresAt: 0 };
  }
  const result = await call("POST", "/local/auth/sign-in", { user });
  if (result.ok && result.data && typeof result.data.accessToken === "string") {
    const lifetime = Number(result.data.expiresIn);
    const expiresAt = Date.now() + (Number.isFinite(lifetime) ? lifetime : 3600) * 1000;
    const signed = { user: validUser(result.data.user) ? result.data.user : user, accessToken: result.data.accessToken };
    remember(signed, expiresAt);
    // Renewed a minute early, so a call never leaves with a token about to expire.
    return { ...signed, expiresAt: expiresAt - 60_000 };
  }
  if (result.status === 404 || result.status === 405) return { user, accessToken: null, expiresAt: Infinity };
  const detail = result.data && (result.data.detail || result.data.message);
  throw new Error(detail ? String(detail) : `sign-in answered ${result.status}`);
}

// The session for calls: signs in again when the token is (about to be) expired, or `renew`.
async function currentSession(renew = false) {
  if (session && !renew && Date.now() < session.expiresAt) return session;
  if (!session && !renew && !AUTH) {
    session = savedSession(); // signed in on the other page
    if (session && Date.now() < session.expiresAt) {
      renderSession();
      return session;
    }
  }
  const user = session ? session.user : rememberedUser();
  if (!signingIn) {
    signingIn = signIn(user).finally(() => {
      signingIn = null;
    });
  }
  session = await signingIn;
  renderSession();
  return session;
}

function renderSession() {
  app.dataset.signedIn = session ? (session.accessToken ? "bearer" : "no-auth") : "no";
  if (session && session.user) $("user").value = session.user;
  $("user").disabled = Boolean(AUTH);
  $("session-text").textContent = !session
    ? "Not signed in."
    : session.accessToken
      ? `Signed in as ${session.user || "the OIDC client's user"}: feature calls carry a bearer token.`
      : AUTH
        ? "Not signed in: sign in to start journey X."
        : `Not signed in: this server has no local sign-in, so feature calls are refused (401) until config.js sets LOCKSTEP_AUTH.`;
}

async function switchUser(event) {
  event.preventDefault();
  if (AUTH) {
    if (typeof AUTH.signIn === "function") AUTH.signIn();
    return;
  }
  const name = $("user").value.trim();
  const error = $("sign-in-error");
  if (!validUser(name)) {
    error.textContent = "A user name is 1 to 64 letters, digits, - or _.";
    error.hidden = false;
    return;
  }
  error.hidden = true;
  $("sign-in-button").disabled = true;
  try {
    session = await signIn(name);
    renderSession();
    // A new user is a new evaluation context: the provider evaluates every flag again for it.
    if (provider) await OpenFeature.setContext(context());
    home();
  } catch (e) {
    error.textContent = `Could not sign in: ${e.message}`;
    error.hidden = false;
  } finally {
    $("sign-in-button").disabled = false;
  }
}

// ---- the flag, through OpenFeature ----------------------------------------------------------

const context = () => ({ targetingKey: (session && session.user) || rememberedUser() });

// The provider's requests, observed: the server's clock (Date), the instance, 304s.
async function observedFetch(request, init) {
  const response = await fetch(request, init);
  const date = time(response.headers.get("date"));
  if (date !== null) offsetMs = date - Date.now();
  if (response.status === 304) revalidated += 1;
  lastOfrep = {
    status: response.status,
    instance: response.headers.get(INSTANCE_HEADER),
    etag: response.headers.get("etag"),
    at: Date.now(),
  };
  // A 304 raises no provider event, so nothing else would show it.
  renderMeta();
  return response;
}

// What the flag's evaluation says about journey X now (the server's clock).
function decide() {
  if (!client) return { availability: "loading" };
  const cached = provider.flagCache;
  if (Object.keys(cached).length === 0) {
    // No evaluation has ever succeeded (the provider's first request failed: it then neither
    // polls nor retries by itself).
    return { availability: lastOfrep || retries > 0 ? "unreachable" : "loading" };
  }
  const details = client.getBooleanDetails(FLAG, false);
  const meta = details.flagMetadata || {};
  const token = tokenOf(meta);
  if (details.errorCode) return { availability: "closed", details };
  if (details.value === true) return { availability: "open", details, token };
  if (meta.rawValue === true) {
    // On, not open yet: when it opens if nothing changes; none from a degraded server, which
    // cannot vouch for the others.
    const at = time(meta.opensAt);
    if (at !== null) return { availability: "waiting", details, at, token };
    if (meta.degraded) return { availability: "unconfirmed", details, token };
  }
  return { availability: "closed", details, token };
}

const tokenOf = (meta) => (meta && typeof meta.journeyToken === "string" && meta.journeyToken) || null;

// The token of the provider's cached answer, for its next request.
function heldToken() {
  const held = provider && provider.flagCache[FLAG];
  return held ? tokenOf(held.metadata) : null;
}

function update() {
  decision = decide();
  availability = decision.availability;
  scheduleRecheck();
  render();
}

// The provider re-evaluates on its poll, on a context change and when the tab becomes visible;
// never at a time the metadata names. So, while the journey is about to open, the page sets the
// same context again (which makes the provider ask the server):
// - at once, when the answer came by consistentAt although the page now holds a journey token
//   (a page's first request has none): asked with it, the server opens at journeyOpensAt;
// - just after `opensAt` otherwise.
// When the server still says not yet (or answered 429, after which the provider sends nothing
// until Retry-After has passed), again after 1 s, 2 s, 4 s … up to POLL_MS.
function scheduleRecheck() {
  if (decision.availability !== "waiting") {
    clearTimeout(recheck.timer);
    recheck = { timer: null, key: null, attempts: 0 };
    return;
  }
  const rule = decision.details.flagMetadata.openRule;
  const upgrade = rule === "consistentAt" && decision.token !== null;
  const key = `${decision.at} ${rule}`;
  if (recheck.timer && recheck.key === key) return;
  clearTimeout(recheck.timer);
  const attempts = recheck.key === key ? recheck.attempts : 0;
  const until = upgrade ? (attempts === 0 ? 0 : -1) : decision.at - serverNow() + 500;
  const delay = until >= 0 ? until : Math.min(POLL_MS, 1000 * 2 ** attempts);
  recheck = {
    key,
    attempts: attempts + (until >= 0 && !upgrade ? 0 : 1),
    timer: setTimeout(() => {
      recheck.timer = null;
      OpenFeature.setContext(context()).then(update);
    }, delay),
  };
}

// Until one evaluation has succeeded, the page retries (2 s, 4 s … up to POLL_MS) by setting the
// context again: a failed initialization leaves the provider without polling.
function retryUntilEvaluated() {
  clearTimeout(retryTimer);
  if (Object.keys(provider.flagCache).length > 0) {
    retries = 0;
    return;
  }
  retries += 1;
  update();
  retryTimer = setTimeout(async () => {
    await OpenFeature.setContext(context());
    update();
    retryUntilEvaluated();
  }, Math.min(POLL_MS, 1000 * 2 ** Math.min(retries, 6)));
}

async function startOpenFeature() {
  provider = new OFREPWebProvider({
    baseUrl: BASE_URL,
    pollInterval: POLL_MS,
    changeDetection: "polling",
    // No persisted cache: by default the provider answers from localStorage first (for up to
    // 30 days) and refreshes in the background, which could open a journey on yesterday's value.
    cacheMode: "disabled",
    headersFactory: async () => {
      const token = heldToken();
      return token ? [[JOURNEY_HEADER, token]] : [];
    },
    fetchImplementation: observedFetch,
  });
  client = OpenFeature.getClient();
  for (const event of [
    ProviderEvents.Ready,
    ProviderEvents.ConfigurationChanged,
    ProviderEvents.ContextChanged,
    ProviderEvents.Reconciling,
    ProviderEvents.Stale,
    ProviderEvents.Error,
  ]) {
    client.addHandler(event, update);
  }
  try {
    await OpenFeature.setProviderAndWait(provider, context());
  } catch (_) {
    // reported through the Error event; retried below
  }
  update();
  retryUntilEvaluated();
}

// ---- rendering ----------------------------------------------------------------------------

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
      text.textContent = "Asking the flag provider which journeys are open…";
      break;
    case "open":
      text.textContent = "Journey X is open.";
      break;
    case "closed":
      text.textContent = inJourney
        ? "Journey X is closed to new journeys. The one you started can still be submitted while the service allows it."
        : "Journey X is not available right now.";
      break;
    case "waiting": {
      const at = decision.at;
      text.textContent = "Journey X has been switched on and is being rolled out to every server.";
      $("opens-at").dateTime = new Date(at).toISOString();
      $("opens-at").textContent = clock(at);
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
        "Journey X has been switched on, but the server cannot yet confirm that every server serves it.";
      break;
    case "unreachable":
      text.textContent = "Can't reach the flag service right now. Trying again shortly.";
      break;
    default:
      break;
  }
  $("start").hidden = !(availability === "open" && view === "home");
  renderMeta();
}

function renderMeta() {
  const parts = [];
  if (client) parts.push(`provider ${client.providerStatus}`);
  const details = decision.details;
  if (details) {
    const why = details.errorCode ? `${details.reason} ${details.errorCode}` : details.reason;
    parts.push(`${FLAG} = ${details.value} (${why || "no reason"}${details.variant ? `, ${details.variant}` : ""})`);
  }
  if (lastOfrep) {
    parts.push(`last OFREP answer ${lastOfrep.status}${lastOfrep.instance ? ` from ${lastOfrep.instance}` : ""}`);
  }
  if (revalidated) parts.push(`${revalidated} × 304`);
  parts.push(`polling every ${POLL_MS / 1000} s`);
  if (client && client.providerStatus === ProviderStatus.STALE) parts.push("stale: the last refresh failed");
  $("meta").textContent = parts.join(" · ");
}

// ---- the journey --------------------------------------------------------------------------

// A feature call of the journey `of`: its token, and the bearer token; signs in again once on a
// 401 (an expired or refused token) and repeats the call.
async function featureCall(of, method, path, body, headers = {}) {
  for (let attempt = 0; ; attempt++) {
    const current = await currentSession(attempt > 0);
    const all = { ...headers };
    if (of && of.token) all[JOURNEY_HEADER] = of.token;
    if (current.accessToken) all.Authorization = `Bearer ${current.accessToken}`;
    const result = await call(method, path, body, all);
    if (result.status !== 401 || attempt > 0 || !current.accessToken) return result;
  }
}


function show(next) {
  if (next !== "problem") clearInterval(problemTimer);
  view = next;
  for (const id of ["journey", "confirmation", "problem"]) $(id).hidden = id !== next;
  render();
}

// The flag evaluated now, by itself (the single-flag endpoint has no ETag: always a fresh answer,
// with a fresh token); null when it cannot be had (the provider's answer stands then).
async function freshEvaluation() {
  const token = heldToken();
  try {
    const result = await call(
      "POST",
      `/ofrep/v1/evaluate/flags/${encodeURIComponent(FLAG)}`,
      { context: context() },
      token ? { [JOURNEY_HEADER]: token } : {},
    );
    const data = result.data;
    return result.status === 200 && data && typeof data.value === "boolean" ? data : null;
  } catch (_) {
    return null;
  }
}

async function start() {
  update();
  if (availability !== "open") return;
  $("start").disabled = true;
  const fresh = await freshEvaluation();
  $("start").disabled = false;
  if (fresh && fresh.value !== true) {
    // Newer than the provider's cache (a switch-off): have the provider ask again, stay here.
    await OpenFeature.setContext(context());
    update();
    return;
  }
  if (view !== "home") return;
  // The token is captured now, as the journey opens, and kept for the whole journey.
  const token = (fresh && tokenOf(fresh.metadata)) || decision.token || null;
  journey = { id: "journey-" + randomHex(8), body: null, token };
  const opened = journey;
  $("form").reset();
  $("form-error").hidden = true;
  $("submit").disabled = false;
  $("submit").textContent = "Submit";
  $("history").textContent = "Looking up your earlier submissions…";
  show("journey");
  let result;
  try {
    result = await featureCall(opened, "GET", "/feature-x/submissions?limit=100");
  } catch (_) {
    $("history").textContent = "Couldn't load your earlier submissions; you can still submit.";
    return;
  }
  if (journey !== opened) return;
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
    const result = await featureCall(journey, "POST", "/feature-x/submissions", journey.body, {
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
      "Your submission may not have been sent. Trying again is safe: it goes with the same idempotency key, so it is never stored twice.",
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
  $("confirmation-created").textContent = submission.createdAt ? new Date(submission.createdAt).toLocaleString() : "?";
  const served = [created.instance && `stored by ${created.instance}`];
  let note = "";
  try {
    const read = await featureCall(
      opened,
      "GET",
      `/feature-x/submissions/${encodeURIComponent(submission.id || "")}`,
    );
    if (read.ok) served.push(read.instance && `read back from ${read.instance}`);
    else note = "It is stored, but could not be read back just now.";
  } catch (_) {
    note = "It is stored, but could not be read back just now (network).";
  }
  const by = served.filter(Boolean).join(", ");
  $("confirmation-note").textContent = [by && `Your submission was ${by}.`, note].filter(Boolean).join(" ");
  journey = null;
  show("confirmation");
}

const REASONS = {
  disabled: "disabled (the flag is off on that server)",
  "drain-ended": "drain-ended (the flag is off and the drain is over)",
  behind: "behind (this server has not caught up yet)",
};

// A refused call mid-journey, told as what it means for the user.
function failed(result, retry) {
  const data = result.data && typeof result.data === "object" ? result.data : {};
  const type = typeof data.type === "string" ? data.type : "";
  const reason = typeof data.reason === "string" ? data.reason : "";
  const after = result.retryAfterSeconds;
  const retryAt = after ? Date.now() + after * 1000 : null;
  const when = retryAt ? ` Try again after ${clock(retryAt)}.` : "";
  const facts = { status: result.status, reason, retryAfterSeconds: after };
  if (result.status === 503 && type.endsWith(":feature-disabled")) {
    if (reason === "behind") {
      problem(
        "The server is still catching up",
        "The server that took your request has not caught up with journey X yet. Nothing was saved." + when,
        retry,
        { ...facts, retryAt },
      );
    } else {
      problem(
        "Journey X has just been switched off",
        "The service answered 503: journey X has been switched off on the server that took your request. " +
          "Nothing was saved. The journey is offered again once it is switched back on.",
        null,
        facts,
      );
      // Ask the provider now rather than at its next poll, so the start page reflects it.
      OpenFeature.setContext(context());
    }
  } else if (result.status === 503) {
    problem("The service is busy", "The service answered 503. Nothing was saved." + when, retry, facts);
  } else if (result.status === 401) {
    problem("Signed out", "The service did not accept your sign-in. Sign in again, then try again.", null, facts);
  } else if (result.status >= 400 && result.status < 500) {
    const detail = data.detail ? String(data.detail) : "";
    problem("The service refused this request", detail || `HTTP ${result.status}.`, null, facts);
  } else {
    problem(
      "Something went wrong on the server",
      `The service answered ${result.status}. Nothing is lost on this page; try again later.`,
      retry,
      facts,
    );
  }
}

// Shows a problem; `facts` (status, reason, retryAfterSeconds, retryAt) go on a line of their
// own. With retryAt, the retry button waits for it, counting down.
function problem(title, text, retry, facts = {}) {
  clearInterval(problemTimer);
  $("problem-title").textContent = title;
  $("problem-text").textContent = text;
  const card = $("problem");
  card.dataset.status = facts.status ? String(facts.status) : "";
  card.dataset.reason = facts.reason || "";
  const line = [];
  if (facts.status) line.push(`HTTP ${facts.status}`);
  if (facts.reason) line.push(`reason: ${REASONS[facts.reason] || facts.reason}`);
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
  update();
}

// ---- wiring -------------------------------------------------------------------------------

$("sign-in").addEventListener("submit", switchUser);
$("start").addEventListener("click", () => start());
$("form").addEventListener("submit", submit);
$("cancel").addEventListener("click", home);
$("done").addEventListener("click", home);
$("back").addEventListener("click", home);
// Whatever happens, the page stays usable.
const broken = () => problem("Something went wrong in this page", "Nothing was lost on the server. Go back to start.", null);
window.addEventListener("error", broken);
window.addEventListener("unhandledrejection", broken);

$("user").value = rememberedUser();
render();
currentSession()
  .catch((e) => {
    $("session-text").textContent = `Could not sign in (${e.message}); feature calls will go without a token.`;
  })
  .finally(startOpenFeature);
