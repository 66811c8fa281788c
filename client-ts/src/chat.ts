// The chat's extension-side controller: sends prompts, streams `$/progress` into the view, cancels,
// retries, and remembers which conversation is open. It outlives the webview, so an answer keeps
// streaming while the panel is hidden and a reloaded view restores from `snapshot()`.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { autoParams } from './autoSettings';
import { SwitchboardClient } from './client';
import type {
  ChatProgress,
  ChatResult,
  ContextItem,
  ConversationResult,
  ConversationSummary,
} from './protocol.generated';
import { accountOf, isHosted } from './shared/account';
import { describeError, isCancellation, type ErrorActionId } from './shared/errors';
import { lineSpanLabel } from './shared/format';
import type { ChatEvents, ChatSnapshot, ContextChip, EstimateView, PendingAnswer } from './shared/webviewProtocol';

const STATE_CONVERSATION = 'switchboard.conversationId';
/** How long a stopped signed-in turn's charge is shown as pending before the stored figure is shown. */
const CHARGE_PENDING_MS = 30_000;
/** Largest file attached as context from the editor (the server refuses prompts that don't fit anyway). */
const MAX_CONTEXT_CHARS = 400_000;

type Sink = <K extends keyof ChatEvents>(event: K, data: ChatEvents[K]) => void;

let counter = 0;
function newId(prefix: string): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

export interface SendOptions {
  prompt: string;
  context: ContextItem[];
  thinking?: boolean;
  /** Overrides the selected model for this message only. */
  modelId?: string;
}

export class ChatController implements vscode.Disposable {
  private sinks = new Set<Sink>();
  private pending: PendingAnswer | null = null;
  private cts: vscode.CancellationTokenSource | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  /** Resolves when the answer in flight settles (tests and the Stop command wait on it). */
  private running: Promise<ChatResult | undefined> | undefined;
  /** Charges that came after their turn's request ended, by turn id (null: pending). */
  private readonly charges = new Map<string, number | null>();

  constructor(
    private readonly ctx: vscode.ExtensionContext,
    private readonly client: SwitchboardClient,
  ) {
    this.disposables.push(
      client.onDidChangeUsage((u) => this.post('state/usage', u)),
      client.onDidChangeModel((m) => this.post('state/selected', { selected: m.selected, notice: m.notice })),
      client.onDidChangeModels(() => this.post('state/models', { models: client.models, selected: client.selected })),
      client.onTurnCharged((c) => this.setCharge(c.turnId, c.credits)),
      client.onDidChangeStatus((server) => {
        this.post('state/server', { server, hasApiKey: client.hasApiKey });
        if (server.state === 'running') void this.snapshot().then((s) => this.post('state/snapshot', s));
      }),
    );
  }

  get conversationId(): string | null {
    return this.ctx.workspaceState.get<string>(STATE_CONVERSATION) ?? null;
  }

  private async setConversationId(id: string | null): Promise<void> {
    await this.ctx.workspaceState.update(STATE_CONVERSATION, id ?? undefined);
  }

  get isStreaming(): boolean {
    return this.pending !== null;
  }

  /** Connect a view; returns the disconnect. */
  attach(sink: Sink): vscode.Disposable {
    this.sinks.add(sink);
    return new vscode.Disposable(() => this.sinks.delete(sink));
  }

  post<K extends keyof ChatEvents>(event: K, data: ChatEvents[K]): void {
    for (const sink of this.sinks) sink(event, data);
  }

  private thinkingBudget(): number {
    return vscode.workspace.getConfiguration('switchboard').get<number>('chat.thinkingBudgetTokens') ?? 8000;
  }

  /** Everything the view needs to (re)draw itself, from the server. */
  async snapshot(): Promise<ChatSnapshot> {
    let conversation: ConversationResult | null = null;
    const id = this.conversationId;
    if (id && this.client.status.state === 'running') {
      try {
        conversation = await this.client.request('switchboard/conversation', { workspaceUri: this.client.workspaceUri, conversationId: id });
      } catch (err) {
        this.client.log.warn(`could not reload conversation ${id}: ${err instanceof Error ? err.message : String(err)}`);
        if ((err as { code?: number }).code === 1005) await this.setConversationId(null);
      }
    }
    return {
      workspaceUri: this.client.workspaceUri,
      server: this.client.status,
      hasApiKey: this.client.hasApiKey,
      models: this.client.models,
      selected: this.client.selected,
      usage: this.client.usage ?? null,
      conversation,
      pending: this.pending,
      thinkingBudgetTokens: this.thinkingBudget(),
      charges: Object.fromEntries(this.charges),
    };
  }

  private setCharge(turnId: string, credits: number | null): void {
    this.charges.set(turnId, credits);
    this.post('chat/charge', { turnId, credits });
  }

