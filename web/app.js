// Lockstep's SPA: reads GET /config (signed in: GET /config/me, its user's own evaluation) and
// offers journey X only when the flag is enabled and every
// server is ready for it. The journey itself (start, form, submit, confirmation, the problems)
// and the session format are journey.js's, shared with openfeature.js; this file decides when the
// journey may open, and signs in.
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
// - A scheduled change (a ramp, a time-based condition: design rule 10): the flag's `changesAt`
//   says when this caller's value next changes without a deployment. A journey takes up to
//   JOURNEY_MS; when the flag is on but changes sooner than that, no new journey is offered (it
//   could be cut off midway): the page says the feature is about to change ("closing") and
//   re-checks once, just after changesAt. A flag off for this caller that changes before the
//   next slow re-read is re-checked just after changesAt too.
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
import {
  $,
  AUTH,
  FLAG,
  JOURNEY_HEADER,
  call,
  clock,
  createJourney,
  randomHex,
  storeSession,
  storeUser,
  storedSession,
  storedUser,
  time,
  validUser,
} from "./journey.js";

// How long a journey takes, at most, from its start to its submit (a form of a few fields): a
// journey is not offered when the caller's value changes by a schedule sooner than this.
const JOURNEY_MS = 60_000;

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
let checkTimer = null;
let unconfirmedChecks = 0;
let unreachableChecks = 0;

const journey = createJourney({ featureCall, render, refresh: checkConfig, serverNow, unauthorized, switchedOff });

// ---- signing in -----------------------------------------------------------------------------

// The user name the sign-in form suggests: the last one used on this browser, or a new one.
function suggestedUser() {
  const remembered = storedUser();
  if (remembered) return remembered;
  const id = "user-" + randomHex(8);
  storeUser(id); // storage disabled: one id for this page's life
  return id;
}

function loadSession() {
  const saved = storedSession();
  return saved && saved.expiresAt > Date.now() + 30_000 ? saved : null;
}

function saveSession(next) {
  session = next;
  storeSession(next);
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
      storeUser(data.user);
      checkConfig(); // journey X for this user, from their own evaluation
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
  journey.end();
  journey.show("home");
  checkConfig(); // the anonymous view
}

// A feature call of the journey `of`: its token, and the bearer token when signed in.
async function featureCall(of, method, path, body, headers = {}) {
  const all = { ...headers, ...(await bearer()) };
  if (of && of.token) all[JOURNEY_HEADER] = of.token;
  return call(method, path, body, all);
}

// ---- availability -------------------------------------------------------------------------

// The server's clock now, from the offset measured at the last /config.
function serverNow() {
  return Date.now() + offsetMs;
}

function pollMs() {
  const p = Number(config && config.pollIntervalSeconds);
  return (Number.isFinite(p) && p >= 15 ? p : 45) * 1000;
}

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

// When this caller's value of journey X's flag next changes by a schedule or a ramp (no
// deployment), if it does.
function changesAt(cfg) {
  const flag = cfg && cfg.flags && typeof cfg.flags === "object" ? cfg.flags[FLAG] : null;
  return time(flag && flag.changesAt);
}

