import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { commandFromSetting, pythonVersionOk, redactSecrets, resolveServerCommand, splitCommandLine } from '../../src/serverCommand';

describe('server command setting', () => {
  it('splits command lines with quotes and escapes', () => {
    assert.deepEqual(splitCommandLine('/opt/venv/bin/switchboard serve'), ['/opt/venv/bin/switchboard', 'serve']);
    assert.deepEqual(splitCommandLine('"/path with space/switchboard" serve --log-level debug'), ['/path with space/switchboard', 'serve', '--log-level', 'debug']);
    assert.deepEqual(splitCommandLine("python -m switchboard serve --name 'a b'"), ['python', '-m', 'switchboard', 'serve', '--name', 'a b']);
    assert.deepEqual(splitCommandLine('a\\ b c'), ['a b', 'c']);
    assert.deepEqual(splitCommandLine('x ""'), ['x', '']);
    assert.throws(() => splitCommandLine('"unterminated'), /Unterminated/);
  });
  it('accepts an array or a string, and treats empty as unset', () => {
    assert.deepEqual(commandFromSetting(['/bin/sb', 'serve']), ['/bin/sb', 'serve']);
    assert.deepEqual(commandFromSetting('sb serve'), ['sb', 'serve']);
    assert.equal(commandFromSetting([]), undefined);
    assert.equal(commandFromSetting('  '), undefined);
    assert.equal(commandFromSetting(undefined), undefined);
  });
});

describe('server command resolution order', () => {
  const ext = '/ext/switchboard';
  const managed = '/storage/server-venv';
  const base = { extensionPath: ext, managedVenv: managed, managedStamp: 'switchboard-0.1.0', envPath: '' };
  it('prefers the setting', () => {
    const r = resolveServerCommand({ ...base, setting: ['/x/switchboard', 'serve'], exists: () => true });
    assert.deepEqual(r, { command: '/x/switchboard', args: ['serve'], source: 'setting' });
  });
  it('uses a development checkout’s .venv next to the extension', () => {
    const files = new Set([path.join(ext, '..', 'pyproject.toml'), path.join(ext, '..', '.venv', 'bin', 'switchboard')]);
    const r = resolveServerCommand({ ...base, setting: [], exists: (p) => files.has(p) });
    assert.equal(r?.source, 'repo-venv');
    assert.deepEqual(r?.args, ['serve']);
  });
  it('reuses the managed venv only when its stamp matches', () => {
    const files = new Set([path.join(managed, 'bin', 'switchboard')]);
    const stamp = (v: string) => (p: string) => (p.endsWith('switchboard-stamp') ? v : undefined);
    assert.equal(resolveServerCommand({ ...base, setting: '', exists: (p) => files.has(p), readFile: stamp('switchboard-0.1.0\n') })?.source, 'managed-venv');
    assert.equal(resolveServerCommand({ ...base, setting: '', exists: (p) => files.has(p), readFile: stamp('switchboard-0.0.9') }), undefined);
  });
  it('falls back to undefined (install needed) when nothing is found', () => {
    assert.equal(resolveServerCommand({ ...base, setting: undefined, exists: () => false }), undefined);
  });
});

describe('python and secrets', () => {
  it('checks the Python version', () => {
    assert.deepEqual(pythonVersionOk('Python 3.11.7'), { ok: true, version: '3.11.7' });
    assert.deepEqual(pythonVersionOk('Python 3.13.0'), { ok: true, version: '3.13.0' });
    assert.deepEqual(pythonVersionOk('Python 3.9.18'), { ok: false, version: '3.9.18' });
    assert.deepEqual(pythonVersionOk('command not found'), { ok: false, version: undefined });
  });
  it('redacts keys and tokens from log lines', () => {
    assert.equal(redactSecrets('key=sk-ant-api03-abcdefghijkl end'), 'key=sk-ant-‹redacted› end');
    assert.equal(redactSecrets('token eyJhbGciOi.payload.sig', ['eyJhbGciOi.payload.sig']), 'token ‹redacted›');
  });
});
