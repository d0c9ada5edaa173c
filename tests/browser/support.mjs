// What the browser tests share (not a test file: `node --test tests/browser/` runs only
// *.test.mjs): the runner started in its own process group and stopped with it, chromium, the
// API and journey-token helpers.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || "target");
const RUNNER = process.env.LOCKSTEP_RUNNER_BIN || path.join(TARGET, "debug", "lockstep-local");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const OUT = path.join(ROOT, "target", "browser");

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const secondsSince = (from, at = Date.now()) => ((at - from) / 1000).toFixed(1);

// What a journey token says (`v2.<base64url payload>.<signature>`, the compact binary payload of
// shared/lockstep/src/journey/codec.rs, or the previous release's `v1` JSON; opaque to the
// pages, read here to check which configuration a journey carried), and whether it is signed.
// `f[name]` is `{ v, t }` for a flag, found by its reference (the first 8 bytes of SHA-256 of its
// name, as the token names it); `c` the version, `p` the profile stamp, `i` the moment of issue,
// `s` the subject's reference (hex) of a token bound to a caller.
export function claims(token) {
  const [version, payload, signature] = String(token).split(".");
  const bytes = Buffer.from(payload ?? "", "base64url");
  if (version === "v1") {
    return { ...JSON.parse(bytes.toString("utf8")), signed: Boolean(signature) };
  }
  assert.equal(version, "v2", `not a v1 or v2 journey token: ${token}`);
  let at = 0;
  const byte = () => {
    assert.ok(at < bytes.length, `a truncated v2 token: ${token}`);
    return bytes[at++];
  };
  const varint = () => {
    let value = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = byte();
      value |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return value;
    }
  };
  const signed = () => {
    const n = varint();
    return Number((n >> 1n) ^ -(n & 1n));
  };
  const header = byte();
  const length = Number(varint());
  const c = bytes.subarray(at, at + length).toString("utf8");
  at += length;
  const p = header & 1 ? signed() : undefined;
  const i = signed();
  // Bound to a caller (/config/me, OFREP): their reference, 8 bytes (the gate compares it with
  // the verified caller's).
  let s;
  if (header & 2) {
    assert.ok(at + 8 <= bytes.length, `a truncated v2 token: ${token}`);
    s = bytes.subarray(at, at + 8).toString("hex");
    at += 8;
  }
  const byReference = {};
  for (let n = Number(varint()); n > 0; n--) {
    const reference = bytes.subarray(at, at + 8).toString("hex");
    at += 8;
    const bits = byte();
    const flag = { v: Boolean(bits & 1) };
    if (bits & 2) flag.t = (p ?? 0) + signed();
    byReference[reference] = flag;
  }
  assert.equal(at, bytes.length, `trailing bytes in a v2 token: ${token}`);
  const reference = (name) => createHash("sha256").update(name).digest().subarray(0, 8).toString("hex");
  const f = new Proxy(byReference, { get: (flags, name) => flags[reference(String(name))] });
  return { c, p, i, s, f, signed: Boolean(signature) };
}

// Starts the runner in its own process group (DynamoDB Local's java is its child) and resolves
// `ready` with its base URL once it listens. Its structured (JSON) log lines are kept in `lines`.
function startRunner(initialFlags, log, { instances, pollSeconds, epsilonSeconds }) {
  if (!existsSync(RUNNER)) {
    throw new Error(`runner binary missing: ${RUNNER} (run cargo build -p lockstep-local first)`);
  }
  const child = spawn(RUNNER, [], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      LOCKSTEP_INITIAL_FLAGS: initialFlags,
      LOCKSTEP_PORT: "0",
      LOCKSTEP_INSTANCES: String(instances),
      AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS: String(pollSeconds),
      LOCKSTEP_EPSILON_SECONDS: String(epsilonSeconds),
    },
  });
  const lines = [];
  let partial = "";
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
    log.write(chunk);
    const text = partial + chunk;
    const complete = text.split("\n");
    partial = complete.pop();
    for (const line of complete) {
      try {
        lines.push(JSON.parse(line));
      } catch (_) {
        // not a log record (the runner's own messages)
      }
    }
  });
  const ready = new Promise((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => reject(new Error(`runner not listening after 120 s:\n${stdout}`)), 120_000);
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      log.write(chunk);
      const match = /listening on (http:\/\/\S+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`runner exited (${code ?? signal}) before listening:\n${stderr.slice(-1500)}`));
    });
  });
  return { child, ready, lines };
}

