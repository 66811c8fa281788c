#!/usr/bin/env node
// Bundle the extension (Node, CommonJS, `vscode` external) and the webviews (browser IIFE + CSS),
// and copy the codicon font. Usage: node scripts/build.mjs [--production] [--watch]
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');
const require = createRequire(import.meta.url);
const dist = path.join(root, 'dist');
const webviewOut = path.join(dist, 'webview');

rmSync(path.join(dist, 'extension.js'), { force: true });
rmSync(webviewOut, { recursive: true, force: true });
mkdirSync(webviewOut, { recursive: true });

const codicons = path.dirname(require.resolve('@vscode/codicons/dist/codicon.css'));
copyFileSync(path.join(codicons, 'codicon.css'), path.join(webviewOut, 'codicon.css'));
copyFileSync(path.join(codicons, 'codicon.ttf'), path.join(webviewOut, 'codicon.ttf'));

const common = {
  bundle: true,
  minify: production,
  sourcemap: production ? false : 'linked',
  logLevel: 'warning',
  legalComments: 'none',
  absWorkingDir: root,
};

const configs = [
  {
    ...common,
    entryPoints: ['src/extension.ts'],
    outfile: 'dist/extension.js',
    platform: 'node',
    format: 'cjs',
    target: 'node18',
    external: ['vscode'],
  },
  {
    ...common,
    entryPoints: { chat: 'webview/chat/main.ts', usage: 'webview/usage/main.ts' },
    outdir: 'dist/webview',
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
  },
  {
    ...common,
    entryPoints: { chat: 'webview/chat/chat.css', usage: 'webview/usage/usage.css' },
    outdir: 'dist/webview',
    loader: { '.css': 'css' },
  },
];

if (watch) {
  for (const c of configs) await (await esbuild.context(c)).watch();
  console.log('watching…');
} else {
  const started = Date.now();
  await Promise.all(configs.map((c) => esbuild.build(c)));
  console.log(`built dist/ in ${Date.now() - started} ms${production ? ' (production)' : ''}`);
}
