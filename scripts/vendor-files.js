// What web/vendor/ holds and which script writes what (required by scripts/vendor-openfeature and
// scripts/vendor-uplot; not a command itself).
//
// Several scripts vendor into one directory, so each one owns some of its files (OWNERS) and one
// section of its README.md, between `<!-- begin scripts/NAME -->` and `<!-- end scripts/NAME -->`.
// A script rewrites only what it owns, so running one never deletes the other's files, and its
// `--check` compares only what it owns, plus two things every check enforces: the README's header
// and section order, and that no file in web/vendor/ is owned by nobody (an unchecked file there
// would be served as if it were vendored from a pinned version).
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");
const VENDOR = path.join(ROOT, "web", "vendor");
const README = "README.md";

// Each script's files, relative to web/vendor/, in the README's order.
const OWNERS = [
  ["vendor-openfeature", (file) => file === "openfeature.js" || file.startsWith("licenses/openfeature-")],
  ["vendor-uplot", (file) => file.startsWith("uPlot.") || file === "licenses/uplot.LICENSE"],
];

const HEADER = [
  "# web/vendor: the third-party code the runner's pages load",
  "",
  "Each section below, and the files it names, is written by the script it names from versions",
  "pinned there; do not edit. `--check` on each script (both run by `./scripts/test`) fails when",
  "these files differ from what the pinned versions produce, or when a file here belongs to no",
  "script. The pages load these files from their own origin: nothing comes from a CDN, and the",
  "runner's Content-Security-Policy (`default-src 'self'`, no inline script) holds.",
  "",
].join("\n");

const begin = (owner) => `<!-- begin scripts/${owner} -->`;
const end = (owner) => `<!-- end scripts/${owner} -->`;

// Every file under `dir`, relative, sorted.
function files(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath ?? entry.path, entry.name)))
    .sort();
}

function ownerOf(file) {
  const found = OWNERS.find(([, owns]) => owns(file));
  return found ? found[0] : null;
}

// The README with `owner`'s section set to `section` (the others' kept as they are).
function readme(owner, section) {
  const current = fs.existsSync(path.join(VENDOR, README)) ? fs.readFileSync(path.join(VENDOR, README), "utf8") : "";
  const parts = [HEADER];
  for (const [name] of OWNERS) {
    let body = null;
    if (name === owner) {
      body = section.trimEnd();
    } else {
      const at = current.indexOf(begin(name));
      const to = current.indexOf(end(name));
      if (at >= 0 && to > at) body = current.slice(at + begin(name).length, to).trim();
    }
    if (body !== null) parts.push(`${begin(name)}\n${body}\n${end(name)}\n`);
  }
  return parts.join("\n");
}

// Writes `owner`'s files (from `built`, a directory holding exactly them) and README section into
// web/vendor/, or with `check` fails (returns the reasons) when web/vendor/ differs from them.
function sync(owner, built, section, check) {
  const want = files(built);
  const strays = want.filter((file) => ownerOf(file) !== owner);
  if (strays.length > 0) throw new Error(`scripts/${owner} built files it does not own: ${strays.join(", ")}`);
  const text = readme(owner, section);
  if (check) {
    const have = files(VENDOR).filter((file) => file !== README);
    const orphans = have.filter((file) => ownerOf(file) === null);
    const mine = have.filter((file) => ownerOf(file) === owner);
    const differ = [...new Set([...want, ...mine])].filter((file) => {
      const a = path.join(built, file);
      const b = path.join(VENDOR, file);
      return !fs.existsSync(a) || !fs.existsSync(b) || !fs.readFileSync(a).equals(fs.readFileSync(b));
    });
    const current = fs.existsSync(path.join(VENDOR, README)) ? fs.readFileSync(path.join(VENDOR, README), "utf8") : "";
    if (current !== text) differ.push(README);
    const reasons = [];
    if (differ.length > 0) reasons.push(`not what the pinned versions produce: ${differ.join(", ")}`);
    if (orphans.length > 0) reasons.push(`owned by no vendoring script: ${orphans.join(", ")}`);
    return { files: want, reasons };
  }
  for (const file of files(VENDOR).filter((f) => ownerOf(f) === owner)) fs.rmSync(path.join(VENDOR, file));
  for (const file of want) {
    fs.mkdirSync(path.dirname(path.join(VENDOR, file)), { recursive: true });
    fs.copyFileSync(path.join(built, file), path.join(VENDOR, file));
  }
  fs.writeFileSync(path.join(VENDOR, README), text);
  return { files: want, reasons: [] };
}

module.exports = { ROOT, VENDOR, sync };
