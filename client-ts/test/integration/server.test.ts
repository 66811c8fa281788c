// Integration: a Node JSON-RPC client (vscode-jsonrpc) drives the real Python server over stdio,
// against the fake Anthropic API. Checks the protocol the extension relies on, end to end.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ChatProgress, ChatResult, UsageReport } from '../../src/protocol.generated';
import { CancellationTokenSource, rpcError, serverAvailable, startFakeApi, startServer, switchboardBin, type ServerHandle } from './harness';

const WS = 'file:///tmp/switchboard-it-workspace';
const skip = serverAvailable() ? false : `no server at ${switchboardBin} (set SWITCHBOARD_PYTHON_BIN_DIR)`;

describe('switchboard serve over stdio (vscode-jsonrpc)', { skip, timeout: 120_000 }, () => {
  let api: Awaited<ReturnType<typeof startFakeApi>>;
  let server: ServerHandle;
  let first: ChatResult;

  before(async () => {
    api = await startFakeApi();
    server = await startServer({ apiBaseUrl: api.url });
  });
  after(async () => {
    await server?.stop();
    await api?.stop();
  });

  it('lists every model with multipliers, Auto first and recommended, Opus locked on Free', async () => {
    const r = await server.request('switchboard/models', { workspaceUri: WS });
    assert.equal(r.selected, 'auto');
    assert.deepEqual(
      r.models.map((m) => m.id),
      ['auto', 'claude-haiku-4.5', 'claude-sonnet-4.0', 'claude-sonnet-4.5', 'claude-opus-4.5'],
    );
    assert.equal(r.models[0]!.recommended, true);
    assert.equal(r.models.find((m) => m.id === 'claude-haiku-4.5')!.creditMultiplier, 0.4);
    const opus = r.models.find((m) => m.id === 'claude-opus-4.5')!;
    assert.equal(opus.available, false);
    assert.equal(opus.unavailableReason, 'Claude Opus 4.5 needs Pro, Pro+ or Power');
  });

  it('reports the plan and credits', async () => {
    const u = await server.request('switchboard/usage', {});
    assert.equal(u.plan, 'free');
    assert.ok(u.includedCredits > 0);
    assert.equal(u.usedCredits, 0);
    assert.equal(u.remainingCredits, u.includedCredits);
    assert.ok(u.periodEnd > u.periodStart);
  });

  it('selects a model and notifies switchboard/modelChanged', async () => {
    const changed = server.waitForNotification('switchboard/modelChanged', (p) => p.selected === 'claude-haiku-4.5');
    const r = await server.request('switchboard/selectModel', { workspaceUri: WS, modelId: 'claude-haiku-4.5' });
    assert.equal(r.selected, 'claude-haiku-4.5');
    assert.equal((await changed).selected, 'claude-haiku-4.5');
    assert.equal((await server.request('switchboard/models', { workspaceUri: WS })).selected, 'claude-haiku-4.5');
  });

  it('refuses a locked model with 1001 and the reason', async () => {
    const e = rpcError(await server.request('switchboard/selectModel', { workspaceUri: WS, modelId: 'claude-opus-4.5' }).then(
      () => assert.fail('expected an error'),
      (err: unknown) => err,
    ));
    assert.equal(e.code, 1001);
    assert.match(e.message, /Claude Opus 4\.5 needs Pro, Pro\+ or Power/);
    assert.equal(e.data.modelId, 'claude-opus-4.5');
    assert.equal(e.data.plan, 'free');
  });

  it('refuses an unknown model with -32602 and data.modelId', async () => {
    const e = rpcError(await server.request('switchboard/selectModel', { workspaceUri: WS, modelId: 'gpt-17' }).catch((err: unknown) => err));
    assert.equal(e.code, -32602);
    assert.equal(e.data.modelId, 'gpt-17');
  });

  it('estimates a prompt on every model', async () => {
    const r = await server.request('switchboard/estimate', { workspaceUri: WS, prompt: 'Explain closures in JavaScript' });
    const haiku = r.estimates.find((e) => e.modelId === 'claude-haiku-4.5')!;
    const sonnet = r.estimates.find((e) => e.modelId === 'claude-sonnet-4.5')!;
    assert.ok(haiku.estimatedCredits > 0 && haiku.estimatedCredits < sonnet.estimatedCredits);
    assert.equal(r.estimates.find((e) => e.modelId === 'claude-opus-4.5')!.allowed, false);
    assert.ok(haiku.inputTokens > 0 && haiku.contextWindow >= haiku.inputTokens);
  });

  it('streams a chat as $/progress: begin, route first, text deltas, end', async () => {
    const events: ChatProgress[] = [];
    const sub = server.onProgress('it-chat-1', (v) => events.push(v));
    const usageChanged = server.waitForNotification('switchboard/usageChanged', (u: UsageReport) => u.usedCredits > 0);
    first = await server.request('switchboard/chat', {
      workspaceUri: WS,
      prompt: 'What is a closure in JavaScript?',
      context: [{ uri: 'file:///tmp/a.js', text: 'function f() { let x = 1; return () => x; }', languageId: 'javascript' }],
      workDoneToken: 'it-chat-1',
    });
    sub.dispose();
    assert.equal(events[0]?.kind, 'begin');
    const reports = events.filter((e) => e.kind === 'report');
    assert.equal(reports[0]?.kind === 'report' && reports[0].type, 'route', 'the route report comes first');
    const route = reports[0] as Extract<ChatProgress, { type: 'route' }>;
    assert.equal(route.modelId, 'claude-haiku-4.5');
    assert.equal(route.routedModel, 'claude-haiku-4.5');
    assert.ok(route.conversationId, 'the route report says where the turn is stored');
    const text = reports.filter((r): r is Extract<ChatProgress, { type: 'text' }> => r.kind === 'report' && r.type === 'text').map((r) => r.text).join('');
    assert.ok(text.length > 0);
    assert.equal(text, first.text, 'the deltas add up to the answer');
    assert.equal(events.at(-1)?.kind, 'end');
    assert.equal(first.modelId, 'claude-haiku-4.5');
    assert.ok(first.credits > 0);
    assert.ok(first.conversationId && first.turnId);
    assert.equal(route.conversationId, first.conversationId);
    assert.equal(route.turnId, first.turnId);
    const u = await usageChanged;
    assert.ok(Math.abs(u.usedCredits - first.credits) < 1e-6);
    assert.ok(u.remainingCredits < u.includedCredits);
  });

  it('routes Auto and says which model answered and why', async () => {
    await server.request('switchboard/selectModel', { workspaceUri: WS, modelId: 'auto' });
    const routes: ChatProgress[] = [];
    const sub = server.onProgress('it-chat-2', (v) => v.kind === 'report' && v.type === 'route' && routes.push(v));
    const r = await server.request('switchboard/chat', {
      workspaceUri: WS,
      conversationId: first.conversationId,
      prompt: 'And how do I avoid leaking memory with them?',
      workDoneToken: 'it-chat-2',
    });
    sub.dispose();
    assert.equal(r.conversationId, first.conversationId);
    assert.equal(r.modelId, 'auto');
    assert.ok(r.routedModel !== undefined && r.routedModel.startsWith('claude-'));
    assert.ok(r.routeReason.length > 0);
    assert.equal(routes.length >= 1, true);
  });

  it('cancels a streaming chat with $/cancelRequest (-32800) and keeps the partial turn', async () => {
    const cts = new CancellationTokenSource();
    let deltas = 0;
    let cancelledAt = 0;
    const sub = server.onProgress('it-chat-3', (v) => {
      if (v.kind === 'report' && v.type === 'text' && ++deltas === 2) {
        cancelledAt = Date.now();
        cts.cancel();
      }
    });
    const err = await server
      .request('switchboard/chat', { workspaceUri: WS, conversationId: first.conversationId, prompt: 'Tell me a long story [[fake:slow=0.2 words=300]]', workDoneToken: 'it-chat-3' }, cts)
      .then(() => assert.fail('expected the request to be cancelled'), (e: unknown) => rpcError(e));
    sub.dispose();
    assert.equal(err.code, -32800);
    assert.ok(Date.now() - cancelledAt < 5000, 'the server stops promptly');
    const c = await server.request('switchboard/conversation', { workspaceUri: WS, conversationId: first.conversationId });
    const last = c.turns.at(-1)!;
    assert.equal(last.role, 'assistant');
    assert.equal(last.status, 'cancelled');
  });

  it('lists, loads and deletes conversations (then 1005)', async () => {
    const list = await server.request('switchboard/conversations', { workspaceUri: WS });
    const mine = list.conversations.find((c) => c.id === first.conversationId);
    assert.ok(mine, 'the conversation is listed');
    assert.ok(mine.turnCount >= 4);
    const c = await server.request('switchboard/conversation', { workspaceUri: WS, conversationId: first.conversationId });
    assert.equal(c.turns[0]!.role, 'user');
    assert.equal(c.turns[0]!.context.length, 1);
    assert.equal(c.turns[1]!.id, first.turnId);
    await server.request('switchboard/deleteConversation', { workspaceUri: WS, conversationId: first.conversationId });
    const after = await server.request('switchboard/conversations', { workspaceUri: WS });
    assert.equal(after.conversations.some((x) => x.id === first.conversationId), false);
    const e = rpcError(await server.request('switchboard/conversation', { workspaceUri: WS, conversationId: first.conversationId }).catch((x: unknown) => x));
    assert.equal(e.code, 1005);
  });

  it('reports an upstream failure as 1003 with retry data', async () => {
    const e = rpcError(await server.request('switchboard/chat', { workspaceUri: WS, prompt: 'hi [[fake:status=529]]' }).catch((x: unknown) => x));
    assert.equal(e.code, 1003);
    assert.equal(e.data.status, 529);
    assert.equal(e.data.retryable, true);
  });

  it('asks for an API key with 1004 when none was given', async () => {
    const keyless = await startServer({ apiBaseUrl: api.url, apiKey: null });
    try {
      const e = rpcError(await keyless.request('switchboard/chat', { workspaceUri: WS, prompt: 'hi' }).catch((x: unknown) => x));
      assert.equal(e.code, 1004);
      assert.equal(e.data.reason, 'missing_key');
    } finally {
      await keyless.stop();
    }
  });
});
