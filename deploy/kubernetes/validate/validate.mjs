// Validates Kubernetes manifests (multi-document YAML) against the API schemas of
// Kubernetes v1.36, as compiled from Kubernetes' published OpenAPI spec by the
// kubernetes-models package (npm). No cluster is involved.
//
//   node validate.mjs FILE...      exit 0: every document valid; 1: errors (printed);
//                                  2: usage or the validator itself is not installed
//
// Every document must have apiVersion, kind and metadata.name, parse as YAML without
// warnings (duplicate keys are errors), pass the schema of its kind and have no unknown
// fields (unknown_fields.mjs). Unknown kinds or API versions are errors: a manifest for an
// API this Kubernetes does not serve is broken.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { unknownFields } from "./unknown_fields.mjs";

// apiVersion "apps/v1" -> module "kubernetes-models/apps/v1/<Kind>"; core "v1" -> "v1/<Kind>".
function modulePath(apiVersion, kind) {
  if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion)) return null;
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind)) return null;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

async function checkDocument(file, index, doc) {
  const where = `${file}: document ${index + 1}`;
  if (doc === null || typeof doc !== "object" || Array.isArray(doc))
    return [`${where}: not a mapping`];
  const { apiVersion, kind } = doc;
  if (typeof apiVersion !== "string") return [`${where}: apiVersion missing`];
  if (typeof kind !== "string") return [`${where}: kind missing`];
  const name = doc.metadata?.name;
  const label = `${where} (${kind} ${name ?? "?"})`;
  if (typeof name !== "string" || name === "") return [`${label}: metadata.name missing`];

  const path = modulePath(apiVersion, kind);
  let mod = null;
  if (path) {
    try {
      mod = await import(path);
    } catch (e) {
      if (e.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED" && e.code !== "ERR_MODULE_NOT_FOUND") throw e;
    }
  }
  const Model = mod?.[kind];
  // Only top-level resources carry apiVersion/kind (DaemonSetSpec is not a resource).
  if (typeof Model !== "function" || Model.apiVersion !== apiVersion || Model.kind !== kind)
    return [`${label}: no schema for apiVersion ${apiVersion}, kind ${kind} in Kubernetes v1.36`];
  const errors = [];
  try {
    // The constructor copies the document; validate() throws with every schema error.
    new Model(doc).validate();
  } catch (e) {
    errors.push(...e.message.split(", ").map((m) => m.replace(/^data\//, "")));
  }
  errors.push(...unknownFields(doc, apiVersion, kind));
  return errors.map((e) => `${label}: ${e}`);
}

async function checkFile(file) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    return { errors: [`${file}: ${e.message}`], count: 0 };
  }
  const errors = [];
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  let count = 0;
  for (const [i, d] of docs.entries()) {
    const problems = [...d.errors, ...d.warnings];
    if (problems.length) {
      for (const p of problems) errors.push(`${file}: document ${i + 1}: YAML: ${p.message}`);
      continue;
    }
    const value = d.toJS();
    if (value === null) continue; // an empty document (e.g. after a trailing ---)
    count++;
    errors.push(...(await checkDocument(file, i, value)));
  }
  if (count === 0 && errors.length === 0) errors.push(`${file}: no Kubernetes documents`);
  return { errors, count };
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs FILE...");
  process.exit(2);
}
let failed = false;
for (const file of files) {
  const { errors, count } = await checkFile(file);
  if (errors.length) {
    failed = true;
    for (const e of errors) console.log(`INVALID ${e}`);
  } else {
    console.log(`ok ${file} (${count} document${count === 1 ? "" : "s"})`);
  }
}
process.exit(failed ? 1 : 0);
