// Validate glTF/GLB files with the Khronos glTF validator; prints one JSON line per file:
// {"file": ..., "errors": N, "warnings": N, "messages": [first errors]}. Exit 0 whatever the verdicts.
const fs = require("fs");
const validator = require("gltf-validator");

async function main() {
  for (const file of process.argv.slice(2)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), { maxIssues: 50 });
    const issues = report.issues;
    const errors = issues.messages.filter((m) => m.severity === 0).slice(0, 5);
    console.log(JSON.stringify({ file, errors: issues.numErrors, warnings: issues.numWarnings,
                                 messages: errors.map((m) => `${m.code} ${m.pointer || ""} ${m.message}`) }));
  }
}
main().catch((err) => { console.error(err); process.exit(1); });
