// SwitchboardClient.resumeSession: a stored refresh token goes only to a server started for the gateway it
// was read under (the real class, on the fake `vscode`, with stand-ins for its language clients).
import './fakeVscode'; // first: registers the `vscode` stand-in
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as vscode from 'vscode';
import { State } from 'vscode-languageclient/node';
import { SwitchboardClient } from '../../src/client';
import { refreshTokenKey } from '../../src/shared/account';

interface Internals {
  lc: unknown;
  _status: { state: string };
  gatewayOf: WeakMap<object, string | undefined>;
  holdRequests(): void;
  onRunning(): Promise<void>;
  onStateChange(state: State): void;
}

/** A running server's language client, started for `gateway`: records what is sent to it. */
function serverFor(client: SwitchboardClient, gateway: string | undefined, sent: unknown[]): void {
  const lc = {
    sendRequest: (method: string, params: unknown) => {
      sent.push({ method, params, gateway });
      return Promise.resolve({ usage: {}, account: null, refreshToken: null });
    },
  };
  const internals = client as unknown as Internals;
  internals.gatewayOf.set(lc, gateway);
  internals.lc = lc;
  internals._status = { state: 'running' };
}

function newClient(): SwitchboardClient {
  const ctx = { secrets: { onDidChange: () => ({ dispose: () => undefined }) } };
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
  return new SwitchboardClient(ctx as unknown as vscode.ExtensionContext, log as unknown as vscode.LogOutputChannel);
}

describe('SwitchboardClient.resumeSession', () => {
  const cloud = refreshTokenKey('https://cloud.example.com')!;

  it("sends the token to a server of the gateway it was read under (in any spelling of that gateway's URL)", async () => {
    const sent: unknown[] = [];
    const client = newClient();
    serverFor(client, 'HTTPS://Cloud.Example.com:443/', sent);
    await client.resumeSession('sbr_1', cloud);
    assert.deepEqual(sent, [{ method: 'switchboard/signIn', params: { refreshToken: 'sbr_1' }, gateway: 'HTTPS://Cloud.Example.com:443/' }]);
  });

  it('refuses to send it to a server started for another gateway, or for none, or for a refused URL', async () => {
    for (const gateway of ['https://other.example', undefined, 'https://cloud.example.com\\@attacker.example/..']) {
      const sent: unknown[] = [];
      const client = newClient();
      serverFor(client, gateway, sent);
      await assert.rejects(client.resumeSession('sbr_1', cloud), /another gateway/);
      assert.deepEqual(sent, [], String(gateway));
    }
  });
});

describe('SwitchboardClient at a server start', () => {
  const cloud = refreshTokenKey('https://cloud.example.com')!;

  it('sends the stored session\'s resume before anything else, and the rest once it is sent', async () => {
    const sent: { method: string }[] = [];
    const client = newClient();
    serverFor(client, 'https://cloud.example.com', sent);
    let keychain!: () => void;
    const read = new Promise<void>((resolve) => (keychain = resolve)); // the token, read slowly
    client.sendFirst = () => new Promise<void>((resumeSent) => void read.then(() => client.resumeSession('sbr_1', cloud, resumeSent)));
    const internals = client as unknown as Internals;
    internals.holdRequests(); // as a start (or a crash restart) does
    const running = internals.onRunning(); // the models and usage it loads
    const chat = client.request('switchboard/chat', { workspaceUri: 'file:///w', prompt: 'hi' });
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(sent.length, 0, 'a request reached the server before the resume');
    keychain();
    await Promise.all([running, chat]);
    const methods = sent.map((s) => s.method);
    assert.equal(methods[0], 'switchboard/signIn', `a request went before the resume: ${methods.join(', ')}`);
    assert.deepEqual(new Set(methods), new Set(['switchboard/signIn', 'switchboard/models', 'switchboard/usage', 'switchboard/chat']));
    assert.equal(methods.length, 4);
  });

  it('holds a request made before a crash restart until the restarted server has been sent the resume', async () => {
    const sent: { method: string }[] = [];
    const client = newClient();
    serverFor(client, 'https://cloud.example.com', sent);
    let keychain!: () => void;
    const read = new Promise<void>((resolve) => (keychain = resolve));
    client.sendFirst = () => new Promise<void>((resumeSent) => void read.then(() => client.resumeSession('sbr_1', cloud, resumeSent)));
    const internals = client as unknown as Internals;
    internals.holdRequests(); // the start
    const chat = client.request('switchboard/chat', { workspaceUri: 'file:///w', prompt: 'hi' });
    await tick();
    internals.holdRequests(); // the server crashed before it ran: the crash handler holds for the restart
    await tick();
    assert.equal(sent.length, 0, 'the chat went to the restarted server before its resume');
    const running = internals.onRunning(); // the restart runs
    await tick();
    assert.equal(sent.length, 0, 'the chat went to the restarted server before its resume');
    keychain();
    await Promise.all([running, chat]);
    assert.equal(sent[0]?.method, 'switchboard/signIn', `a request went before the resume: ${sent.map((s) => s.method).join(', ')}`);
  });

  it("does not let a start's resume, sent late, open the hold of the restart after it", async () => {
    const sent: { method: string }[] = [];
    const client = newClient();
    serverFor(client, 'https://cloud.example.com', sent);
    const sends: (() => void)[] = [];
    client.sendFirst = () => new Promise<void>((resumeSent) => sends.push(resumeSent));
    const internals = client as unknown as Internals;
    internals.holdRequests(); // start N
    const runningN = internals.onRunning(); // its resume is slow to be sent
    await tick();
    internals.holdRequests(); // N crashed: the restart N+1
    const runningN1 = internals.onRunning(); // its resume is slow to be sent too
    const chat = client.request('switchboard/chat', { workspaceUri: 'file:///w', prompt: 'hi' });
    await tick();
    assert.equal(sends.length, 2);
    sends[0]!(); // N's resume ends late
    await tick();
    assert.equal(sent.length, 0, "N's resume opened N+1's hold");
    sends[1]!(); // N+1's resume sent
    await Promise.all([runningN, runningN1, chat]);
    assert.ok(sent.some((s) => s.method === 'switchboard/chat'));
  });
});

