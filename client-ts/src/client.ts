// The connection to `switchboard serve`: starts it with vscode-languageclient over stdio, exposes a
// typed request function over the generated method map, and keeps the state every surface shows
// (selected model, models, usage) in one place.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  RevealOutputChannelOn,
  State,
  Trace,
  WorkDoneProgress,
  type LanguageClientOptions,
  type ServerOptions,
} from 'vscode-languageclient/node';
import type {
  ChatProgress,
  SignInResult,
  ModelId,
  ModelInfo,
  SelectModelResult,
  SwitchboardClientNotifications,
  SwitchboardNotifications,
  SwitchboardRequestMethod,
  SwitchboardRequests,
  UsageReport,
} from './protocol.generated';
import { autoParams } from './autoSettings';
import { discardingLogChannel } from './noTrace';
import { refreshTokenKey } from './shared/account';
import { ClientErrorCode } from './shared/errors';
import type { ServerStatus } from './shared/webviewProtocol';
import { findOnPath, redactSecrets, resolveServerCommand, type ServerCommand } from './serverCommand';
import { createManagedVenv, SetupError } from './serverSetup';
import { SECRET_API_KEY, SECRET_ENTITLEMENT } from './secretKeys';

export { SECRET_API_KEY, SECRET_ENTITLEMENT };
/** The setting whose value the server gets as SWITCHBOARD_GATEWAY_URL. */
export const GATEWAY_SETTING = 'switchboard.gateway.url';

/** An error that never reached the server, shaped like a JSON-RPC error. */
export class ClientError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/** The URI string that identifies this window's workspace to the server. */
export function workspaceUri(ctx: vscode.ExtensionContext): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (folder) return folder.uri.toString();
  if (vscode.workspace.workspaceFile && vscode.workspace.workspaceFile.scheme === 'file') return vscode.workspace.workspaceFile.toString();
  return vscode.Uri.joinPath(ctx.globalStorageUri, 'no-folder').toString();
}

/**
 * The language client's log channels: its own messages go to `log`; its message trace (every message's
 * params: refresh tokens, the API key in initializationOptions, prompts) goes to a channel whose level is Off
 * for good, never `log` (whose level the user may set to Trace). See QuietLanguageClient.setTrace.
 */
export function logChannels(log: vscode.LogOutputChannel): Pick<LanguageClientOptions, 'outputChannel' | 'traceOutputChannel'> {
  return { outputChannel: log, traceOutputChannel: discardingLogChannel() };
}

/**
 * A LanguageClient that logs its own errors instead of popping notifications: Switchboard shows
 * its own, actionable ones (with "Show logs").
 */
export class QuietLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown): void {
    super.error(message, data, false);
  }

  /**
   * No message tracing, ever: a trace shows every message's params, and those carry refresh tokens, the
   * API key (initializationOptions) and prompts. The trace channel is `discardingLogChannel()` (level Off,
   * so the `switchboardServer.trace.server` setting and the log level never turn it on); this keeps an
   * explicit setTrace off too, and drops whatever would still reach trace().
   */
  override setTrace(_value: Trace): Promise<void> {
    return super.setTrace(Trace.Off);
  }

  override trace(_message: string, _data?: unknown): void {}

  /**
   * Leave out workspace/executeCommand: vscode-languageclient would register the server's commands
   * (`switchboard.selectModel`, `switchboard.newConversation`, for editors without custom requests) as
   * VS Code commands, which clash with this extension's own command ids. The extension uses the custom
   * requests instead.
   */
  override registerFeature(feature: Parameters<LanguageClient['registerFeature']>[0]): void {
    const method = (feature as { registrationType?: { method?: string } }).registrationType?.method;
    if (method === 'workspace/executeCommand') return;
    super.registerFeature(feature);
  }
}

export class SwitchboardClient implements vscode.Disposable {
  private lc: LanguageClient | undefined;
  private starting: Promise<void> | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly lcDisposables: vscode.Disposable[] = [];
  private crashes: number[] = [];
  private apiKey: string | undefined;
  private entitlement: string | undefined;
  private commandInUse: ServerCommand | undefined;
  private gatewayUrlInUse: string | undefined;
  /** The gateway each language client's server was started with (a restart makes a new one). */
  private readonly gatewayOf = new WeakMap<LanguageClient, string | undefined>();

  private _status: ServerStatus = { state: 'stopped' };
  private readonly statusEmitter = new vscode.EventEmitter<ServerStatus>();
  readonly onDidChangeStatus = this.statusEmitter.event;

