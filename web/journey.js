// Journey X as both pages run it: index.html's app.js (gated by GET /config) and
// openfeature.html's openfeature.js (gated by the OpenFeature web SDK over OFREP) import this
// ES module from their own origin (no build step; the runner's Content-Security-Policy allows
// same-origin module imports).
//
// What lives here, once:
// - the API call and how its answer is read (status, JSON body, instance, Retry-After);
// - the session both pages keep in localStorage (`lockstep.userId`, and `lockstep.session` =
//   { user, token, expiresAt (browser clock, ms) }), so a user signed in on one page is signed in
//   on the other;
// - the status card (loading, open, closed, waiting with its countdown, closing (about to change
//   by a schedule, with its countdown), unconfirmed, unreachable);
// - the journey itself: start (the journey token captured as it opens and kept for its life,
//   then the user's earlier submissions), the form, submit with the journey id as
//   Idempotency-Key, the confirmation with its read-back, and a refused call told as a problem
//   (with a retry that waits for Retry-After).
//
// What each page supplies (`createJourney(page)`): how a feature call is authenticated, its own
// rendering and how it asks for availability again, and what a switch-off or a 401 means for
// it. All text goes through textContent.

export const API = String(window.LOCKSTEP_API || "").replace(/\/+$/, "");
export const FLAG = "isFeatureXEnabled";
export const JOURNEY_HEADER = "Lockstep-Journey";
export const INSTANCE_HEADER = "x-lockstep-instance";
// In AWS, config.js's LOCKSTEP_AUTH hands out the OIDC client's token.
export const AUTH =
  window.LOCKSTEP_AUTH && typeof window.LOCKSTEP_AUTH.token === "function" ? window.LOCKSTEP_AUTH : null;
export const $ = (id) => document.getElementById(id);

// ---- helpers --------------------------------------------------------------------------------

export function randomHex(bytes) {
  const values = new Uint8Array(bytes);
  crypto.getRandomValues(values);
  return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
}

export const validUser = (name) => typeof name === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(name);

export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

export function seconds(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return s === 1 ? "1 second" : `${s} seconds`;
}

export function time(value) {
  const ms = Date.parse(typeof value === "string" ? value : "");
  return Number.isFinite(ms) ? ms : null;
}

export class NetworkError extends Error {}

