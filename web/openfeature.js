// Journey X on the standard OpenFeature web SDK: the same journey as app.js (journey.js, which
// both import), but the page asks `@openfeature/web-sdk` with `@openfeature/ofrep-web-provider`
// (OFREP, the OpenFeature Remote Evaluation Protocol), not GET /config, whether it is open.
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
import {
  $,
  API,
  AUTH,
  FLAG,
  INSTANCE_HEADER,
  JOURNEY_HEADER,
  call,
  createJourney,
  randomHex,
  storeSession,
  storeUser,
  storedSession,
  storedUser,
  time,
  validUser,
} from "./journey.js";

// The provider needs an absolute base URL to build its requests from ("" is the page's origin).
const BASE_URL = API || window.location.origin;
// The provider's poll interval. It does not poll unless told to (OFREP ADR-0010); 15 s is Q,
// AppConfigData's minimum poll interval: no server instance refreshes faster than that.
const POLL_MS = 15_000;
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
let recheck = { timer: null, key: null, attempts: 0 };
let retryTimer = null;
let retries = 0;

const journey = createJourney({ featureCall, render, refresh: update, serverNow, unauthorized, switchedOff });

function serverNow() {
  return Date.now() + offsetMs;
}

// ---- signing in ---------------------------------------------------------------------------

// The user name to sign in with: the last one used on this browser, or a new one (kept once
// signed in). Shared with app.js, like the session: a user signed in on one page of this origin
// is signed in on the other.
let suggested = null;
function rememberedUser() {
  const name = storedUser();
  if (name) return name;
  suggested = suggested || "user-" + randomHex(6);
  return suggested;
}

function savedSession() {
  const saved = storedSession();
  return saved && { user: saved.user, accessToken: saved.token, expiresAt: saved.expiresAt - 60_000 };
}

function remember(signed, expiresAt) {
  storeUser(signed.user);
  if (signed.accessToken) storeSession({ user: signed.user, token: signed.accessToken, expiresAt });
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
    journey.home();
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
  journey.renderStatus(availability, decision, {
    loading: "Asking the flag provider which journeys are open…",
    unconfirmed: () => "Journey X has been switched on, but the server cannot yet confirm that every server serves it.",
    unreachable: () => "Can't reach the flag service right now. Trying again shortly.",
  });
  $("start").hidden = !(availability === "open" && journey.view === "home");
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

// ---- the journey, as this page opens it ---------------------------------------------------

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
  if (journey.view !== "home") return;
  // The token is captured now, as the journey opens, and kept for the whole journey.
  const token = (fresh && tokenOf(fresh.metadata)) || decision.token || null;
  await journey.open({ token }, start);
}

// A 401 the second sign-in did not cure.
function unauthorized({ facts }) {
  journey.problem("Signed out", "The service did not accept your sign-in. Sign in again, then try again.", null, facts);
}

// A 503 feature-disabled (not "behind"): the flag is off on the server that took the request.
function switchedOff({ facts }) {
  journey.problem(
    "Journey X has just been switched off",
    "The service answered 503: journey X has been switched off on the server that took your request. " +
      "Nothing was saved. The journey is offered again once it is switched back on.",
    null,
    facts,
  );
  // Ask the provider now rather than at its next poll, so the start page reflects it.
  OpenFeature.setContext(context());
}

// ---- wiring -------------------------------------------------------------------------------

$("sign-in").addEventListener("submit", switchUser);
journey.wire(start);

$("user").value = rememberedUser();
render();
currentSession()
  .catch((e) => {
    $("session-text").textContent = `Could not sign in (${e.message}); feature calls will go without a token.`;
  })
  .finally(startOpenFeature);
