#!/usr/bin/env node
// Generate src/protocol.generated.ts from the server's protocol (pydantic models → JSON Schema → TypeScript).
//
//   node scripts/gen-protocol.mjs            regenerate the file
//   node scripts/gen-protocol.mjs --check    fail (exit 1) when the committed file is stale
//   node scripts/gen-protocol.mjs --schema f read the JSON Schema from a file instead of the live server
//
// The schema comes from the Python side: `switchboard schema` when the CLI has it, else
// `python -c "from switchboard.protocol.schema import render; ..."`. The interpreter is taken from
// $SWITCHBOARD_PYTHON_BIN_DIR (default: <repo>/.venv/bin).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compile } from 'json-schema-to-typescript';

const here = path.dirname(fileURLToPath(import.meta.url));
const clientDir = path.resolve(here, '..');
const repoDir = path.resolve(clientDir, '..');
const outFile = path.join(clientDir, 'src', 'protocol.generated.ts');
const args = process.argv.slice(2);
const check = args.includes('--check');
const schemaArg = args.includes('--schema') ? args[args.indexOf('--schema') + 1] : undefined;

function loadSchema() {
  if (schemaArg) return readFileSync(schemaArg, 'utf8');
  const binDir = process.env.SWITCHBOARD_PYTHON_BIN_DIR || path.join(repoDir, '.venv', 'bin');
  const cli = path.join(binDir, 'switchboard');
  const python = path.join(binDir, 'python');
  const opts = { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 };
  if (existsSync(cli)) {
    try {
      const out = execFileSync(cli, ['schema'], opts);
      JSON.parse(out);
      return out;
    } catch {
      // an older CLI without the `schema` subcommand: fall back to the module
    }
  }
  if (!existsSync(python)) {
    throw new Error(`No Python at ${python}; set SWITCHBOARD_PYTHON_BIN_DIR to the bin/ of a venv with switchboard installed.`);
  }
  return execFileSync(
    python,
    ['-c', "from switchboard.protocol.schema import render; print(render(), end='')"],
    opts,
  );
}

const refName = (ref) => ref.replace(/^#\/(\$defs|definitions)\//, '');

/** Every def reachable from `roots` through $ref. */
function reachable(defs, roots) {
  const seen = new Set();
  const visit = (node) => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    if (typeof node.$ref === 'string') {
      const name = refName(node.$ref);
      if (!seen.has(name)) {
        seen.add(name);
        visit(defs[name]);
      }
    }
    Object.values(node).forEach(visit);
  };
  roots.forEach((r) => {
    seen.add(r);
    visit(defs[r]);
  });
  return seen;
}

/** Drop nested `title`s (json-schema-to-typescript turns them into stray named types) and rewrite refs. */
function clean(node, isDefRoot = false) {
  if (Array.isArray(node)) return node.map((n) => clean(n));
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'title' && !isDefRoot) continue;
    if (k === '$ref') out.$ref = `#/definitions/${refName(v)}`;
    else if (k === 'properties') out.properties = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, clean(s)]));
    else out[k] = clean(v);
  }
  return out;
}

