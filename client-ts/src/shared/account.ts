// Who the user is signed in as, and where the account and upgrade links lead, as plain data (pure and
// unit-tested; the vscode glue lives in account.ts). Everything here reads AccountInfo as the server
// sent it: the client decides nothing about plans or sessions.
import type { AccountInfo, UsageReport } from '../protocol.generated';

export type { AccountInfo };

/** The fallback when a report predates accountInfo (an older server): local mode. */
export const LOCAL_ACCOUNT: AccountInfo = { mode: 'local', email: null, gatewayUrl: null, accountUrl: null, upgradeUrl: null };

export function accountOf(usage: UsageReport | undefined): AccountInfo {
  return usage?.accountInfo ?? LOCAL_ACCOUNT;
}

export function isHosted(info: AccountInfo): boolean {
  return info.mode === 'hosted';
}

/**
 * Only http(s) links are opened: the URLs come from the gateway's metadata through the server, and
 * a `command:`, `file:` or `vscode:` URI there must not turn into an action in the editor.
 */
export function safeExternalUrl(url: string | null | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.toString() : undefined;
  } catch {
    return undefined;
  }
}

/** "gateway.example.com" (with the port when it has one), or the text as it is if it is not a URL. */
export function gatewayHost(url: string | null | undefined): string {
  if (!url) return 'Switchboard Cloud';
  try {
    return new URL(url).host || url;
  } catch {
    return url;
  }
}

/** "Signed in as ada@example.com via cloud.example" / "Local: this machine's ledger". */
export function accountLine(info: AccountInfo): string {
  if (!isHosted(info)) return 'Not signed in: credits are counted on this machine';
  const who = info.email ? `Signed in as ${info.email}` : 'Signed in';
  return `${who} via ${gatewayHost(info.gatewayUrl)}`;
}

/** What "Upgrade" does: open the gateway's upgrade page when signed in, otherwise sign in first. */
export type UpgradeTarget = { kind: 'open'; url: string } | { kind: 'signIn' };

export function upgradeTarget(info: AccountInfo): UpgradeTarget {
  const url = isHosted(info) ? safeExternalUrl(info.upgradeUrl ?? info.accountUrl) : undefined;
  return url ? { kind: 'open', url } : { kind: 'signIn' };
}

export function accountTarget(info: AccountInfo): UpgradeTarget {
  const url = isHosted(info) ? safeExternalUrl(info.accountUrl) : undefined;
  return url ? { kind: 'open', url } : { kind: 'signIn' };
}

