// The Content-Security-Policy of every Switchboard webview (pure, unit-tested).
import { randomBytes } from 'node:crypto';

/** A fresh nonce for each load of a webview's HTML. */
export function nonce(): string {
  return randomBytes(18).toString('base64').replace(/[+/=]/g, '');
}

/** Only the extension's own files (cspSource) and scripts carrying the nonce; nothing remote, no inline code. */
export function contentSecurityPolicy(cspSource: string, n: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
    `style-src ${cspSource} 'nonce-${n}'`,
    `script-src 'nonce-${n}'`,
    "connect-src 'none'",
    "frame-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
  ].join('; ');
}
