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