/** The text of the sign-in dialog for a device code. */
export function deviceCodePrompt(code: { userCode: string; verificationUri: string; expiresIn: number }): {
  message: string;
  detail: string;
} {
  const minutes = Math.max(1, Math.round(code.expiresIn / 60));
  return {
    message: `Your Switchboard sign-in code: ${code.userCode}`,
    detail:
      `Open ${code.verificationUri} in your browser, sign in and enter the code ${code.userCode} to approve ` +
      `this editor. The code expires in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
  };
}

/** Why a sign-in ended without a session, for the reasons the server gives (AUTH_REQUIRED data.reason). */
export function signInFailure(reason: string | undefined, message: string): { text: string; openSettings: boolean } {
  switch (reason) {
    case 'no_gateway':
      return {
        text: 'No Switchboard gateway is configured. Set switchboard.gateway.url to your gateway’s address to sign in.',
        openSettings: true,
      };
    case 'expired':
      return { text: 'The sign-in code expired before it was approved. Run Sign In again for a new code.', openSettings: false };
    case 'denied':
      return { text: 'The sign-in was denied in the browser.', openSettings: false };
    case 'unreachable':
      return { text: `The gateway could not be reached. ${message}`, openSettings: true };
    case 'session_ended':
      return { text: 'Your Switchboard Cloud session ended. Sign in again.', openSettings: false };
    default:
      return { text: message || 'Sign-in failed.', openSettings: false };
  }
}

/** Where refresh tokens were kept before they were keyed by gateway: never sent anywhere, only deleted. */
export const LEGACY_REFRESH_TOKEN_KEY = 'switchboard.refreshToken';

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };
const URL_PARTS = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/]*)(\/.*)?$/s;
const HOST_PORT = /^(\[[0-9A-Fa-f:]*\]|[A-Za-z0-9._-]*)(?::([0-9]{1,5}))?$/;
const LABEL = /^[a-z0-9_-]+$/;
/** A last label WHATWG URL reads as a number, so the whole host as an IPv4 address. */
const NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/;
const DOTTED_QUAD = /^(?:(?:0|[1-9][0-9]{0,2})\.){3}(?:0|[1-9][0-9]{0,2})$/;
const SEGMENT = /^[A-Za-z0-9._~!$&'()*+,;=:@-]+$/;
const IPV4_MAPPED = /^\[::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}\]$/;

/**
 * The gateway's URL in the one form its refresh token is keyed by, or why it is refused: the same rules as
 * the server's (server/switchboard/config.py, canonical_gateway_url), so the key names the host the server
 * sends the token to. Only a plain absolute http(s) URL that every parser reads alike: printable ASCII, no
 * backslash, no user info, no query or fragment, no percent-encoding, no empty or dot path segments, a host
 * name or IP address; plain http only to this machine. Surrounding whitespace and trailing slashes are
 * dropped; scheme and host are lower-cased and a default port is left out. (Cases both sides are tested
 * against: tests/fixtures/gateway_urls.json.)
 */
export function canonicalGatewayUrl(value: string): { url: string } | { problem: string } {
  const text = value.trim().replace(/\/+$/, '');
  const shown = JSON.stringify(value.trim());
  const refused = (why: string) => ({ problem: `Refused Switchboard Cloud's URL ${shown}: ${why}` });
  if (!/^[\x21-\x7e]*$/.test(text)) return refused('it has whitespace, control or non-ASCII characters inside (use the punycode of a name).');
  if (text.includes('\\')) return refused('it has a backslash.');
  const match = URL_PARTS.exec(text);
  const scheme = match?.[1]?.toLowerCase() ?? '';
  if (!match || (scheme !== 'http' && scheme !== 'https')) return { problem: `Switchboard Cloud's URL ${shown} is not an https:// URL.` };
  if (text.includes('?') || text.includes('#')) return refused('a gateway URL has no query (?) or fragment (#).');
  const authority = match[2] ?? '';
  const path = match[3] ?? '';
  if (authority.includes('@')) return refused('a gateway URL has no user name or password (user@host).');
  const hostPort = HOST_PORT.exec(authority);
  if (!hostPort || !hostPort[1]) return refused('it has no plain host name (or IP address) and port.');
  const host = plainHost(hostPort[1].toLowerCase());
  if (host === undefined) return refused(`${JSON.stringify(hostPort[1])} is not a plain host name or IP address.`);
  const port = hostPort[2] === undefined ? undefined : Number(hostPort[2]);
  if (port !== undefined && !(port > 0 && port < 65536)) return refused(`${port} is not a port.`);
  const segments = path.split('/').slice(1);
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return refused('its path has empty or dot (. or ..) segments.');
  if (!segments.every((s) => SEGMENT.test(s))) return refused('its path has characters a plain URL path does not (percent-encoding among them).');
  if (scheme === 'http' && !isLoopback(host)) {
    return refused(
      'sign-in tokens would cross the network unencrypted. Use its https:// URL (plain http:// is allowed only for localhost, 127.0.0.0/8 and ::1).',
    );
  }
  const url = `${scheme}://${port === undefined || port === DEFAULT_PORTS[scheme] ? host : `${host}:${port}`}${path}`;
  // WHATWG URL (what VS Code and openExternal use) must read it exactly so: the rules above make sure.
  try {
    const parsed = new URL(url);
    if (parsed.origin + (path ? parsed.pathname : '') === url) return { url };
  } catch {
    // refused below
  }
  return refused('it is not a plain URL.');
}

/** The host in canonical form (IPv6 compressed, in brackets), or undefined when it is not plain. */
function plainHost(host: string): string | undefined {
  if (host.startsWith('[')) {
    let parsed: string;
    try {
      parsed = new URL(`http://${host}`).hostname; // compressed as RFC 5952 says, as Python does
    } catch {
      return undefined;
    }
    // IPv4-mapped addresses print differently across parsers (and Python versions): not plain.
    return IPV4_MAPPED.test(parsed) ? undefined : parsed;
  }
  const labels = host.split('.');
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  if (NUMERIC_LABEL.test(labels[labels.length - 1] ?? '') && !(DOTTED_QUAD.test(host) && labels.every((l) => Number(l) < 256))) {
    return undefined; // 127.1, 0x7f.1, 1.2.3.999: WHATWG reads some as addresses, httpx as names
  }
  return host;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || (DOTTED_QUAD.test(host) && host.startsWith('127.'));
}

/**
 * The gateway a refresh token belongs to: its canonical URL (see canonicalGatewayUrl). Undefined when no
 * gateway is configured, or when the server refuses the URL: then no token is read, stored or presented.
 */
export function gatewayIdentity(url: string | null | undefined): string | undefined {
  if (!url?.trim()) return undefined;
  const canonical = canonicalGatewayUrl(url);
  return 'url' in canonical ? canonical.url : undefined;
}

/** Why the configured gateway URL is refused (the server refuses it too), or undefined. */
export function gatewayUrlProblem(url: string | null | undefined): string | undefined {
  if (!url?.trim()) return undefined;
  const canonical = canonicalGatewayUrl(url);
  return 'problem' in canonical ? canonical.problem : undefined;
}

/**
 * The SecretStorage key of the refresh token for a gateway. One key per gateway: a token is only ever
 * presented to the gateway that issued it, so a workspace that points switchboard.gateway.url elsewhere
 * gets nothing, and a refusal there leaves the other gateways' sessions alone.
 */
export function refreshTokenKey(gatewayUrl: string | null | undefined): string | undefined {
  const identity = gatewayIdentity(gatewayUrl);
  return identity ? `${LEGACY_REFRESH_TOKEN_KEY}:${identity}` : undefined;
}

/**
 * Whether a failed `signIn {refreshToken}` means the stored token is dead. Only the server's word that the
 * session is over counts: anything else (the gateway unreachable, no gateway, the connection dropped by a
 * server restart, an internal error, a request that never left this window) leaves the token for later.
 */
export function sessionIsOver(reason: string | undefined): boolean {
  return reason === 'session_ended' || reason === 'denied' || reason === 'expired';
}

/**
 * The link of a device code to open in the browser: the complete one (with the code filled in) when it is
 * an http(s) URL, else the plain one when that is. Undefined: show the page and the code as text instead.
 */
export function deviceCodeLink(code: { verificationUri: string; verificationUriComplete?: string | null }): string | undefined {
  return safeExternalUrl(code.verificationUriComplete) ?? safeExternalUrl(code.verificationUri);
}