async function generate(schemaText) {
  const schema = JSON.parse(schemaText);
  const defs = schema.$defs;
  const requests = schema['x-requests'];
  const notifications = schema['x-notifications'];
  const clientNotifications = schema['x-client-notifications'];
  const progress = schema['x-progress'];
  const errorCodes = schema['x-error-codes'];
  // What the client sends is read leniently by the server (defaults make fields optional). What the
  // server sends always carries every field, so every property of an output-only type is required
  // (pydantic's serialization-mode schema leaves fields with defaults optional).
  const inputs = reachable(defs, [
    ...Object.values(requests).map((r) => r.params),
    ...Object.values(clientNotifications).map((n) => n.params),
  ]);
  const definitions = {};
  for (const name of Object.keys(defs).sort()) {
    const def = clean(defs[name], true);
    def.title = name;
    if (!inputs.has(name) && def.properties) def.required = Object.keys(def.properties);
    definitions[name] = def;
  }
  const root = {
    title: 'SwitchboardProtocolSchema',
    type: 'object',
    additionalProperties: false,
    properties: {},
    definitions,
  };
  let ts = await compile(root, 'SwitchboardProtocolSchema', {
    bannerComment: '',
    additionalProperties: false,
    unreachableDefinitions: true,
    declareExternallyReferenced: true,
    enableConstEnums: false,
    strictIndexSignatures: true,
    format: true,
    style: { singleQuote: true, printWidth: 120 },
  });
  ts = ts
    .replace(/export interface SwitchboardProtocolSchema \{\}\n?/, '')
    // json-schema-to-typescript's provenance notes ("This interface was referenced by ...") are noise here
    .replace(/\/\*\*\n \* This (interface|type) was referenced by[^]*?\*\/\n/g, '')
    .replace(/\n \*\n \* This (interface|type) was referenced by[^]*?\*\//g, '\n */');
  const doc = (s) => `  /** ${s.replace(/\*\//g, '* /')} */\n`;
  const lines = [];
  lines.push('/* eslint-disable */');
  lines.push('// GENERATED by client-ts/scripts/gen-protocol.mjs from the server\'s pydantic models');
  lines.push('// (server/switchboard/protocol). Do not edit: run `npm run gen:protocol`.');
  lines.push('// `npm run check:protocol` fails when this file is stale.');
  lines.push('');
  lines.push(ts.trim());
  lines.push('');
  lines.push('// --- aliases of the literal unions above ---------------------------------------------------------');
  lines.push('');
  lines.push("export type ModelId = ModelInfo['id'];");
  lines.push("export type ConcreteModelId = ChatResult['routedModel'];");
  lines.push("export type PlanId = UsageReport['plan'];");
  lines.push('');
  lines.push('// --- the method map ------------------------------------------------------------------------------');
  lines.push('');
  lines.push('/** Every request: method → params and result. */');
  lines.push('export interface SwitchboardRequests {');
  for (const method of Object.keys(requests).sort()) {
    const r = requests[method];
    if (r.doc) lines.push(doc(r.doc).trimEnd());
    lines.push(`  '${method}': { params: ${r.params}; result: ${r.result} };`);
  }
  lines.push('}');
  lines.push('');
  lines.push('/** Every notification the server sends: method → params. */');
  lines.push('export interface SwitchboardNotifications {');
  for (const method of Object.keys(notifications).sort()) {
    const n = notifications[method];
    if (n.doc) lines.push(doc(n.doc).trimEnd());
    lines.push(`  '${method}': ${n.params};`);
  }
  lines.push('}');
  lines.push('');
  lines.push('/** Every notification the client sends: method → params. */');
  lines.push('export interface SwitchboardClientNotifications {');
  for (const method of Object.keys(clientNotifications).sort()) {
    const n = clientNotifications[method];
    if (n.doc) lines.push(doc(n.doc).trimEnd());
    lines.push(`  '${method}': ${n.params};`);
  }
  lines.push('}');
  lines.push('');
  lines.push('export type SwitchboardRequestMethod = keyof SwitchboardRequests;');
  lines.push('export type SwitchboardNotificationMethod = keyof SwitchboardNotifications;');
  const list = (name, items) => `export const ${name} = [\n${items.map((m) => `  '${m}',\n`).join('')}] as const;`;
  lines.push(list('REQUEST_METHODS', Object.keys(requests).sort()));
  lines.push(list('NOTIFICATION_METHODS', Object.keys(notifications).sort()));
  lines.push('');
  lines.push('/** The values of `$/progress` during a chat or retry. */');
  lines.push(`export type ChatProgress = ${progress.join(' | ')};`);
  lines.push('');
  lines.push('/** JSON-RPC error codes the server uses. */');
  lines.push('export const ErrorCode = {');
  for (const [name, code] of Object.entries(errorCodes).sort((a, b) => a[1] - b[1])) lines.push(`  ${name}: ${code},`);
  lines.push('} as const;');
  lines.push('export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];');
  lines.push('');
  return lines.join('\n');
}

const generated = await generate(loadSchema());
if (check) {
  const current = existsSync(outFile) ? readFileSync(outFile, 'utf8') : '';
  if (current !== generated) {
    const a = current.split('\n');
    const b = generated.split('\n');
    const first = b.findIndex((line, i) => line !== a[i]);
    console.error(`protocol drift: ${path.relative(repoDir, outFile)} is stale (first difference at line ${first + 1}:`);
    console.error(`  committed: ${JSON.stringify(a[first])}`);
    console.error(`  generated: ${JSON.stringify(b[first])})`);
    console.error('Run `npm run gen:protocol` and commit the result.');
    process.exit(1);
  }
  console.log(`protocol check: ${path.relative(repoDir, outFile)} is up to date with the server's schema`);
} else {
  writeFileSync(outFile, generated);
  console.log(`wrote ${path.relative(repoDir, outFile)}`);
}