async function stopRunner(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    process.kill(-child.pid, "SIGTERM"); // graceful: the runner stops DynamoDB Local
  } catch (_) {
    return;
  }
  let timer;
  const graceful = await Promise.race([
    exited.then(() => true),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), 10_000);
    }),
  ]);
  clearTimeout(timer);
  try {
    process.kill(-child.pid, "SIGKILL"); // whatever is left of the group
  } catch (_) {
    // already gone
  }
  if (!graceful) await exited;
}

// The runner of test `t` in fleet mode, its local AppConfig first deployed with journey X
// disabled; its log goes to target/browser/<logFile>. `launch()` starts chromium. Whatever
// happens, the browser, the runner (and DynamoDB Local) and the temporary flags are gone after
// the test, which then prints `<label>: <seconds> s`.
export function fleetRunner(t, { label, logFile, instances, pollSeconds, epsilonSeconds }) {
  const started = Date.now();
  mkdirSync(OUT, { recursive: true });
  assert.ok(existsSync(CHROMIUM), `chromium missing at ${CHROMIUM} (Debian: apt-get install chromium)`);
  const flagsDir = mkdtempSync(path.join(tmpdir(), "lockstep-browser-"));
  const initialFlags = path.join(flagsDir, "initial-flags.json");
  writeFileSync(
    initialFlags,
    JSON.stringify({
      isFeatureXEnabled: false,
      useSubmissionsGsi: false,
      lockstepMetadata: { lastModifiedTimestamp: "2020-01-01T00:00:00Z", deploymentDurationSeconds: 0 },
    }),
  );
  const log = createWriteStream(path.join(OUT, logFile));
  const runner = startRunner(initialFlags, log, { instances, pollSeconds, epsilonSeconds });
  const killOnExit = () => {
    try {
      process.kill(-runner.child.pid, "SIGKILL");
    } catch (_) {
      // already gone
    }
  };
  process.once("exit", killOnExit);
  const fleet = {
    started,
    ready: runner.ready,
    lines: runner.lines,
    browser: null,
    async launch() {
      fleet.browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--no-first-run",
          // Several tabs are open at once: a tab in the background keeps its timers (a page's
          // re-check at journeyOpensAt, the provider's polling) and its rendering at full speed.
          "--disable-background-timer-throttling",
          "--disable-backgrounding-occluded-windows",
          "--disable-renderer-backgrounding",
        ],
      });
      return fleet.browser;
    },
  };
  t.after(async () => {
    await fleet.browser?.close().catch(() => {});
    await stopRunner(runner.child);
    process.removeListener("exit", killOnExit);
    log.end();
    rmSync(flagsDir, { recursive: true, force: true });
    console.log(`${label}: ${secondsSince(started)} s`);
  });
  return fleet;
}

// One API call from the test itself: status, headers and the JSON body (null when empty).
export async function api(base, method, route, body, headers = {}) {
  const response = await fetch(base + route, {
    method,
    headers: body ? { "content-type": "application/json", ...headers } : headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

// Waits until the page has decided something after a load, and returns what it decided.
export async function availability(page) {
  await page.waitForFunction(() => document.getElementById("app").dataset.availability !== "loading");
  return page.getAttribute("#app", "data-availability");
}

// `Authorization: Bearer …` for `user`, from the runner's dev sign-in (its local issuer).
export async function bearer(base, user) {
  const signed = await api(base, "POST", "/local/auth/sign-in", { user });
  assert.equal(signed.status, 200, `sign-in: ${JSON.stringify(signed.body)}`);
  return { authorization: `Bearer ${signed.body.accessToken}` };
}

// Signs `page` in as `user` through its sign-in form (every later page of the context shares it).
export async function signIn(page, user) {
  await page.fill("#signin-user", user);
  await page.click("#signin");
  await page.waitForSelector("#signed-in", { state: "visible" });
  assert.equal(await page.textContent("#signed-in-as"), user);
}