  // The state the status bar, the chat view, the usage view and the model picker all show.
  models: ModelInfo[] = [];
  selected: ModelId = 'auto';
  usage: UsageReport | undefined;
  private readonly usageEmitter = new vscode.EventEmitter<UsageReport>();
  readonly onDidChangeUsage = this.usageEmitter.event;
  private readonly modelEmitter = new vscode.EventEmitter<SelectModelResult>();
  /** Fires when the selected model changes, from any surface (or from the server). */
  readonly onDidChangeModel = this.modelEmitter.event;
  private readonly modelsEmitter = new vscode.EventEmitter<void>();
  readonly onDidChangeModels = this.modelsEmitter.event;
  private readonly signInCodeEmitter = new vscode.EventEmitter<SwitchboardNotifications['switchboard/signInCode']>();
  /** The device flow's code, sent while a `switchboard/signIn {}` is pending. */
  readonly onSignInCode = this.signInCodeEmitter.event;
  private readonly credentialsEmitter = new vscode.EventEmitter<SwitchboardNotifications['switchboard/credentialsChanged']>();
  /** The server rotated the refresh token, or the session ended (null). */
  readonly onCredentialsChanged = this.credentialsEmitter.event;
  private readonly turnChargedEmitter = new vscode.EventEmitter<SwitchboardNotifications['switchboard/turnCharged']>();
  /** A stopped signed-in turn's charge, from the gateway, once the server has it. */
  readonly onTurnCharged = this.turnChargedEmitter.event;
  private readonly readyEmitter = new vscode.EventEmitter<void>();
  /** Fires each time a (re)started server is running and its state has been read. */
  readonly onDidBecomeReady = this.readyEmitter.event;
  /**
   * Sends what must reach a (re)started server before any other request, and resolves once it is sent (not
   * answered): the stored session's resume (AccountController). Until that is in, the server is in local
   * mode and would answer a chat on the user's own key; once it is, the server holds chats back for it.
   */
  sendFirst: (() => Promise<void>) | undefined;
  /** Pending from a server's start until sendFirst has sent its request: every other request waits for it. */
  private firstSent: Promise<void> = Promise.resolve();
  private openFirstSent: () => void = () => undefined;
  /** The current hold is open: its resume was sent, or it was given up (a failed start, a stop). */
  private holdOpen = true;
  /** stop() was called (not a restart): requests held until then fail rather than start a new server. */
  private stoppedOnPurpose = false;

