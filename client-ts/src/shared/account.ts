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

/**
 * The gateway a refresh token belongs to, as the server will use it: origin and path, without a trailing
 * slash, the host lowercased (URL does that); query and fragment are not part of it. Text that is not a URL
 * stays as it is, trimmed (the server refuses it, but a token of it must still not reach another gateway).
 * Undefined when no gateway is configured.
 */
export function gatewayIdentity(url: string | null | undefined): string | undefined {
  const text = url?.trim();
  if (!text) return undefined;
  try {
    const parsed = new URL(text);
    if (parsed.origin === 'null') return text;
    return parsed.origin + parsed.pathname.replace(/\/+$/, '');
  } catch {
    return text;
  }
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
