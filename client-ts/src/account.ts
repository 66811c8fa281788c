// Signing in to Switchboard Cloud: the device flow's dialog, the refresh token in SecretStorage, sign-out
// and the account/upgrade links. The server runs the flow and holds the session; this file only shows the
// code, keeps the secret the server hands over, and gives it back at start-up.
import * as vscode from 'vscode';
import { SECRET_ENTITLEMENT, type SwitchboardClient } from './client';
import { ErrorCode, type SignInResult, type SwitchboardNotifications, type UsageReport } from './protocol.generated';
import { accountOf, accountTarget, isHosted, deviceCodePrompt, signInFailure, upgradeTarget, type UpgradeTarget } from './shared/account';
import { isCancellation, isRpcErrorLike } from './shared/errors';
import { creditsLabel, formatDate } from './shared/format';
import { SharedSessionFollower } from './shared/sharedSession';

/** The refresh token of the signed-in session (the server never writes it to disk). */
export const SECRET_REFRESH_TOKEN = 'switchboard.refreshToken';

type SignInCode = SwitchboardNotifications['switchboard/signInCode'];

const COPY_AND_OPEN = 'Copy code and open browser';

export class AccountController implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  /** Secret writes in the order the server sent them: a later rotation must never be overwritten. */
  private secretWrites: Promise<void> = Promise.resolve();
  private pending: vscode.CancellationTokenSource | undefined;
  /** Hands this window's server the newer token another window's server rotated to (they share a family). */
  private readonly otherWindows: SharedSessionFollower;

  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly client: SwitchboardClient,
  ) {
    this.otherWindows = new SharedSessionFollower(ctx.secrets, SECRET_REFRESH_TOKEN, (refreshToken) =>
      client.notify('switchboard/adoptRefreshToken', { refreshToken }),
    );
    this.disposables.push(
      this.otherWindows,
      client.onCredentialsChanged((c) => void this.keepRefreshToken(c.refreshToken)),
      client.onDidBecomeReady(() => void this.resume()),
      client.onDidChangeUsage((u) => void vscode.commands.executeCommand('setContext', 'switchboard.signedIn', isHosted(accountOf(u)))),
    );
  }

  /** Overwrite (or, for null, delete) the stored refresh token. */
  keepRefreshToken(token: string | null): Promise<void> {
    this.otherWindows.handedOver(token);
    this.secretWrites = this.secretWrites
      .then(() => (token ? this.ctx.secrets.store(SECRET_REFRESH_TOKEN, token) : this.ctx.secrets.delete(SECRET_REFRESH_TOKEN)))
      .catch((err: unknown) => this.client.log.warn(`could not update the stored session: ${err instanceof Error ? err.message : String(err)}`));
    return this.secretWrites;
  }

  /** At start-up (and after each server restart): resume the stored session, if there is one. */
  async resume(): Promise<SignInResult | undefined> {
    await this.secretWrites;
    const refreshToken = await this.ctx.secrets.get(SECRET_REFRESH_TOKEN);
    if (!refreshToken) return undefined;
    try {
      const result = await this.client.request('switchboard/signIn', { refreshToken });
      await this.apply(result);
      this.client.log.info(`resumed the Switchboard Cloud session (${accountOf(result.usage).email ?? 'signed in'})`);
      return result;
    } catch (err) {
      const reason = reasonOf(err);
      // Unreachable, or no gateway configured now: keep the session for a later start. Anything else: the
      // token is dead.
      if (reason !== 'unreachable' && reason !== 'no_gateway') await this.keepRefreshToken(null);
      this.client.log.warn(`could not resume the Switchboard Cloud session: ${isRpcErrorLike(err) ? err.message : String(err)}`);
      if (reason !== 'no_gateway') {
        void vscode.window
          .showWarningMessage(`Switchboard: you are signed out of Switchboard Cloud. ${signInFailure(reason, messageOf(err)).text}`, 'Sign In')
          .then((choice) => choice && vscode.commands.executeCommand('switchboard.signIn'));
      }
      return undefined;
    }
  }

  /** Sign in with the device flow: the server asks the gateway for a code and waits for the approval. */
  async signIn(): Promise<SignInResult | undefined> {
    this.pending?.cancel();
    const cts = new vscode.CancellationTokenSource();
    this.pending = cts;
    try {
      return await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'Switchboard', cancellable: true },
        async (progress, token) => {
          token.onCancellationRequested(() => cts.cancel());
          progress.report({ message: 'asking the gateway for a sign-in code…' });
          const codes = this.client.onSignInCode((code) => {
            progress.report({ message: `waiting for you to approve the code ${code.userCode} in the browser…` });
            void this.showCode(code, cts);
          });
          try {
            const result = await this.client.request('switchboard/signIn', {}, cts.token);
            await this.apply(result);
            const u = result.usage;
            void vscode.window.showInformationMessage(
              `Switchboard: signed in as ${accountOf(u).email ?? u.account ?? 'your account'} — ${u.planName} plan, ${creditsLabel(u.remainingCredits)} left until ${formatDate(u.periodEnd)}.`,
            );
            return result;
          } finally {
            codes.dispose();
          }
        },
      );
    } catch (err) {
      if (isCancellation(err)) {
        void vscode.window.showInformationMessage('Switchboard: sign-in cancelled.');
        return undefined;
      }
      await this.showFailure(err);
      return undefined;
    } finally {
      if (this.pending === cts) this.pending = undefined;
      cts.dispose();
    }
  }

  /** The code, in a dialog the user must answer: copy it and open the page, or cancel the sign-in. */
  private async showCode(code: SignInCode, cts: vscode.CancellationTokenSource): Promise<void> {
    const { message, detail } = deviceCodePrompt(code);
    const choice = await vscode.window.showInformationMessage(message, { modal: true, detail }, COPY_AND_OPEN);
    if (cts.token.isCancellationRequested || this.pending !== cts) return;
    if (choice !== COPY_AND_OPEN) {
      cts.cancel();
      return;
    }
    await vscode.env.clipboard.writeText(code.userCode);
    const opened = await vscode.env.openExternal(vscode.Uri.parse(code.verificationUriComplete ?? code.verificationUri, true));
    if (!opened) {
      void vscode.window.showInformationMessage(`Switchboard: open ${code.verificationUri} and enter ${code.userCode} (copied).`);
    }
  }

  /** Sign in with a pasted entitlement token (development and offline use). */
  async signInWithToken(token: string): Promise<UsageReport | undefined> {
    const result = await this.client.request('switchboard/signIn', { token });
    this.client.setUsage(result.usage);
    if (!result.usage.account) {
      // A token that does not verify is not an error: the server says why in planReason.
      void vscode.window.showWarningMessage(`Switchboard: that token didn't sign you in. ${result.usage.planReason}`);
      return result.usage;
    }
    await this.ctx.secrets.store(SECRET_ENTITLEMENT, token);
    await this.client.refresh();
    const u = result.usage;
    void vscode.window.showInformationMessage(
      `Switchboard: signed in as ${u.account} — ${u.planName} plan, ${creditsLabel(u.remainingCredits)} left until ${formatDate(u.periodEnd)}.`,
    );
    return u;
  }

  /**
   * Sign out: the server revokes the session at the gateway; the stored secrets go either way. A pasted
   * entitlement lives in the server until it stops, so then the server starts again without it.
   */
  async signOut(): Promise<UsageReport | undefined> {
    this.pending?.cancel();
    const hadEntitlement = Boolean(await this.ctx.secrets.get(SECRET_ENTITLEMENT));
    await this.keepRefreshToken(null);
    await this.ctx.secrets.delete(SECRET_ENTITLEMENT);
    let restart = hadEntitlement;
    try {
      const usage = await this.client.request('switchboard/signOut', {});
      if (!hadEntitlement) this.client.setUsage(usage);
    } catch (err) {
      this.client.log.warn(`sign-out: ${isRpcErrorLike(err) ? err.message : String(err)}; restarting the server`);
      restart = true;
    }
    // Said at once: the session is revoked and the secrets are gone; a restart only drops a pasted entitlement.
    void vscode.window.showInformationMessage('Switchboard: signed out.');
    if (restart) await this.client.restart();
    else await this.client.refresh();
    return this.client.usage;
  }

  /** Open the gateway's account page (signed in), or sign in. */
  openAccount(): Promise<void> {
    return this.follow(accountTarget(accountOf(this.client.usage)));
  }

  /** Open the gateway's upgrade page (signed in), or sign in first: plans are sold by the gateway. */
  upgrade(): Promise<void> {
    return this.follow(upgradeTarget(accountOf(this.client.usage)));
  }

  private async follow(target: UpgradeTarget): Promise<void> {
    if (target.kind === 'open') {
      await vscode.env.openExternal(vscode.Uri.parse(target.url, true));
      return;
    }
    const choice = await vscode.window.showInformationMessage(
      'Switchboard: plans and upgrades come with a Switchboard Cloud account. Sign in first.',
      'Sign In',
      'Enter a Token…',
    );
    if (choice === 'Sign In') await vscode.commands.executeCommand('switchboard.signIn');
    else if (choice === 'Enter a Token…') await vscode.commands.executeCommand('switchboard.signInWithToken');
  }

  private async apply(result: SignInResult): Promise<void> {
    // Store before anything else can fail: the old token is already dead at the gateway.
    if (result.refreshToken) await this.keepRefreshToken(result.refreshToken);
    this.client.setUsage(result.usage);
    await this.client.refresh();
  }

  private async showFailure(err: unknown): Promise<void> {
    const failure = signInFailure(reasonOf(err), messageOf(err));
    const buttons = failure.openSettings ? ['Open Settings', 'Enter a Token…'] : ['Try Again'];
    const choice = await vscode.window.showWarningMessage(`Switchboard: ${failure.text}`, ...buttons);
    if (choice === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'switchboard.gateway.url');
    else if (choice === 'Enter a Token…') await vscode.commands.executeCommand('switchboard.signInWithToken');
    else if (choice === 'Try Again') await vscode.commands.executeCommand('switchboard.signIn');
  }

  dispose(): void {
    this.pending?.cancel();
    this.disposables.forEach((d) => d.dispose());
  }
}

function reasonOf(err: unknown): string | undefined {
  if (!isRpcErrorLike(err) || err.code !== ErrorCode.AUTH_REQUIRED) return undefined;
  const data = err.data as { reason?: unknown } | undefined;
  return typeof data?.reason === 'string' ? data.reason : undefined;
}

function messageOf(err: unknown): string {
  return isRpcErrorLike(err) ? err.message : err instanceof Error ? err.message : String(err);
}
