// Validates GLB files with the Khronos glTF-Validator (npm package gltf-validator).
// Usage: ORFEAS_NODE_MODULES=DIR node validate-gltf.mjs FILE...
// DIR is the node_modules folder the validator is installed in (scripts/test.sh sets it up).
// Prints one JSON line per file; exits 1 if any file has errors.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const modules = process.env.ORFEAS_NODE_MODULES;
const require = createRequire(modules ? join(modules, "resolver.cjs") : import.meta.url);
const validator = require("gltf-validator");

let failed = false;
for (const file of process.argv.slice(2)) {
  const bytes = new Uint8Array(readFileSync(file));
  const report = await validator.validateBytes(bytes, { maxIssues: 50 });
  const { numErrors, numWarnings, numInfos, messages } = report.issues;
  if (numErrors > 0) failed = true;
  console.log(JSON.stringify({
    file,
    errors: numErrors,
    warnings: numWarnings,
    infos: numInfos,
    messages: messages.filter((m) => m.severity <= 1).map((m) => `${m.code} ${m.pointer ?? ""}: ${m.message}`),
  }));
}
process.exit(failed ? 1 : 0);