  /**
   * Signed in, a stopped turn's charge is the gateway's, which the server gets only after the cancel is
   * answered (`switchboard/turnCharged`): shown as pending until then, not as the server's estimate. If
   * none comes (the gateway did not settle in time), the stored figure is shown after a while.
   */
  private awaitCharge(turnId: string | null | undefined): void {
    if (!turnId || !isHosted(accountOf(this.client.usage)) || this.charges.has(turnId)) return;
    this.setCharge(turnId, null);
    const timer = setTimeout(() => void this.chargeTimedOut(turnId), CHARGE_PENDING_MS);
    this.disposables.push(new vscode.Disposable(() => clearTimeout(timer)));
  }

  private async chargeTimedOut(turnId: string): Promise<void> {
    if (this.charges.get(turnId) !== null) return;
    this.charges.delete(turnId);
    const id = this.conversationId;
    let credits = 0;
    try {
      if (id) {
        const c = await this.client.request('switchboard/conversation', { workspaceUri: this.client.workspaceUri, conversationId: id });
        credits = c.turns.find((t) => t.id === turnId)?.credits ?? 0;
      }
    } catch {
      // the stored figure stays unknown to the view: show 0 as before
    }
    this.post('chat/charge', { turnId, credits });
  }

  private async reload(): Promise<void> {
    const id = this.conversationId;
    if (!id) return;
    try {
      const c = await this.client.request('switchboard/conversation', { workspaceUri: this.client.workspaceUri, conversationId: id });
      if (!this.pending) this.post('conversation/loaded', c);
    } catch (err) {
      this.client.log.warn(`reload of ${id} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private onProgress(p: PendingAnswer, value: ChatProgress): void {
    if (this.pending !== p || value.kind !== 'report') return;
    switch (value.type) {
      case 'route':
        p.route = value;
        p.fallback = p.fallback || value.fallback;
        // Known before any text: a stopped or failed first message still belongs to this conversation.
        if (value.conversationId && value.conversationId !== this.conversationId) void this.setConversationId(value.conversationId);
        this.post('chat/route', { requestId: p.requestId, route: value });
        break;
      case 'text':
        p.text += value.text;
        this.post('chat/text', { requestId: p.requestId, text: value.text });
        break;
      case 'thinking':
        p.thinking += value.text;
        this.post('chat/thinking', { requestId: p.requestId, text: value.text });
        break;
    }
  }

  private async run(
    pending: PendingAnswer,
    call: (progressToken: string, token: vscode.CancellationToken) => Promise<ChatResult>,
  ): Promise<ChatResult | undefined> {
    if (this.pending) {
      this.post('notice', { message: 'An answer is still streaming: stop it first (Escape).' });
      return undefined;
    }
    const startedAt = Date.now();
    const hadConversation = this.conversationId;
    const cts = new vscode.CancellationTokenSource();
    this.pending = pending;
    this.cts = cts;
    this.post('chat/started', { ...pending });
    const progressToken = `switchboard-${pending.requestId}`;
    let sub: vscode.Disposable | undefined;
    try {
      sub = await this.client.onProgress(progressToken, (v) => this.onProgress(pending, v));
      const result = await call(progressToken, cts.token);
      // vscode-languageclient may resolve a cancelled request with `undefined`.
      if (!result) throw Object.assign(new Error('Request cancelled'), { code: -32800 });
      this.pending = null;
      await this.setConversationId(result.conversationId);
      this.post('chat/finished', { requestId: pending.requestId, result });
      void this.reload();
      return result;
    } catch (err) {
      this.pending = null;
      if (isCancellation(err) || cts.token.isCancellationRequested) {
        this.awaitCharge(pending.route?.turnId);
        this.post('chat/cancelled', { requestId: pending.requestId });
        if (!this.conversationId) await this.adoptConversationStartedAt(startedAt);
        void this.reload();
      } else {
        this.client.log.warn(`chat failed: ${err instanceof Error ? err.message : String(err)}`);
        const recorded = await this.recordedFailure(startedAt, hadConversation);
        this.post('chat/failed', { requestId: pending.requestId, error: describeError(err, this.client.models), ...recorded });
      }
      return undefined;
    } finally {
      sub?.dispose();
      cts.dispose();
      if (this.cts === cts) this.cts = undefined;
    }
  }

  /**
   * Whether the server recorded the failed exchange (it does for upstream failures): then the view
   * shows the server's transcript, and Retry re-runs the failed answer instead of sending the prompt twice.
   */
  private async recordedFailure(
    startedAt: number,
    hadConversation: string | null,
  ): Promise<{ conversation: ConversationResult | null; retryTurnId: string | null }> {
    try {
      if (!hadConversation && !this.conversationId) await this.adoptConversationStartedAt(startedAt);
      const id = this.conversationId;
      if (!id) return { conversation: null, retryTurnId: null };
      const c = await this.client.request('switchboard/conversation', { workspaceUri: this.client.workspaceUri, conversationId: id });
      const last = c.turns.at(-1);
      if (last && last.role === 'assistant' && last.status === 'failed' && Date.parse(last.createdAt) >= startedAt - 5000) {
        return { conversation: c, retryTurnId: last.id };
      }
    } catch {
      // fall back to the local transcript
    }
    return { conversation: null, retryTurnId: null };
  }

  /**
   * Fallback for servers whose route report has no conversationId: a stopped first message never
   * returned its conversation id, so find the conversation created since we sent and keep using it.
   */
  private async adoptConversationStartedAt(startedAt: number): Promise<void> {
    try {
      const { conversations } = await this.client.request('switchboard/conversations', { workspaceUri: this.client.workspaceUri });
      const candidates = conversations
        .filter((c) => new Date(c.createdAt).getTime() >= startedAt - 2000)
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      if (candidates[0]) await this.setConversationId(candidates[0].id);
    } catch {
      // keep the local transcript; the next message starts a new conversation
    }
  }

  /** Send a prompt (the answer streams into the view); resolves with the result, or undefined. */
  send(opts: SendOptions): Promise<ChatResult | undefined> {
    const prompt = opts.prompt.trim();
    if (!prompt) return Promise.resolve(undefined);
    const modelId = opts.modelId ?? this.client.selected;
    const pending: PendingAnswer = {
      requestId: newId('chat'),
      prompt,
      context: opts.context,
      retryOf: null,
      modelId,
      route: null,
      fallback: false,
      text: '',
      thinking: '',
    };
    const supportsThinking = this.client.models.find((m) => m.id === modelId)?.supportsThinking ?? true;
    this.running = this.run(pending, (workDoneToken, token) =>
      this.client.request(
        'switchboard/chat',
        {
          workspaceUri: this.client.workspaceUri,
          prompt,
          conversationId: this.conversationId,
          ...(opts.modelId ? { modelId: opts.modelId } : {}),
          context: opts.context,
          ...(opts.thinking && supportsThinking ? { thinking: { budgetTokens: this.thinkingBudget() } } : {}),
          ...autoParams(),
          workDoneToken,
        },
        token,
      ),
    );
    return this.running;
  }

  /** "Retry with a stronger model": re-answer a turn; the server picks the model unless one is given. */
  retry(turnId: string, modelId?: string): Promise<ChatResult | undefined> {
    const conversationId = this.conversationId;
    if (!conversationId) return Promise.resolve(undefined);
    const pending: PendingAnswer = {
      requestId: newId('retry'),
      prompt: '',
      context: [],
      retryOf: turnId,
      modelId: modelId ?? this.client.selected,
      route: null,
      fallback: false,
      text: '',
      thinking: '',
    };
    this.running = this.run(pending, (workDoneToken, token) =>
      this.client.request(
        'switchboard/retry',
        { workspaceUri: this.client.workspaceUri, conversationId, turnId, ...(modelId ? { modelId } : {}), workDoneToken },
        token,
      ),
    );
    return this.running;
  }

  /** Cancel the answer in flight (the request's CancellationToken → `$/cancelRequest`). */
  async stop(): Promise<void> {
    if (!this.cts) return;
    this.cts.cancel();
    await this.running?.catch(() => undefined);
  }

  async newChat(): Promise<void> {
    if (this.pending) await this.stop();
    await this.setConversationId(null);
    this.post('conversation/loaded', null);
    this.post('ui/focus', {});
  }

  async open(conversationId: string): Promise<void> {
    if (this.pending) await this.stop();
    try {
      const c = await this.client.request('switchboard/conversation', { workspaceUri: this.client.workspaceUri, conversationId });
      await this.setConversationId(c.id);
      this.post('conversation/loaded', c);
    } catch (err) {
      this.post('notice', { message: 'Could not open the conversation.', error: describeError(err, this.client.models) });
    }
  }

  /** Thumbs up or down on an answer of the open conversation (null clears it); Auto learns from it. */
  async rate(turnId: string, rating: 'up' | 'down' | null): Promise<void> {
    const conversationId = this.conversationId;
    if (!conversationId) return;
    try {
      const r = await this.client.request('switchboard/feedback', { workspaceUri: this.client.workspaceUri, conversationId, turnId, rating });
      this.post('chat/rated', { turnId: r.turnId, rating: r.rating });
      void this.client.refresh(); // "Auto for you" and Auto's picker entry move with it
    } catch (err) {
      this.post('notice', { message: 'Could not save your rating.', error: describeError(err, this.client.models) });
    }
  }

  async list(): Promise<ConversationSummary[]> {
    const r = await this.client.request('switchboard/conversations', { workspaceUri: this.client.workspaceUri });
    return r.conversations;
  }

  async delete(conversationId: string): Promise<ConversationSummary[]> {
    await this.client.request('switchboard/deleteConversation', { workspaceUri: this.client.workspaceUri, conversationId });
    if (this.conversationId === conversationId) {
      await this.setConversationId(null);
      this.post('conversation/loaded', null);
    }
    return this.list();
  }

  async estimate(prompt: string, context: ContextItem[]): Promise<EstimateView | null> {
    if (this.client.status.state !== 'running') return null;
    try {
      const r = await this.client.request('switchboard/estimate', {
        workspaceUri: this.client.workspaceUri,
        prompt,
        conversationId: this.conversationId,
        context,
      });
      const estimate = r.estimates.find((e) => e.modelId === this.client.selected) ?? r.estimates[0];
      return estimate ? { estimate, all: r.estimates } : null;
    } catch (err) {
      if ((err as { code?: number }).code === 1005) await this.setConversationId(null);
      return null;
    }
  }

  /** A context chip for the active editor's selection or file. */
  contextFromEditor(kind: 'selection' | 'file', opts: { quiet?: boolean } = {}): ContextChip | null {
    const editor = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors[0];
    if (!editor) {
      if (!opts.quiet) void vscode.window.showInformationMessage('Switchboard: open a file in the editor to add it to the chat.');
      return null;
    }
    const doc = editor.document;
    const name = path.basename(doc.uri.path) || doc.uri.toString();
    if (kind === 'selection' && !editor.selection.isEmpty) {
      const sel = editor.selection;
      const text = doc.getText(sel);
      const lines = lineSpanLabel(sel);
      return {
        id: newId('ctx'),
        kind: 'selection',
        label: `${name}:${lines}`,
        item: {
          uri: doc.uri.toString(),
          text,
          range: {
            start: { line: sel.start.line, character: sel.start.character },
            end: { line: sel.end.line, character: sel.end.character },
          },
          languageId: doc.languageId,
        },
      };
    }
    let text = doc.getText();
    if (text.length > MAX_CONTEXT_CHARS) {
      text = text.slice(0, MAX_CONTEXT_CHARS);
      void vscode.window.showWarningMessage(`Switchboard: ${name} is large; only its first ${MAX_CONTEXT_CHARS.toLocaleString()} characters are attached.`);
    }
    return { id: newId('ctx'), kind: 'file', label: name, item: { uri: doc.uri.toString(), text, languageId: doc.languageId } };
  }

  async insertCode(code: string): Promise<boolean> {
    const editor = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors[0];
    if (!editor) {
      const doc = await vscode.workspace.openTextDocument({ content: code });
      await vscode.window.showTextDocument(doc);
      return true;
    }
    const ok = await editor.edit((edit) => {
      for (const sel of editor.selections) edit.replace(sel, code);
    });
    if (ok) await vscode.window.showTextDocument(editor.document, editor.viewColumn);
    return ok;
  }

  /** Run what an inline error offers. */
  async runAction(action: ErrorActionId, opts: { modelId?: string; prompt?: string; context?: ContextItem[]; retryOf?: string | null }): Promise<void> {
    switch (action) {
      case 'setApiKey':
        await vscode.commands.executeCommand('switchboard.setApiKey');
        return;
      case 'signIn':
        await vscode.commands.executeCommand('switchboard.signIn');
        return;
      case 'upgrade':
        await vscode.commands.executeCommand('switchboard.upgrade');
        return;
      case 'enableOverage':
      case 'raiseOverageBudget': // the same command: with overage on, it asks for the new budget
        await vscode.commands.executeCommand('switchboard.enableOverage');
        return;
      case 'showUsage':
        await vscode.commands.executeCommand('switchboard.showUsage');
        return;
      case 'showLogs':
        this.client.log.show(true);
        return;
      case 'restartServer':
        await this.client.restart();
        return;
      case 'newChat':
        await this.newChat();
        return;
      case 'useAuto':
        await vscode.commands.executeCommand('switchboard.selectModel', 'auto');
        return;
      case 'retry':
        if (opts.retryOf) await this.retry(opts.retryOf);
        else if (opts.prompt) await this.send({ prompt: opts.prompt, context: opts.context ?? [] });
        return;
      case 'retryWithModel':
        if (opts.retryOf) await this.retry(opts.retryOf, opts.modelId);
        else if (opts.prompt) await this.send({ prompt: opts.prompt, context: opts.context ?? [], modelId: opts.modelId });
        return;
    }
  }

  dispose(): void {
    this.cts?.cancel();
    this.disposables.forEach((d) => d.dispose());
    this.sinks.clear();
  }
}
