// Unknown fields, as `kubectl --validate=strict` and kubeconform -strict report them:
// Kubernetes' OpenAPI schemas allow any extra property, so a misspelt optional field
// (`hostPid`) passes schema validation. kubernetes-models declares, for every API type, an
// interface generated from the same OpenAPI spec; its property list is the set of fields
// the type has. Where a field's declared type is an inline object, it is not checked.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const nodeModules = join(dirname(fileURLToPath(import.meta.url)), "node_modules");
const parsed = new Map(); // .d.ts path -> { props: Map<name, type> | null, imports, name }

// A declared type: {ref: name, file}, {array: type}, {map: type} or null (a leaf or an
// inline object: nothing to check below it).
function parseType(text, imports) {
  text = text.trim();
  const array = /^Array<(.+)>$/.exec(text);
  if (array) {
    const inner = parseType(array[1], imports);
    return inner && { array: inner };
  }
  if (/^I[A-Za-z0-9]+$/.test(text) && imports.has(text)) return { ref: imports.get(text) };
  return null;
}

// The first `export interface` of a declaration file: its property types.
function parseFile(path) {
  if (parsed.has(path)) return parsed.get(path);
  const result = { props: null, name: "" };
  parsed.set(path, result);
  if (!existsSync(path)) return result;
  const lines = readFileSync(path, "utf8").split("\n");
  const imports = new Map();
  for (const line of lines) {
    const m = /^import \{ (\w+) \} from "([^"]+)";$/.exec(line);
    if (!m) continue;
    const spec = m[2].replace(/\.js$/, "");
    const target = spec.startsWith(".") ? join(dirname(path), spec) : join(nodeModules, spec);
    imports.set(m[1], target + ".d.ts");
  }
  const start = lines.findIndex((l) => /^export interface \w+/.test(l));
  if (start < 0) return result; // a type alias (IntOrString, Quantity, Time): a leaf
  result.name = /^export interface (\w+)/.exec(lines[start])[1];
  result.props = new Map();
  for (let i = start + 1; i < lines.length && lines[i] !== "}"; i++) {
    const m = /^ {4}"([^"]+)"\??: (.*)$/.exec(lines[i]);
    if (!m) continue;
    let type = null;
    if (m[2] === "{") {
      // { [key: string]: T; } is a map of T; any other inline object is not checked.
      const entry = /^ {8}\[key: string\]: (.*);$/.exec(lines[i + 1] ?? "");
      if (entry && /^ {4}\};$/.test(lines[i + 2] ?? "")) {
        const inner = parseType(entry[1], imports);
        type = inner && { map: inner };
      }
    } else if (m[2].endsWith(";")) {
      type = parseType(m[2].slice(0, -1), imports);
    }
    result.props.set(m[1], type);
  }
  return result;
}

function check(value, type, path, errors) {
  if (!type || value === null || typeof value !== "object") return;
  if (type.array) {
    if (Array.isArray(value)) value.forEach((v, i) => check(v, type.array, `${path}/${i}`, errors));
    return;
  }
  if (Array.isArray(value)) return; // a type error, reported by the schema
  if (type.map) {
    for (const [k, v] of Object.entries(value)) check(v, type.map, `${path}/${k}`, errors);
    return;
  }
  const decl = parseFile(type.ref);
  if (!decl.props) return;
  for (const [k, v] of Object.entries(value)) {
    const at = path ? `${path}/${k}` : k;
    if (!decl.props.has(k)) {
      errors.push(`${at}: unknown field "${k}" (${decl.name.replace(/^I(IoK8s)?/, "")} has no such field)`);
      continue;
    }
    check(v, decl.props.get(k), at, errors);
  }
}

// Unknown fields of a document whose model is kubernetes-models/<apiVersion>/<kind>;
// throws when that model has no declaration file (the installation is broken).
export function unknownFields(doc, apiVersion, kind) {
  const file = join(nodeModules, "kubernetes-models", apiVersion, `${kind}.d.ts`);
  if (!parseFile(file).props) throw new Error(`no type declarations in ${file}`);
  const errors = [];
  check(doc, { ref: file }, "", errors);
  return errors;
}