// What /config says about journey X at `now` (the server's clock).
function decide(cfg, now) {
  if (!cfg || cfg[FLAG] !== true) return { availability: "closed", changesAt: changesAt(cfg) };
  if (refuted && now < refuted.until && (time(cfg.lastModifiedTimestamp) ?? -Infinity) <= refuted.stamp) {
    return { availability: "closed" };
  }
  const token = tokenOf(cfg);
  // On now, but not for a whole journey: none is offered until the change has happened.
  const changes = changesAt(cfg);
  if (changes !== null && changes - now < JOURNEY_MS) {
    return { availability: "closing", at: changes, inMs: Math.max(0, changes - now), token };
  }
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

// Whose view `config` is: the signed-in user's (GET /config/me, behind the JWT authorizer, so a
// flag defined by rules is evaluated for the same identity and claims as the gate evaluates it),
// or nobody's (GET /config, the anonymous caller's). Another identity's view never decides.
let configFor = undefined;

async function readConfig() {
  const auth = await bearer();
  const user = auth.Authorization ? signedInUser() : null;
  if (user) {
    const mine = await call("GET", "/config/me", undefined, auth);
    if (mine.status !== 401) return { result: mine, user };
    // A sign-in the authorizer refuses (expired, or from another issuer) reads the anonymous
    // view; the session stays until a feature call is refused the same way, and the journey
    // then asks to sign in again (journey.js), as it always has.
  }
  return { result: await call("GET", "/config"), user: null };
}

async function checkConfig() {
  clearTimeout(checkTimer);
  let result;
  let user = null;
  try {
    ({ result, user } = await readConfig());
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
    configFor = user;
    setAside = null;
  } else {
    setAside = { instance: result.instance, version: result.data.configurationVersion };
  }
  // The answer held decides only for the caller it was evaluated for: just signed in (or out)
  // and given an older version by an instance that has not polled yet, the page holds the newer
  // version's stamp but not this caller's values, so it checks again shortly.
  decision = configFor === user ? decide(config, now) : { availability: "unconfirmed" };
  availability = decision.availability;
  let delay;
  if (decision.availability === "waiting" || decision.availability === "closing") {
    // The one re-check: just after journeyOpensAt (or consistentAt), or just after the
    // scheduled change, on the server's clock.
    unconfirmedChecks = 0;
    delay = decision.inMs + 500;
  } else if (decision.availability === "closed" && decision.changesAt != null && decision.changesAt > now) {
    // Off for this caller until a scheduled change (a ramp letting them in): look again just
    // after it, or after P if that comes first.
    unconfirmedChecks = 0;
    delay = Math.min(pollMs(), decision.changesAt - now + 500);
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

// ---- rendering ----------------------------------------------------------------------------

function render() {
  journey.renderStatus(availability, decision, {
    loading: "Checking which journeys are open…",
    unconfirmed: () =>
      "Journey X has been switched on, but the server cannot yet confirm that every server " +
      `serves it. Checking again at ${clock(nextCheckAt)}.`,
    unreachable: () => `Can't reach the service right now. Checking again at ${clock(nextCheckAt)}.`,
  });
  const user = signedInUser();
  $("app").dataset.signedIn = user ? "true" : "false";
  $("signin-form").hidden = Boolean(user);
  $("signed-in").hidden = !user;
  $("signed-in-as").textContent = user || "";
  if (!user && availability === "open") $("status-text").textContent = "Journey X is open. Sign in to start it.";
  $("start").hidden = !(availability === "open" && journey.view === "home" && user);
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

// ---- the journey, as this page opens and ends it ----------------------------------------------

async function start() {
  // The page may have been open a while: ask the backend again before opening the journey.
  await checkConfig();
  if (availability !== "open") return;
  // The token is captured now, as the journey opens, and kept for the whole journey.
  await journey.open({ token: decision.token || null, stamp: time(config.lastModifiedTimestamp) }, start);
}

// No token, or one the authorizer refused (expired): sign in again; nothing was saved.
function unauthorized() {
  if (!AUTH) saveSession(null);
  journey.end();
  journey.problem(
    "Please sign in again",
    "Your sign-in is missing or has expired, so the service refused the request. Nothing " +
      "was saved. Sign in and start journey X again.",
    null,
    { status: 401 },
  );
}

// A 503 feature-disabled (not "behind"): the flag is off on the server that took the request.
function switchedOff({ reason, when, facts }, retry) {
  const current = journey.current;
  if (reason === "drain-ended") {
    journey.problem(
      "Journey X has been switched off",
      "Journey X was switched off, and the time given to journeys already under way to " +
        "finish is over. Nothing was saved.",
      null,
      facts,
    );
  } else if (current && current.token) {
    // With the journey's token, "disabled" is a switch-off without drain (a kill switch):
    // retrying cannot help.
    journey.problem(
      "Journey X has just been switched off",
      "The service answered 503: journey X has been switched off on the server that took " +
        "your request. Nothing was saved. The journey is offered again once it is switched " +
        "back on.",
      null,
      { ...facts, reasonText: "disabled (switched off without a drain: a kill switch)" },
    );
  } else {
    journey.problem(
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
  if (current && current.token && current.stamp !== null) {
    refuted = { stamp: current.stamp, until: serverNow() + pollMs() };
  }
  checkConfig(); // the start page should reflect it
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
journey.wire(start);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && journey.view === "home") checkConfig();
});

render();
checkConfig();
