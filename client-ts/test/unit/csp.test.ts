import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { contentSecurityPolicy, nonce } from '../../src/csp';

const root = path.resolve(__dirname, '..', '..');

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p, ext) : ext.test(f) ? [p] : [];
  });
}

describe('webview content security', () => {
  it('has a strict CSP with a nonce and no inline or remote sources', () => {
    const n = nonce();
    assert.match(n, /^[A-Za-z0-9]{20,}$/);
    assert.notEqual(n, nonce());
    const csp = contentSecurityPolicy('https://file+.vscode-resource.vscode-cdn.net', n);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, new RegExp(`script-src 'nonce-${n}'`));
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.match(csp, /connect-src 'none'/);
  });
  it('webview sources reference no remote resources', () => {
    for (const f of [...files(path.join(root, 'webview'), /\.(ts|css)$/), path.join(root, 'src', 'webviewHtml.ts')]) {
      const text = readFileSync(f, 'utf8');
      const remote = text.match(/(?:src|href|url)\s*[=(]\s*["']?https?:\/\//gi);
      assert.equal(remote, null, `${path.relative(root, f)} loads a remote resource`);
    }
  });
});