describe('SwitchboardClient after a crash', () => {
  it('fails, and refuses the requests held, when the restart does not start', async () => {
    const sent: { method: string }[] = [];
    const client = newClient();
    serverFor(client, 'https://cloud.example.com', sent);
    const internals = client as unknown as Internals;
    // as the crash handler does
    internals.holdRequests();
    internals._status = { state: 'starting' };
    const chat = client.request('switchboard/chat', { workspaceUri: 'file:///w', prompt: 'hi' });
    await tick();
    internals.onStateChange(State.Starting);
    internals.onStateChange(State.StartFailed); // e.g. spawn ENOENT
    assert.equal(client.status.state, 'failed');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the request still waits')), 1000)));
    try {
      await assert.rejects(Promise.race([chat, timeout]), /failed to restart/);
    } finally {
      clearTimeout(timer);
    }
    assert.equal(sent.length, 0);
  });

  it('holds requests anew when the library restarts by itself after it reported a failed restart', async () => {
    const sent: { method: string }[] = [];
    const client = newClient();
    serverFor(client, 'https://cloud.example.com', sent);
    const internals = client as unknown as Internals;
    internals.holdRequests(); // the crash handler
    internals._status = { state: 'starting' };
    internals.onStateChange(State.StartFailed); // the hold is given up...
    assert.equal(client.status.state, 'failed');
    let keychain!: () => void;
    const read = new Promise<void>((resolve) => (keychain = resolve));
    const cloud = refreshTokenKey('https://cloud.example.com')!;
    client.sendFirst = () => new Promise<void>((resumeSent) => void read.then(() => client.resumeSession('sbr_1', cloud, resumeSent)));
    const running = internals.onRunning(); // ...and the library's own next try runs
    const chat = client.request('switchboard/chat', { workspaceUri: 'file:///w', prompt: 'hi' });
    await tick();
    assert.equal(sent.length, 0, 'the chat reached the server before its resume');
    keychain();
    await Promise.all([running, chat]);
    assert.equal(sent[0]?.method, 'switchboard/signIn', `a request went before the resume: ${sent.map((s) => s.method).join(', ')}`);
  });

  it('refuses a request held while the extension stops the server, without starting another', async () => {
    const sent: { method: string }[] = [];
    const client = newClient();
    serverFor(client, 'https://cloud.example.com', sent);
    const internals = client as unknown as Internals;
    internals.holdRequests(); // a start whose resume is not sent yet
    const chat = client.request('switchboard/chat', { workspaceUri: 'file:///w', prompt: 'hi' });
    await tick();
    await client.stop(); // deactivation
    await assert.rejects(chat, /was stopped/);
    assert.equal(client.status.state, 'stopped');
    assert.equal(sent.length, 0);
  });
});

function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 10));
}
