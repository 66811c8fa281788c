#!/usr/bin/env node
// Build the production bundle, bundle the server wheel (for the managed virtualenv) and package a .vsix.
//   node scripts/package.mjs [--out path.vsix] [--no-wheel]
// The wheel is built from the repo with $SWITCHBOARD_PYTHON_BIN_DIR/python (default <repo>/.venv/bin)
// in a scratch copy, so the checkout gets no build/ or egg-info droppings. pip fetches the build
// backend (setuptools) from PyPI once; pass --no-wheel (or SWITCHBOARD_SKIP_WHEEL=1) to skip it.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repo = path.resolve(root, '..');
const args = process.argv.slice(2);
const pkg = JSON.parse((await import('node:fs')).readFileSync(path.join(root, 'package.json'), 'utf8'));
const out = args.includes('--out') ? path.resolve(args[args.indexOf('--out') + 1]) : path.join(root, `${pkg.name}-${pkg.version}.vsix`);
const noWheel = args.includes('--no-wheel') || process.env.SWITCHBOARD_SKIP_WHEEL === '1';
const run = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });

run(process.execPath, [path.join(root, 'scripts', 'build.mjs'), '--production']);

const wheelDir = path.join(root, 'dist', 'server');
rmSync(wheelDir, { recursive: true, force: true });
if (!noWheel) {
  const python = path.join(process.env.SWITCHBOARD_PYTHON_BIN_DIR || path.join(repo, '.venv', 'bin'), 'python');
  const scratch = mkdtempSync(path.join(tmpdir(), 'switchboard-wheel-'));
  try {
    for (const f of ['pyproject.toml', 'README.md']) if (existsSync(path.join(repo, f))) cpSync(path.join(repo, f), path.join(scratch, f));
    cpSync(path.join(repo, 'server', 'switchboard'), path.join(scratch, 'server', 'switchboard'), {
      recursive: true,
      filter: (src) => !/__pycache__|\.pyc$/.test(src),
    });
    mkdirSync(wheelDir, { recursive: true });
    run(python, ['-m', 'pip', 'wheel', '--no-deps', '--disable-pip-version-check', '-q', '-w', wheelDir, scratch]);
    console.log(`bundled ${readdirSync(wheelDir).join(', ')}`);
  } catch (err) {
    console.warn(`warning: could not build the server wheel (${err.message}); the .vsix will rely on switchboard.server.command or PATH`);
    rmSync(wheelDir, { recursive: true, force: true });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

run(path.join(repo, 'node_modules', '.bin', 'vsce'), ['package', '--no-dependencies', '--allow-missing-repository', '--out', out]);
console.log(`packaged ${path.relative(process.cwd(), out)}`);