  constructor(
    private readonly ctx: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      this.statusEmitter,
      this.usageEmitter,
      this.modelEmitter,
      this.modelsEmitter,
      this.signInCodeEmitter,
      this.credentialsEmitter,
      this.turnChargedEmitter,
      this.readyEmitter,
    );
    this.disposables.push(
      ctx.secrets.onDidChange((e) => {
        if (e.key === SECRET_API_KEY) void this.applySecrets();
      }),
    );
  }

  private secretsQueue: Promise<void> = Promise.resolve();

  /**
   * Restart the server if the stored API key differs from the one it was started with. Serialized, so
   * the Set Key command and the secret-storage change event (also from other windows) restart it once.
   */
  applySecrets(): Promise<void> {
    this.secretsQueue = this.secretsQueue.then(async () => {
      if (this.starting) await this.starting.catch(() => undefined);
      const key = await this.ctx.secrets.get(SECRET_API_KEY);
      if ((key || undefined) === (this.apiKey || undefined)) return;
      this.log.info('the API key changed: restarting the server');
      await this.restart();
    });
    return this.secretsQueue;
  }

  get status(): ServerStatus {
    return this._status;
  }

  get hasApiKey(): boolean {
    return Boolean(this.apiKey) || Boolean(this.serverEnv().ANTHROPIC_API_KEY);
  }

  get serverCommand(): ServerCommand | undefined {
    return this.commandInUse;
  }

  /**
   * The gateway the running server was started with (SWITCHBOARD_GATEWAY_URL as passed to it), fixed until
   * the next start: the refresh tokens this server hands over belong to it, even after the setting changed.
   */
  get gatewayUrl(): string | undefined {
    return this.gatewayUrlInUse;
  }

  private setStatus(status: ServerStatus): void {
    this._status = status;
    // No server to send the resume to: requests held for one go on (and fail as requests to no server do).
    if (status.state === 'failed' || status.state === 'stopped') this.openFirstSent();
    this.statusEmitter.fire(status);
  }

  get workspaceUri(): string {
    return workspaceUri(this.ctx);
  }

  private serverEnv(): Record<string, string> {
    const extra = vscode.workspace.getConfiguration('switchboard').get<Record<string, unknown>>('server.env') ?? {};
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (typeof v === 'string') env[k] = v;
    for (const [k, v] of Object.entries(extra)) if (typeof v === 'string') env[k] = v;
    // The setting wins when it is set; empty leaves whatever the environment says.
    const gateway = vscode.workspace.getConfiguration().get<string>(GATEWAY_SETTING)?.trim();
    if (gateway) env.SWITCHBOARD_GATEWAY_URL = gateway;
    return env;
  }

  /** Resolve (or install) the server command. */
  private async command(): Promise<ServerCommand> {
    const config = vscode.workspace.getConfiguration('switchboard');
    const managedVenv = path.join(this.ctx.globalStorageUri.fsPath, 'server-venv');
    const stamp = `switchboard-${String(this.ctx.extension.packageJSON.version)}`;
    const resolved = resolveServerCommand({
      setting: config.get('server.command'),
      extensionPath: this.ctx.extensionPath,
      managedVenv,
      managedStamp: stamp,
    });
    if (resolved) {
      // Check the executable exists up front: a clearer message than a spawn ENOENT.
      const exe = resolved.command;
      const found = path.isAbsolute(exe) ? fs.existsSync(exe) : Boolean(findOnPath(exe));
      if (!found) {
        throw new ClientError(
          ClientErrorCode.SERVER_UNAVAILABLE,
          `The server command "${exe}" (from ${resolved.source === 'setting' ? 'switchboard.server.command' : resolved.source}) was not found.`,
        );
      }
      return resolved;
    }
    this.setStatus({ state: 'starting', detail: 'installing the server' });
    return createManagedVenv({
      python: config.get<string>('server.python') || 'python3',
      extensionPath: this.ctx.extensionPath,
      venv: managedVenv,
      stamp,
      log: this.log,
    });
  }

  /** Start the server (idempotent while a start is in progress). */
  start(): Promise<void> {
    this.stoppedOnPurpose = false;
    if (this.lc && this._status.state === 'running') return Promise.resolve();
    if (!this.starting) {
      this.starting = this.doStart().finally(() => {
        this.starting = undefined;
      });
    }
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.holdRequests();
    this.setStatus({ state: 'starting' });
    this.apiKey = await this.ctx.secrets.get(SECRET_API_KEY);
    this.entitlement = await this.ctx.secrets.get(SECRET_ENTITLEMENT);
    let cmd: ServerCommand;
    try {
      cmd = await this.command();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error(`cannot start the server: ${message}`);
      this.setStatus({ state: 'failed', message });
      if (!(err instanceof SetupError && err.hint === 'cancelled')) void this.showStartError(message);
      return;
    }
    this.commandInUse = cmd;
    this.log.info(`starting the server (${cmd.source}): ${cmd.command} ${cmd.args.join(' ')}`);
    const env = this.serverEnv();
    this.gatewayUrlInUse = env.SWITCHBOARD_GATEWAY_URL?.trim() || undefined;
    const serverOptions: ServerOptions = {
      command: cmd.command,
      args: cmd.args,
      // stdio, without TransportKind.stdio: that would append `--stdio`, which `switchboard serve` doesn't take
      options: { env },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [],
      // The trace channel is never this.log (see QuietLanguageClient.setTrace): tracing would log every message's params.
      ...logChannels(this.log),
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      // Read at every (re)start; never logged (message tracing is off for good: see traceOutputChannel).
      initializationOptions: () => ({
        apiKey: this.apiKey ?? null,
        entitlement: this.entitlement ?? null,
        client: { name: 'switchboard-vscode', version: String(this.ctx.extension.packageJSON.version), editor: vscode.env.appName },
      }),
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue, handled: true }),
        closed: () => {
          const now = Date.now();
          this.crashes = [...this.crashes.filter((t) => now - t < 180_000), now];
          if (this.crashes.length <= 3) {
            this.log.warn(`the server exited; restarting (${this.crashes.length}/3 in 3 minutes)`);
            this.holdRequests(); // the restarted server is in local mode until the resume is sent again
            this.setStatus({ state: 'starting', detail: 'restarting after a crash' });
            return { action: CloseAction.Restart, handled: true };
          }
          const message = 'The Switchboard server stopped 4 times in 3 minutes and will not be restarted.';
          this.log.error(message);
          this.setStatus({ state: 'failed', message });
          void this.showStartError(message);
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
      initializationFailedHandler: (error) => {
        this.log.error(`initialize failed: ${redactSecrets(String(error instanceof Error ? error.message : error), [this.apiKey, this.entitlement])}`);
        return false;
      },
    };
    const lc = new QuietLanguageClient('switchboardServer', 'Switchboard', serverOptions, clientOptions);
    this.gatewayOf.set(lc, this.gatewayUrlInUse);
    this.lc = lc;
    this.lcDisposables.push(
      lc.onDidChangeState((e) => {
        if (lc === this.lc) this.onStateChange(e.newState);
      }),
      lc.onNotification('switchboard/usageChanged', (u: SwitchboardNotifications['switchboard/usageChanged']) => this.setUsage(u)),
      lc.onNotification('switchboard/modelChanged', (m: SwitchboardNotifications['switchboard/modelChanged']) => this.setSelected(m)),
      lc.onNotification('switchboard/signInCode', (c: SwitchboardNotifications['switchboard/signInCode']) => this.signInCodeEmitter.fire(c)),
      lc.onNotification('switchboard/credentialsChanged', (c: SwitchboardNotifications['switchboard/credentialsChanged']) =>
        this.credentialsEmitter.fire(c),
      ),
      lc.onNotification('switchboard/turnCharged', (c: SwitchboardNotifications['switchboard/turnCharged']) => this.turnChargedEmitter.fire(c)),
    );
    try {
      await lc.start();
    } catch (err) {
      const message = redactSecrets(err instanceof Error ? err.message : String(err), [this.apiKey, this.entitlement]);
      this.log.error(`the server failed to start: ${message}`);
      this.setStatus({ state: 'failed', message: `The server failed to start: ${message}` });
      void this.showStartError(`The Switchboard server failed to start: ${message}`);
      return;
    }
    // Not awaited: onRunning sends the resume (sendFirst -> AccountController -> resumeSession), which
    // waits for ready(), which waits for this.starting: this very start. Awaiting it here would deadlock,
    // and leave every request held. Requests wait for the resume anyway (see request).
    if (this._status.state !== 'running') void this.onRunning();
  }

  private onStateChange(state: State): void {
    if (state === State.Running) void this.onRunning();
    else if (state === State.Starting && this._status.state !== 'starting') this.setStatus({ state: 'starting' });
    else if (state === State.StartFailed && !this.starting && this._status.state !== 'failed') {
      // A restart after a crash that did not start (doStart reports its own start's failure): without a
      // failed status the restart's hold would stay closed and every request wait for good.
      const message = 'The Switchboard server failed to restart after it exited.';
      this.log.error(message);
      this.setStatus({ state: 'failed', message });
      void this.showStartError(message);
    }
  }

  private async onRunning(): Promise<void> {
    // This start's own hold: if the server crashes and restarts before the resume is sent, the hold then
    // current is the restart's, which only the restart's own resume may open.
    // A hold given up already (the library reported a restart failed, then restarted by itself): held anew,
    // or a chat sent meanwhile would reach this server before its resume, in local mode.
    if (this.holdOpen) this.holdRequests();
    const open = this.openFirstSent;
    this.setStatus({ state: 'running' });
    await this.sendFirstRequest(open);
    await this.refresh();
    this.readyEmitter.fire();
  }

  /**
   * Until sendFirstRequest has run for the server starting now, requests wait (see sendFirst). Opens the
   * hold of an earlier start that never ran: what waited on it wakes, sees a new hold and waits on that
   * (see request).
   */
  private holdRequests(): void {
    this.openFirstSent();
    this.holdOpen = false;
    const hold: Promise<void> = new Promise<void>((resolve) => {
      this.openFirstSent = () => {
        if (this.firstSent === hold) this.holdOpen = true;
        resolve();
      };
    });
    this.firstSent = hold;
  }

  /** Sends sendFirst's request, then opens `open`: the hold of the start that is running. */
  private async sendFirstRequest(open: () => void): Promise<void> {
    try {
      await this.sendFirst?.();
    } catch (err) {
      this.log.warn(`could not send the stored session's resume: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      open();
    }
  }

  /** Re-read models, the selection and usage from the server. */
  async refresh(): Promise<void> {
    try {
      const [models, usage] = await Promise.all([
        this.request('switchboard/models', { workspaceUri: this.workspaceUri, ...autoParams() }),
        this.request('switchboard/usage', { workspaceUri: this.workspaceUri }),
      ]);
      this.models = models.models;
      this.modelsEmitter.fire();
      this.setSelected({ selected: models.selected, notice: null });
      this.setUsage(usage);
    } catch (err) {
      this.log.warn(`could not refresh models/usage: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  setUsage(usage: UsageReport): void {
    this.usage = usage;
    this.usageEmitter.fire(usage);
  }

  setSelected(result: SelectModelResult): void {
    this.selected = result.selected;
    this.modelEmitter.fire(result);
  }

  /** Select the model for the next message; the server refuses locked models (error 1001). */
  async selectModel(modelId: string): Promise<SelectModelResult> {
    const result = await this.request('switchboard/selectModel', { workspaceUri: this.workspaceUri, modelId });
    this.setSelected(result);
    return result;
  }

  private async showStartError(message: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, 'Show Logs', 'Open Settings', 'Retry');
    if (choice === 'Show Logs') this.log.show(true);
    else if (choice === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'switchboard.server');
    else if (choice === 'Retry') await this.restart();
  }

  async stop(): Promise<void> {
    this.stoppedOnPurpose = true;
    await this.halt();
  }

  /** Stop the language client and its server (stop, or the first half of a restart). */
  private async halt(): Promise<void> {
    const lc = this.lc;
    this.lc = undefined;
    this.lcDisposables.splice(0).forEach((d) => d.dispose());
    if (lc) {
      try {
        if (lc.isRunning()) await lc.stop(5000);
        else await lc.dispose(2000);
      } catch (err) {
        this.log.warn(`stopping the server: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.setStatus({ state: 'stopped' });
  }

  async restart(): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    await this.halt();
    this.crashes = [];
    await this.start();
  }

  private async ready(): Promise<LanguageClient> {
    if (this.starting) await this.starting;
    if (!this.lc || this._status.state === 'stopped') await this.start();
    const lc = this.lc;
    if (!lc || this._status.state === 'failed') {
      const reason = this._status.state === 'failed' ? this._status.message : 'The server is not running.';
      throw new ClientError(ClientErrorCode.SERVER_UNAVAILABLE, reason);
    }
    return lc;
  }

  /** A typed request over the generated method map. */
  async request<M extends SwitchboardRequestMethod>(
    method: M,
    params: SwitchboardRequests[M]['params'],
    token?: vscode.CancellationToken,
  ): Promise<SwitchboardRequests[M]['result']> {
    let lc = await this.ready();
    // Wait for the hold of the server start under way. It may open for another reason than its resume sent
    // (a crash or a stop before that, a failed start): then wait for the hold current now, if another, and
    // take the server then running (ready throws when there is none).
    for (let held: Promise<void> | undefined; held !== this.firstSent; ) {
      held = this.firstSent;
      await held;
      // Held while the extension stopped the server (deactivation): fail, as before, rather than start it again.
      if (this.stoppedOnPurpose) throw new ClientError(ClientErrorCode.SERVER_UNAVAILABLE, 'The Switchboard server was stopped.');
      lc = await this.ready();
    }
    return token ? lc.sendRequest(method, params, token) : lc.sendRequest(method, params);
  }

  /**
   * `switchboard/signIn {refreshToken}`, only to a server started for the gateway whose key (`gatewayKey`,
   * see refreshTokenKey) the token was read under. The setting can change, and the server restart for
   * another gateway, while the token is read: it must not reach that one. `sent`: called once it is sent
   * (the language client sends requests in the order they are made), without waiting for the answer.
   */
  async resumeSession(refreshToken: string, gatewayKey: string, sent?: () => void): Promise<SignInResult> {
    const lc = await this.ready();
    if (lc !== this.lc || refreshTokenKey(this.gatewayOf.get(lc)) !== gatewayKey) {
      throw new ClientError(ClientErrorCode.SERVER_UNAVAILABLE, 'The server was restarted for another gateway: the stored session was not sent to it.');
    }
    const answer = lc.sendRequest<SignInResult>('switchboard/signIn', { refreshToken });
    sent?.();
    return answer;
  }

  /** Send a notification to a running server; dropped when it is not running (a restart reads the state anew). */
  notify<M extends keyof SwitchboardClientNotifications>(method: M, params: SwitchboardClientNotifications[M]): void {
    const lc = this.lc;
    if (!lc || this._status.state !== 'running') return;
    lc.sendNotification(method, params).catch((err: unknown) => this.log.warn(`could not send ${method}: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** Listen to `$/progress` on a token (register before sending the request that uses it). */
  async onProgress(token: string, handler: (value: ChatProgress) => void): Promise<vscode.Disposable> {
    const lc = await this.ready();
    return lc.onProgress(WorkDoneProgress.type, token, (value) => handler(value as unknown as ChatProgress));
  }

  dispose(): void {
    void this.stop();
    this.disposables.forEach((d) => d.dispose());
  }
}
