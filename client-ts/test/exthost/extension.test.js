// Mocha tests inside a real VS Code extension host (code-server 4.139.1), against the real Python server
// and the fake Anthropic API (settings written by e2e/run.sh). Plain JS: loaded as is by the host.
const assert = require('assert');
const path = require('path');
const vscode = require('vscode');

const EXT_ID = 'switchboard.switchboard';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, timeoutMs = 30000) {
  const start = Date.now();
  let last;
  while (Date.now() - start < timeoutMs) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

/** Collect the events the chat controller posts to its views. */
function recordChat(api) {
  const events = [];
  const sub = api.chat.attach((event, data) => events.push({ event, data }));
  return { events, dispose: () => sub.dispose(), names: () => events.map((e) => e.event) };
}

const creditsIn = (text) => Number((/· ([\d,.]+) credits?/.exec(text) || [])[1]?.replace(/,/g, ''));

describe('Switchboard in a real VS Code extension host', function () {
  /** @type {import('../../src/extension').SwitchboardApi} */
  let api;
  let conversationId;

  before(async function () {
    const ext = vscode.extensions.getExtension(EXT_ID);
    assert.ok(ext, `${EXT_ID} is installed`);
    api = await ext.activate();
    await until('the server to run', () => api.client.status.state === 'running' && api.client.usage && api.client.models.length);
  });

  it('activates and registers every command it contributes', async function () {
    const pkg = vscode.extensions.getExtension(EXT_ID).packageJSON;
    const all = await vscode.commands.getCommands(true);
    for (const c of pkg.contributes.commands) assert.ok(all.includes(c.command), `${c.command} registered`);
    assert.ok(pkg.contributes.commands.some((c) => c.title === 'Select Model' && c.category === 'Switchboard'));
  });

  it('starts the Python server from switchboard.server.command', function () {
    assert.strictEqual(api.client.serverCommand.source, 'setting');
    assert.match(api.client.serverCommand.command, /switchboard$/);
    assert.strictEqual(api.client.hasApiKey, true);
  });

  it('shows the model and credits in the status bar', async function () {
    await until('status bar text', () => /Auto · [\d,.]+ credits/.test(api.statusBar.text));
    assert.match(api.statusBar.text, /^\$\(sparkle\) Auto · 50 credits$/);
  });

  it('lists the models with Auto first and Opus locked on Free', function () {
    const ids = api.client.models.map((m) => m.id);
    assert.deepStrictEqual(ids[0], 'auto');
    const opus = api.client.models.find((m) => m.id === 'claude-opus-4.5');
    assert.strictEqual(opus.available, false);
    assert.match(opus.unavailableReason, /needs Pro/);
  });

  it('switches the model with the Select Model command and updates the status bar', async function () {
    const r = await vscode.commands.executeCommand('switchboard.selectModel', 'claude-haiku-4.5');
    assert.strictEqual(r.selected, 'claude-haiku-4.5');
    assert.strictEqual(api.client.selected, 'claude-haiku-4.5');
    await until('status bar to show Haiku', () => api.statusBar.text.includes('Claude Haiku 4.5 · '));
  });

  it('refuses a locked model with error 1001 and keeps the selection', async function () {
    await assert.rejects(api.client.selectModel('claude-opus-4.5'), (e) => e.code === 1001 && /needs Pro, Pro\+ or Power/.test(e.message));
    assert.strictEqual(api.client.selected, 'claude-haiku-4.5');
  });

  it('streams a chat answer to the view and charges credits', async function () {
    const before = creditsIn(api.statusBar.text);
    const rec = recordChat(api);
    try {
      const result = await api.chat.send({ prompt: 'Show me some code for a closure', context: [] });
      assert.ok(result, 'a result');
      assert.strictEqual(result.modelId, 'claude-haiku-4.5');
      assert.ok(result.credits > 0);
      conversationId = result.conversationId;
      const names = rec.names();
      assert.strictEqual(names[0], 'chat/started');
      assert.ok(names.indexOf('chat/route') < names.indexOf('chat/text'), 'route before text');
      assert.ok(names.includes('chat/finished'));
      const streamed = rec.events.filter((e) => e.event === 'chat/text').map((e) => e.data.text).join('');
      assert.strictEqual(streamed, result.text);
      assert.match(result.text, /```python/);
      await until('the credits to drop', () => creditsIn(api.statusBar.text) < before);
      assert.ok(Math.abs(before - creditsIn(api.statusBar.text) - result.credits) < 0.02);
    } finally {
      rec.dispose();
    }
  });

  it('remembers the conversation for the workspace and restores it from the server', async function () {
    assert.strictEqual(api.chat.conversationId, conversationId);
    const snap = await api.chat.snapshot();
    assert.strictEqual(snap.conversation.id, conversationId);
    assert.deepStrictEqual(snap.conversation.turns.map((t) => t.role), ['user', 'assistant']);
    assert.strictEqual(snap.selected, 'claude-haiku-4.5');
  });

  it('estimates the next message on the selected model', async function () {
    const est = await api.chat.estimate('How do closures capture variables?', []);
    assert.strictEqual(est.estimate.modelId, 'claude-haiku-4.5');
    assert.ok(est.estimate.estimatedCredits > 0);
    assert.ok(est.estimate.inputTokens > 0, 'the conversation so far counts against the context window');
    assert.strictEqual(est.all.length, 5);
  });

  it('retries an answer with a stronger model, keeping both answers', async function () {
    const snap = await api.chat.snapshot();
    const answered = snap.conversation.turns.at(-1); // the server re-answers the last prompt only
    assert.strictEqual(answered.role, 'assistant');
    const rec = recordChat(api);
    const result = await api.chat.retry(answered.id);
    rec.dispose();
    const failed = rec.events.find((e) => e.event === 'chat/failed');
    assert.ok(result, `the retry answered${failed ? `: ${failed.data.error.message}` : ''}`);
    assert.notStrictEqual(result.routedModel, 'claude-haiku-4.5');
    const after = await api.chat.snapshot();
    assert.ok(after.conversation.turns.some((t) => t.retryOf === answered.id));
  });

  it('stops a streaming answer (cancel → $/cancelRequest) and keeps the partial turn', async function () {
    const rec = recordChat(api);
    try {
      const pending = api.chat.send({ prompt: 'Tell me a long story [[fake:slow=0.2 words=400]]', context: [] });
      await until('the first text delta', () => rec.names().includes('chat/text'));
      assert.strictEqual(api.chat.isStreaming, true);
      await api.chat.stop();
      assert.strictEqual(await pending, undefined);
      assert.ok(rec.names().includes('chat/cancelled'));
      assert.strictEqual(api.chat.isStreaming, false);
      const snap = await api.chat.snapshot();
      assert.strictEqual(snap.conversation.turns.at(-1).status, 'cancelled');
    } finally {
      rec.dispose();
    }
  });

  it('streams extended thinking when the Think toggle is on', async function () {
    const rec = recordChat(api);
    try {
      const result = await api.chat.send({ prompt: 'Why is the sky blue?', context: [], thinking: true });
      assert.ok(result, 'a result');
      assert.ok(result.thinking && result.thinking.length > 0, 'the answer has thinking');
      const thought = rec.events.filter((e) => e.event === 'chat/thinking').map((e) => e.data.text).join('');
      assert.strictEqual(thought, result.thinking);
    } finally {
      rec.dispose();
    }
  });

  it('lists the workspace’s conversations and starts a new chat', async function () {
    const list = await api.chat.list();
    assert.ok(list.some((c) => c.id === conversationId));
    await vscode.commands.executeCommand('switchboard.newChat');
    assert.strictEqual(api.chat.conversationId, null);
    await api.chat.open(conversationId);
    assert.strictEqual(api.chat.conversationId, conversationId);
  });

  it('turns the editor selection or file into context chips and inserts code at the cursor', async function () {
    const folder = vscode.workspace.workspaceFolders[0].uri;
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, 'src', 'fib.py'));
    const editor = await vscode.window.showTextDocument(doc);
    editor.selection = new vscode.Selection(0, 0, 1, 10);
    const chip = api.chat.contextFromEditor('selection');
    assert.strictEqual(chip.label, 'fib.py:1-2');
    assert.strictEqual(chip.item.languageId, 'python');
    assert.deepStrictEqual(chip.item.range, { start: { line: 0, character: 0 }, end: { line: 1, character: 10 } });
    const file = api.chat.contextFromEditor('file');
    assert.strictEqual(file.label, 'fib.py');
    assert.match(file.item.text, /def fib/);
    const untitled = await vscode.workspace.openTextDocument({ language: 'python', content: '' });
    await vscode.window.showTextDocument(untitled);
    assert.strictEqual(await api.chat.insertCode('print("hi")\n'), true);
    assert.strictEqual(untitled.getText(), 'print("hi")\n');
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  });

  it('opens the chat view and the usage view', async function () {
    await vscode.commands.executeCommand('switchboard.openChat');
    await until('the chat view', () => api.chatView.visible);
    await vscode.commands.executeCommand('switchboard.showUsage');
    assert.strictEqual(api.usagePanel.isOpen, true);
  });

  it('reports usage by model after the answers', async function () {
    const u = await api.client.request('switchboard/usage', {});
    assert.ok(u.usedCredits > 0);
    assert.ok(u.byModel.length >= 1);
    assert.strictEqual(api.client.usage.usedCredits, u.usedCredits);
  });

  it('a token that does not verify leaves the plan as it is and says why', async function () {
    const usage = await vscode.commands.executeCommand('switchboard.signIn', 'not-a-jwt');
    assert.strictEqual(usage.plan, 'free');
    assert.strictEqual(usage.account, null);
    assert.match(usage.planReason, /malformed/i);
  });

  it('signs in with an entitlement token: the plan, the credits and the unlocked models follow', async function () {
    const token = process.env.SWITCHBOARD_E2E_DEV_TOKEN;
    if (!token) this.skip();
    const usage = await vscode.commands.executeCommand('switchboard.signIn', token);
    assert.strictEqual(usage.plan, 'pro');
    await until('Opus to unlock', () => api.client.models.find((m) => m.id === 'claude-opus-4.5').available);
    await vscode.commands.executeCommand('switchboard.selectModel', 'claude-opus-4.5');
    await until('the status bar to show the Pro credits', () => /Claude Opus 4\.5 · 1,000 credits$/.test(api.statusBar.text));
  });

  it('passes switchboard.gateway.url to the server as SWITCHBOARD_GATEWAY_URL, restarting it on a change', async function () {
    this.timeout(90000);
    const config = () => vscode.workspace.getConfiguration('switchboard');
    // nothing listens there: the server only reports where it would sign in
    const url = 'http://127.0.0.1:9';
    await config().update('gateway.url', url, vscode.ConfigurationTarget.Global);
    try {
      await until('a restarted server that reports the gateway', () => api.client.usage?.accountInfo?.gatewayUrl === url, 60000);
      assert.strictEqual(api.client.usage.accountInfo.mode, 'local', 'not signed in there');
      assert.ok(!/cloud/.test(api.statusBar.text), 'the status bar stays local');
    } finally {
      await config().update('gateway.url', undefined, vscode.ConfigurationTarget.Global);
    }
    await until('a server without a gateway', () => api.client.status.state === 'running' && api.client.usage && !api.client.usage.accountInfo.gatewayUrl, 60000);
    await assert.rejects(
      () => api.client.request('switchboard/signIn', {}),
      (err) => err.code === 1004 && err.data.reason === 'no_gateway',
      'Sign In without a gateway is refused with the reason the client explains',
    );
  });

  it('never writes the API key to settings', function () {
    const inspect = JSON.stringify(vscode.workspace.getConfiguration('switchboard'));
    assert.ok(!/sk-ant-(?!e2e-exthost)/.test(inspect));
    assert.strictEqual(vscode.workspace.getConfiguration('switchboard').get('apiKey'), undefined);
  });
});
