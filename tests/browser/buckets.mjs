// Which side of a split a user is on, computed here and not asked of the server (not a test
// file: `node --test tests/browser/` runs only *.test.mjs): MurmurHash3 x86_32 and flagd's
// fractional v2 bucket, checked against flagd-testbed's published vectors
// (shared/targeting/tests/fixtures/flagd-fractional-v2.json).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./support.mjs";

// MurmurHash3 x86_32 (seed 0) over UTF-8 bytes.
export function murmur3(text) {
  const bytes = new TextEncoder().encode(text);
  let h = 0;
  const blocks = bytes.length >> 2;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  for (let i = 0; i < blocks; i++) {
    let k =
      bytes[4 * i] | (bytes[4 * i + 1] << 8) | (bytes[4 * i + 2] << 16) | (bytes[4 * i + 3] << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  const tail = blocks * 4;
  switch (bytes.length & 3) {
    case 3:
      k ^= bytes[tail + 2] << 16;
    // falls through
    case 2:
      k ^= bytes[tail + 1] << 8;
    // falls through
    case 1:
      k ^= bytes[tail];
      k = Math.imul(k, c1);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, c2);
      h ^= k;
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// The index of the bucket `key` falls in, among buckets of these weights (flagd v2).
export function bucketIndex(key, weights) {
  const total = weights.reduce((a, b) => a + b, 0);
  const bucket = (BigInt(murmur3(key)) * BigInt(total)) >> 32n;
  let end = 0n;
  for (const [i, w] of weights.entries()) {
    end += BigInt(w);
    if (bucket < end) return i;
  }
  return weights.length - 1;
}

// The flagd-testbed vectors, to trust the functions above; answers how many were checked.
export function checkAgainstTestbed() {
  const fixture = JSON.parse(
    readFileSync(path.join(ROOT, "shared/targeting/tests/fixtures/flagd-fractional-v2.json"), "utf8"),
  );
  for (const c of fixture.cases) {
    const rule = Object.values(fixture.flags[c.flag].rules)[0];
    const seed = rule.split_seed ?? c.flag;
    const by = c.context[rule.split_by ?? "targetingKey"];
    const i = bucketIndex(seed + by, rule.split.map((b) => b.weight));
    assert.equal(rule.split[i].value, c.value, `testbed vector ${JSON.stringify(c)}`);
  }
  return fixture.cases.length;
}
