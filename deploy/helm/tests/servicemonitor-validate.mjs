// Validates ServiceMonitors (a JSON array, argv[2]) against prometheus-operator's CRD schema as
// compiled by @kubernetes-models/prometheus-operator: types, enums, required fields and formats.
// That schema does not forbid unknown fields (neither does the API server for this CRD, which
// prunes them), so a misspelt field is not reported here.
// The models are installed in a cache outside the repository: ROLLOUT_ROUTER_NODE_MODULES.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.ROLLOUT_ROUTER_NODE_MODULES;
if (!modules) {
  console.error("ROLLOUT_ROUTER_NODE_MODULES is not set (see deploy/helm/tools.sh)");
  process.exit(2);
}
const { ServiceMonitor } = await import(pathToFileURL(join(modules,
  "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor.js")).href);

const objects = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const object of objects) {
  const { apiVersion, kind, ...rest } = object;
  try {
    new ServiceMonitor(rest).validate();
  } catch (error) {
    failed += 1;
    console.error(`ServiceMonitor ${object.metadata?.name}: ${error.message}`);
  }
}
if (objects.length === 0) {
  console.error("no ServiceMonitor to validate");
  process.exit(1);
}
console.log(`ok   ${objects.length} ServiceMonitor(s) valid against the prometheus-operator CRD schema`);
process.exit(failed ? 1 : 0);