// One API call: the parsed JSON (or null), the status and the instance that served it. No
// credentials: the page's feature call adds them.
export async function call(method, path, body, headers = {}) {
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

// ---- the session both pages share -----------------------------------------------------------

const USER_KEY = "lockstep.userId";
const SESSION_KEY = "lockstep.session";

// The user name last used on this browser, if any.
export function storedUser() {
  try {
    const name = localStorage.getItem(USER_KEY);
    return validUser(name) ? name : null;
  } catch (_) {
    return null; // storage disabled
  }
}

export function storeUser(name) {
  try {
    localStorage.setItem(USER_KEY, name);
  } catch (_) {
    // storage disabled: this page's life only
  }
}

// The saved session, { user, token, expiresAt }, when well formed (expired or not).
export function storedSession() {
  try {
    const saved = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
    if (saved && validUser(saved.user) && typeof saved.token === "string" && Number.isFinite(saved.expiresAt)) {
      return { user: saved.user, token: saved.token, expiresAt: saved.expiresAt };
    }
  } catch (_) {
    // storage disabled or garbage: signed out
  }
  return null;
}

// Saves { user, token, expiresAt }, or signs out (null).
export function storeSession(session) {
  try {
    if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
    else localStorage.removeItem(SESSION_KEY);
  } catch (_) {
    // storage disabled: the session lives as long as this page
  }
}

// ---- the journey ----------------------------------------------------------------------------

const REASONS = {
  disabled: "disabled (the flag is off on that server)",
  "drain-ended": "drain-ended (the flag is off and the drain is over)",
  behind: "behind (this server has not caught up yet)",
};

// The journey UI over `page`:
// - featureCall(journey, method, path, body, headers): a feature call of `journey` (its token
//   as Lockstep-Journey, and the page's credentials), answering as `call` does;
// - render(): the page's whole rendering (after a view change);
// - refresh(): ask again whether journey X is open (back on the start page);
// - unauthorized(refusal): a 401 mid-journey;
// - switchedOff(refusal, retry): a 503 feature-disabled other than "behind" (that one, a server
//   still catching up, is told here).
// A refusal is { data, reason, retryAt, when, facts } (facts: status, reason, Retry-After).
export function createJourney(page) {
  let view = "home";
  let journey = null; // { id, body, token, ... } of the journey in progress (token: what it opened with)
  let submitting = false;
  let problemTimer = null;
  let ticker = null;

  function show(next) {
    if (next !== "problem") clearInterval(problemTimer);
    view = next;
    for (const id of ["journey", "confirmation", "problem"]) $(id).hidden = id !== next;
    page.render();
  }

  // The status card for `availability` (and `decision.at` while waiting); `texts` holds the
  // page's own wording: loading, and unconfirmed() and unreachable() (said when asked).
  function renderStatus(availability, decision, texts) {
    const app = $("app");
    app.dataset.availability = availability;
    app.dataset.view = view;
    const text = $("status-text");
    const opens = $("opens");
    clearInterval(ticker);
    opens.hidden = true;
    const inJourney = journey !== null && view === "journey";
    switch (availability) {
      case "loading":
        text.textContent = texts.loading;
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
          const left = at - page.serverNow();
          $("opens-in").textContent = left > 0 ? `(in ${seconds(left)})` : "(any moment now)";
        };
        tick();
        ticker = setInterval(tick, 1000); // the countdown only; no request
        opens.hidden = false;
        break;
      }
      case "closing": {
        // On now, but the caller's value changes (a schedule, a ramp) before a journey could end.
        const at = decision.at;
        const say = () => {
          const left = at - page.serverNow();
          const when = `${clock(at)} ${left > 0 ? `(in ${seconds(left)})` : "(any moment now)"}`;
          text.textContent = inJourney
            ? `Journey X is about to change at ${when}. The one you started can still be submitted while the service allows it.`
            : `Journey X is about to change at ${when}, so no new journey starts now. Checking again then.`;
        };
        say();
        ticker = setInterval(say, 1000); // the countdown only; no request
        break;
      }
      case "unconfirmed":
        text.textContent = texts.unconfirmed();
        break;
      case "unreachable":
        text.textContent = texts.unreachable();
        break;
      default:
        break;
    }
  }

  // Opens a journey (`fields`: its token, captured now and kept for the whole journey, and what
  // else the page keeps of it) and looks up the user's earlier submissions. `retry` starts again.
  async function open(fields, retry) {
    journey = { id: "journey-" + randomHex(8), body: null, ...fields };
    const opened = journey;
    $("form").reset();
    $("form-error").hidden = true;
    $("submit").disabled = false;
    $("submit").textContent = "Submit";
    $("history").textContent = "Looking up your earlier submissions…";
    show("journey");
    let result;
    try {
      result = await page.featureCall(opened, "GET", "/feature-x/submissions?limit=100");
    } catch (_) {
      $("history").textContent = "Couldn't load your earlier submissions; you can still submit.";
      return;
    }
    if (journey !== opened) return; // left (or signed out) meanwhile
    if (result.ok && result.data && Array.isArray(result.data.items)) {
      const n = result.data.items.length;
      const count = result.data.nextCursor ? `${n} or more` : String(n);
      $("history").textContent = `You have ${count} earlier submission${n === 1 ? "" : "s"}.`;
    } else if (result.status === 503 || result.status === 401) {
      failed(result, retry);
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
      const result = await page.featureCall(journey, "POST", "/feature-x/submissions", journey.body, {
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
      const read = await page.featureCall(
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

  // A refused call mid-journey, told as what it means for the user.
  function failed(result, retry) {
    const data = result.data && typeof result.data === "object" ? result.data : {};
    const type = typeof data.type === "string" ? data.type : "";
    const reason = typeof data.reason === "string" ? data.reason : "";
    const after = result.retryAfterSeconds;
    const retryAt = after ? Date.now() + after * 1000 : null;
    const when = retryAt ? ` Try again after ${clock(retryAt)}.` : "";
    const facts = { status: result.status, reason, retryAfterSeconds: after };
    const refusal = { data, reason, retryAt, when, facts };
    if (result.status === 401) {
      page.unauthorized(refusal);
    } else if (result.status === 503 && type.endsWith(":feature-disabled")) {
      if (reason === "behind") {
        // Not a switch-off: the server has not caught up with the configuration this journey
        // opened with, and may ask for it in Retry-After seconds. Retrying then is safe.
        problem(
          "The server is still catching up",
          "The server that took your request has not caught up with journey X yet. Nothing was saved." + when,
          retry,
          { ...facts, retryAt },
        );
      } else {
        page.switchedOff(refusal, retry);
      }
    } else if (result.status === 503) {
      problem("The service is busy", "The service answered 503. Nothing was saved." + when, retry, facts);
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
    page.refresh();
  }

  // The journey's buttons and forms; `start` is the page's Start (it decides, then `open`s).
  function wire(start) {
    $("start").addEventListener("click", () => start());
    $("form").addEventListener("submit", submit);
    $("cancel").addEventListener("click", home);
    $("done").addEventListener("click", home);
    $("back").addEventListener("click", home);
    // Whatever happens, the page stays usable.
    const broken = () => problem("Something went wrong in this page", "Nothing was lost on the server. Go back to start.", null);
    window.addEventListener("error", broken);
    window.addEventListener("unhandledrejection", broken);
  }

  return {
    get view() {
      return view;
    },
    // The journey in progress, or null.
    get current() {
      return journey;
    },
    // Ends the journey in progress (signed out): its answers are no longer shown.
    end() {
      journey = null;
    },
    show,
    renderStatus,
    open,
    problem,
    home,
    wire,
  };
}
