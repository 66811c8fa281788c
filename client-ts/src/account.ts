// Signing in to Switchboard Cloud: the device flow's dialog, the refresh token in SecretStorage, sign-out
// and the account/upgrade links. The server runs the flow and holds the session; this file only shows the
// code, keeps the secret the server hands over, and gives it back at start-up.
import * as vscode from 'vscode';
import type { SwitchboardClient } from './client';
import { SECRET_ENTITLEMENT } from './secretKeys';
import { ErrorCode, type SignInResult, type SwitchboardNotifications, type UsageReport } from './protocol.generated';
import {
  accountOf,
  accountTarget,
  deviceCodeLink,
  deviceCodePrompt,
  gatewayUrlProblem,
  isHosted,
  LEGACY_REFRESH_TOKEN_KEY,
  refreshTokenKey,
  sessionIsOver,
  signInFailure,
  upgradeTarget,
  type UpgradeTarget,
} from './shared/account';
import { isCancellation, isRpcErrorLike } from './shared/errors';
import { creditsLabel, formatDate } from './shared/format';
import { SharedSessionFollower } from './shared/sharedSession';

type SignInCode = SwitchboardNotifications['switchboard/signInCode'];

const COPY_AND_OPEN = 'Copy code and open browser';

export class AccountController implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  /** Secret writes in the order the server sent them: a later rotation must never be overwritten. */
  private secretWrites: Promise<void> = Promise.resolve();
  private pending: vscode.CancellationTokenSource | undefined;
  /** The resume of the stored session while its `signIn {refreshToken}` runs: sign-out waits for it. */
  private resuming: Resume | undefined;
  /** How long a sign-out waits for a resume under way (a stuck server must not keep it waiting for good). */
  resumeWaitMs = 10_000;
  /** A sign-out while it runs: credentialsChanged is ignored, and no resume starts. */
  private signingOut: Promise<UsageReport | undefined> | undefined;
  /** Hands this window's server the newer token another window's server rotated to (they share a family). */
  private readonly otherWindows: SharedSessionFollower;
  /** Removes the unkeyed token of older versions once: it cannot be told which gateway issued it. */
  private readonly legacyRemoved: Promise<void>;
  /** The refused gateway URL last told about (once per URL, not at every restart). */
  private refusedShown: string | undefined;

  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly client: SwitchboardClient,
  ) {
    this.otherWindows = new SharedSessionFollower(ctx.secrets, () => this.secretKey(), {
      adopt: (refreshToken) => client.notify('switchboard/adoptRefreshToken', { refreshToken }),
      ended: () => void this.signedOutElsewhere(),
    });
    this.legacyRemoved = this.removeLegacyToken();
    client.sendFirst = () => this.resumeFirst();
    this.disposables.push(
      this.otherWindows,
      client.onCredentialsChanged((c) => {
        // During a sign-out the session is being revoked: a rotation racing it must not be stored again.
        if (this.signingOut) return;
        // The session ended: forget its token, not one another window stored since (a new sign-in's).
        if (c.refreshToken === null) void this.forget((stored) => this.otherWindows.isOwn(stored));
        else void this.keepRefreshToken(c.refreshToken);
      }),
      client.onDidChangeUsage((u) => void vscode.commands.executeCommand('setContext', 'switchboard.signedIn', isHosted(accountOf(u)))),
    );
  }

  /** The key of the refresh token for the gateway this window's server was started with. */
  private secretKey(): string | undefined {
    return refreshTokenKey(this.client.gatewayUrl);
  }

  private async removeLegacyToken(): Promise<void> {
    try {
      if (await this.ctx.secrets.get(LEGACY_REFRESH_TOKEN_KEY)) {
        await this.ctx.secrets.delete(LEGACY_REFRESH_TOKEN_KEY);
        this.client.log.info('removed a Switchboard Cloud session stored by an older version (not tied to a gateway): sign in again');
      }
    } catch (err) {
      this.client.log.warn(`could not remove the old stored session: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * Overwrite (or, for null, delete) the stored refresh token of the current gateway, or of the gateway
   * `key` names (the one a request was sent for: the server may have been restarted for another since).
   */
  keepRefreshToken(token: string | null, key = this.secretKey()): Promise<void> {
    if (!key) return this.secretWrites;
    this.otherWindows.handedOver(token);
    this.secretWrites = this.secretWrites
      .then(() => (token ? this.ctx.secrets.store(key, token) : this.ctx.secrets.delete(key)))
      .catch((err: unknown) => this.client.log.warn(`could not update the stored session: ${err instanceof Error ? err.message : String(err)}`));
    return this.secretWrites;
  }

  /**
   * Delete the stored token of the current gateway (or of `key`) if it is still one `stale` says is this
   * session's: a token stored meanwhile by another window (a new sign-in) stays.
   */
  private forget(stale: (stored: string) => boolean, key = this.secretKey()): Promise<void> {
    if (!key) return this.secretWrites;
    this.secretWrites = this.secretWrites
      .then(async () => {
        const stored = await this.ctx.secrets.get(key);
        if (stored === undefined || !stale(stored)) return;
        this.otherWindows.handedOver(null);
        await this.ctx.secrets.delete(key);
      })
      .catch((err: unknown) => this.client.log.warn(`could not update the stored session: ${err instanceof Error ? err.message : String(err)}`));
    return this.secretWrites;
  }

  /**
   * At every start of the server, before anything else is sent to it (SwitchboardClient.sendFirst): resumes
   * the stored session, if there is one, and resolves once the resume is sent (or there is none to send).
   */
  private resumeFirst(): Promise<void> {
    return new Promise<void>((sent) => void this.resume(sent));
  }

  /** Resume the stored session, if there is one; `sent` is called once its signIn is sent, or not to be. */
  resume(sent: () => void = () => undefined): Promise<SignInResult | undefined> {
    const state: Resume = { done: Promise.resolve(undefined), abandoned: false };
    const run = this.doResume(state, sent).finally(() => {
      sent();
      if (this.resuming === state) this.resuming = undefined;
    });
    state.done = run;
    this.resuming = state;
    return run;
  }

  private async doResume(state: Resume, sent: () => void): Promise<SignInResult | undefined> {
    await this.legacyRemoved;
    // A sign-out under way ends with the secret deleted: nothing to resume (and it may be waiting for us).
    if (this.signingOut) return undefined;
    await this.secretWrites;
    if (this.refuseGateway()) return undefined;
    const key = this.secretKey();
    if (!key) return undefined; // no gateway: no session to resume (and no token goes anywhere)
    const refreshToken = await this.ctx.secrets.get(key);
    if (!refreshToken) return undefined;
    try {
      // Only to a server of the gateway the token was read under (the setting may have changed meanwhile).
      const result = await this.client.resumeSession(refreshToken, key, sent);
      // Signed out meanwhile (in another window, or here by a sign-out that stopped waiting for us): the
      // session this brought must not be stored (other windows would adopt it), and is revoked instead.
      if (state.abandoned || (await this.ctx.secrets.get(key)) === undefined) {
        this.client.log.info('the stored Switchboard Cloud session was removed while it was being resumed: signing out');
        const after = this.signingOut ?? Promise.resolve(undefined);
        void after.then(() => this.runSignOut(() => this.signOutHere(state.abandoned ? undefined : 'Switchboard: signed out of Switchboard Cloud (in another window).')));
        return undefined;
      }
      await this.apply(result, key);
      this.client.log.info(`resumed the Switchboard Cloud session (${accountOf(result.usage).email ?? 'signed in'})`);
      return result;
    } catch (err) {
      const reason = reasonOf(err);
      this.client.log.warn(`could not resume the Switchboard Cloud session: ${isRpcErrorLike(err) ? err.message : String(err)}`);
      // Only the server's word that the session is over makes the token dead. Unreachable, no gateway, a
      // connection dropped by a restart, an internal error: the token is kept for the next start.
      if (sessionIsOver(reason)) {
        // Only the token presented (or one of this window's): another window may have signed in since.
        await this.forget((stored) => stored === refreshToken || this.otherWindows.isOwn(stored), key);
        void vscode.window
          .showWarningMessage(`Switchboard: you are signed out of Switchboard Cloud. ${signInFailure(reason, messageOf(err)).text}`, 'Sign In')
          .then((choice) => choice && vscode.commands.executeCommand('switchboard.signIn'));
      } else if (reason === 'unreachable') {
        void vscode.window.showWarningMessage(
          `Switchboard: could not resume your Switchboard Cloud session; the next start tries again. ${signInFailure(reason, messageOf(err)).text}`,
        );
      }
      return undefined;
    }
  }

  /**
   * Whether the gateway URL the server was started with is one it refuses (and so does this window: there is
   * no key for it, see canonicalGatewayUrl). Says why, once per URL.
   */
  private refuseGateway(always = false): boolean {
    const url = this.client.gatewayUrl;
    const problem = gatewayUrlProblem(url);
    if (!problem) return false;
    this.client.log.warn(`${problem} No Switchboard Cloud session is resumed or stored for it.`);
    if (always || this.refusedShown !== url) {
      this.refusedShown = url;
      void vscode.window
        .showWarningMessage(`Switchboard: ${problem} Set switchboard.gateway.url to the gateway's plain https:// address.`, 'Open Settings')
        .then((choice) => choice && vscode.commands.executeCommand('workbench.action.openSettings', 'switchboard.gateway.url'));
    }
    return true;
  }

  /** Sign in with the device flow: the server asks the gateway for a code and waits for the approval. */
  async signIn(): Promise<SignInResult | undefined> {
    if (this.refuseGateway(true)) return undefined;
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
            this.showCode(code, cts).catch((err: unknown) =>
              this.client.log.warn(`the sign-in code's dialog failed: ${err instanceof Error ? err.message : String(err)}`),
            );
          });
          try {
            const key = this.secretKey(); // the gateway of the server that runs the sign-in
            const result = await this.client.request('switchboard/signIn', {}, cts.token);
            await this.apply(result, key);
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
    // Only an http(s) link is opened (as for every link from the gateway); anything else is shown as text.
    const link = deviceCodeLink(code);
    const opened = link !== undefined && (await vscode.env.openExternal(vscode.Uri.parse(link, true)));
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
  signOut(): Promise<UsageReport | undefined> {
    // Said while it runs: it may wait for a resume (resumeWaitMs) and for the gateway's answer.
    return Promise.resolve(
      vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Switchboard: signing out…' }, () =>
        this.runSignOut(() => this.doSignOut()),
      ),
    );
  }

  /**
   * Another window deleted the stored token (it signed out, or its session ended): the family is revoked,
   * so this window's server is signed out too. The secret is already gone and is not touched here (a newer
   * sign-in may have stored one since).
   */
  private async signedOutElsewhere(): Promise<void> {
    if (this.signingOut) return;
    // A resume under way is not signed in yet, but will be: wait for it (it sees the deletion itself too).
    await this.waitForResume();
    if (this.signingOut || !isHosted(accountOf(this.client.usage))) return;
    this.client.log.info('the stored Switchboard Cloud session was removed by another window: signing out here too');
    await this.runSignOut(() => this.signOutHere('Switchboard: signed out of Switchboard Cloud (in another window).'));
  }

  /** Sign this window's server out, leaving the secret alone (it is already gone); `told`: what to say. */
  private async signOutHere(told: string | undefined): Promise<UsageReport | undefined> {
    try {
      this.client.setUsage(await this.client.request('switchboard/signOut', {}));
    } catch (err) {
      this.client.log.warn(`sign-out: ${isRpcErrorLike(err) ? err.message : String(err)}`);
    }
    await this.client.refresh();
    if (told) void vscode.window.showInformationMessage(told);
    return this.client.usage;
  }

  private runSignOut(run: () => Promise<UsageReport | undefined>): Promise<UsageReport | undefined> {
    if (this.signingOut) return this.signingOut;
    const out = run().finally(() => {
      if (this.signingOut === out) this.signingOut = undefined;
    });
    this.signingOut = out;
    return out;
  }

  /**
   * A resume still running finishes first, so the session it brings is the one the server revokes. Not for
   * longer than resumeWaitMs: then it is abandoned (it signs its session out when it ends).
   */
  private async waitForResume(): Promise<void> {
    const state = this.resuming;
    if (!state) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.resumeWaitMs)));
    const late = await Promise.race([state.done.then(() => false, () => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      state.abandoned = true;
      this.client.log.warn(`the resume of the stored session took more than ${this.resumeWaitMs / 1000} s: signing out without it`);
    }
  }

  private async doSignOut(): Promise<UsageReport | undefined> {
    this.pending?.cancel();
    await this.waitForResume();
    const hadEntitlement = Boolean(await this.ctx.secrets.get(SECRET_ENTITLEMENT));
    let restart = hadEntitlement;
    try {
      const usage = await this.client.request('switchboard/signOut', {});
      if (!hadEntitlement) this.client.setUsage(usage);
    } catch (err) {
      this.client.log.warn(`sign-out: ${isRpcErrorLike(err) ? err.message : String(err)}; restarting the server`);
      restart = true;
    }
    // After the server's answer, so no credentialsChanged of the ending session can store a token again.
    await this.keepRefreshToken(null);
    await this.ctx.secrets.delete(SECRET_ENTITLEMENT);
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

  /** `key`: the secret key of the gateway the request was sent for (captured with it). */
  private async apply(result: SignInResult, key: string | undefined): Promise<void> {
    // Store before anything else can fail: the old token is already dead at the gateway.
    if (result.refreshToken) await this.keepRefreshToken(result.refreshToken, key);
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

/** A resume under way: `abandoned` once a sign-out stopped waiting for it. */
interface Resume {
  done: Promise<SignInResult | undefined>;
  abandoned: boolean;
}

function reasonOf(err: unknown): string | undefined {
  if (!isRpcErrorLike(err) || err.code !== ErrorCode.AUTH_REQUIRED) return undefined;
  const data = err.data as { reason?: unknown } | undefined;
  return typeof data?.reason === 'string' ? data.reason : undefined;
}

function messageOf(err: unknown): string {
  return isRpcErrorLike(err) ? err.message : err instanceof Error ? err.message : String(err);
}
