// The account controller's handling of the stored session, with a fake `vscode`, fake SecretStorage and a
// scripted server: which token goes where, when it is deleted, and how sign-out orders itself.
import { fake } from './fakeVscode'; // first: registers the `vscode` stand-in
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { AccountController } from '../../src/account';
import type { SwitchboardClient } from '../../src/client';
import type { AccountInfo, SignInResult, UsageReport } from '../../src/protocol.generated';
import { refreshTokenKey } from '../../src/shared/account';
import { usage } from './fixtures';

const GATEWAY = 'https://cloud.example.com';
const KEY = refreshTokenKey(GATEWAY)!;
const OTHER_KEY = refreshTokenKey('https://other.example')!;
const LEGACY = 'switchboard.refreshToken';

/** SecretStorage shared by every window: one store, change events fired asynchronously. */
class Secrets {
  readonly values = new Map<string, string>();
  /** When set, get() waits for it (a slow keychain). */
  gate: Promise<void> | undefined;
  /** Every value stored, in order (what other windows may have seen). */
  readonly stored: string[] = [];
  private readonly listeners = new Set<(e: { key: string }) => unknown>();
  async get(key: string): Promise<string | undefined> {
    if (this.gate) await this.gate;
    return this.values.get(key);
  }
  store(key: string, value: string): Promise<void> {
    this.values.set(key, value);
    this.stored.push(value);
    this.fire(key);
    return Promise.resolve();
  }
  delete(key: string): Promise<void> {
    this.values.delete(key);
    this.fire(key);
    return Promise.resolve();
  }
  onDidChange(listener: (e: { key: string }) => unknown): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }
  private fire(key: string): void {
    for (const l of this.listeners) setImmediate(() => l({ key }));
  }
}

function listeners<T>() {
  const all = new Set<(v: T) => unknown>();
  const event = (l: (v: T) => unknown) => (all.add(l), { dispose: () => all.delete(l) });
  return { event, fire: (v: T) => all.forEach((l) => l(v)) };
}

const HOSTED: AccountInfo = { mode: 'hosted', email: 'ada@example.com', gatewayUrl: GATEWAY, accountUrl: null, upgradeUrl: null };
const LOCAL: AccountInfo = { mode: 'local', email: null, gatewayUrl: GATEWAY, accountUrl: null, upgradeUrl: null };

type Handler = (params: Record<string, unknown>) => Promise<unknown>;

/** The window's SwitchboardClient as the controller uses it, with a scripted server. */
class Window {
  readonly requests: { method: string; params: Record<string, unknown> }[] = [];
  readonly handlers = new Map<string, Handler>();
  readonly credentials = listeners<{ refreshToken: string | null; reason: string | null }>();
  readonly ready = listeners<void>();
  readonly codes = listeners<unknown>();
  usage: UsageReport | undefined = usage({ accountInfo: LOCAL });
  readonly account: AccountController;
  /** What the controller set on the client: sent at every server start before anything else. */
  readonly client: Pick<SwitchboardClient, 'sendFirst'>;

  constructor(
    readonly secrets: Secrets,
    public gatewayUrl: string | undefined = GATEWAY,
  ) {
    this.handlers.set('switchboard/signOut', () => Promise.resolve(usage({ accountInfo: LOCAL })));
    const self = this; // eslint-disable-line @typescript-eslint/no-this-alias
    const client = {
      get gatewayUrl() {
        return self.gatewayUrl;
      },
      get usage() {
        return self.usage;
      },
      log: { info: () => undefined, warn: () => undefined },
      setUsage: (u: UsageReport) => (self.usage = u),
      refresh: () => Promise.resolve(),
      restart: () => Promise.resolve(),
      notify: (method: string, params: Record<string, unknown>) => self.requests.push({ method, params }),
      request: (method: string, params: Record<string, unknown>) => {
        self.requests.push({ method, params });
        const handler = self.handlers.get(method);
        return handler ? handler(params) : Promise.reject(new Error(`unexpected ${method}`));
      },
      // As SwitchboardClient.resumeSession (tested in client.test.ts): only to a server of the token's gateway.
      resumeSession: (refreshToken: string, key: string, sent?: () => void) => {
        if (refreshTokenKey(self.gatewayUrl) !== key) return Promise.reject(rpcError(-1, 'The server was restarted for another gateway'));
        const answer = client.request('switchboard/signIn', { refreshToken });
        sent?.();
        return answer;
      },
      onCredentialsChanged: this.credentials.event,
      onDidBecomeReady: this.ready.event,
      onSignInCode: this.codes.event,
      onDidChangeUsage: () => ({ dispose: () => undefined }),
    };
    this.client = client as unknown as SwitchboardClient;
    this.account = new AccountController({ secrets } as never, this.client as SwitchboardClient);
  }

  sent(method: string): Record<string, unknown>[] {
    return this.requests.filter((r) => r.method === method).map((r) => r.params);
  }
}

function signedIn(refreshToken: string): SignInResult {
  return { usage: usage({ accountInfo: HOSTED }), account: HOSTED, refreshToken };
}

function rpcError(code: number, message: string, reason?: string): Error {
  return Object.assign(new Error(message), { code, message, data: reason ? { reason } : undefined });
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

describe('AccountController', () => {
  beforeEach(() => fake.reset());

  it("presents only this gateway's token; the unkeyed legacy token is deleted, never sent", async () => {
    const secrets = new Secrets();
    secrets.values.set(LEGACY, 'LEGACY-TOKEN');
    secrets.values.set(OTHER_KEY, 'OTHER-TOKEN');
    const w = new Window(secrets);
    assert.equal(await w.account.resume(), undefined, 'nothing stored for this gateway: nothing to resume');
    assert.deepEqual(w.sent('switchboard/signIn'), [], 'a token went to a gateway that did not issue it');
    assert.equal(secrets.values.has(LEGACY), false, 'the legacy token was kept');
    assert.equal(secrets.values.get(OTHER_KEY), 'OTHER-TOKEN', "another gateway's session was touched");

    secrets.values.set(KEY, 'MINE');
    w.handlers.set('switchboard/signIn', () => Promise.resolve(signedIn('MINE-2')));
    await w.account.resume();
    assert.deepEqual(w.sent('switchboard/signIn'), [{ refreshToken: 'MINE' }]);
    assert.equal(secrets.values.get(KEY), 'MINE-2');
    assert.equal(secrets.values.get(OTHER_KEY), 'OTHER-TOKEN');
  });

  it('at a server start the resume is sent first, and other requests may follow once it is sent, not answered', async () => {
    const secrets = new Secrets();
    secrets.values.set(KEY, 'MINE');
    const w = new Window(secrets);
    const answer = deferred<SignInResult>();
    w.handlers.set('switchboard/signIn', () => answer.promise);
    assert.ok(w.client.sendFirst, 'the controller did not ask the client to send the resume first');
    await w.client.sendFirst(); // returns while the server still works on the resume
    assert.deepEqual(w.requests, [{ method: 'switchboard/signIn', params: { refreshToken: 'MINE' } }]);
    answer.resolve(signedIn('MINE-2'));
    await settle();
    assert.equal(secrets.values.get(KEY), 'MINE-2');

    const none = new Window(new Secrets());
    await none.client.sendFirst?.(); // nothing stored: nothing to wait for
    assert.deepEqual(none.requests, []);
  });

  it("a gateway that refuses the token deletes only that gateway's token", async () => {
    const secrets = new Secrets();
    secrets.values.set(KEY, 'MINE');
    secrets.values.set(OTHER_KEY, 'OTHER-TOKEN');
    const w = new Window(secrets);
    w.handlers.set('switchboard/signIn', () => Promise.reject(rpcError(1004, 'Your session has ended', 'session_ended')));
    await w.account.resume();
    assert.equal(secrets.values.has(KEY), false);
    assert.equal(secrets.values.get(OTHER_KEY), 'OTHER-TOKEN');
    assert.match(fake.shown.map((s) => s.message).join('\n'), /signed out of Switchboard Cloud/);
  });

  it("a gateway URL the server refuses gets no token, not even the look-alike gateway's; the user is told why", async () => {
    const secrets = new Secrets();
    secrets.values.set(KEY, 'REAL-GATEWAY-TOKEN'); // https://cloud.example.com's session
    // WHATWG URL reads cloud.example.com here; the server's httpx would have posted to attacker.example.
    for (const url of ['https://cloud.example.com\\@attacker.example/..', 'https://cloud.example.com%2f@attacker.example', 'https://cloud.example.com?x']) {
      fake.reset();
      const w = new Window(secrets, url);
      w.handlers.set('switchboard/signIn', () => Promise.resolve(signedIn('NEW')));
      assert.equal(await w.account.resume(), undefined);
      assert.equal(await w.account.signIn(), undefined);
      assert.deepEqual(w.sent('switchboard/signIn'), [], `a sign-in went to the server for ${url}`);
      w.credentials.fire({ refreshToken: 'ROTATED', reason: null });
      await settle();
      assert.equal(secrets.values.get(KEY), 'REAL-GATEWAY-TOKEN', `the real gateway's token was touched for ${url}`);
      assert.ok(!secrets.stored.includes('ROTATED'));
      assert.equal(fake.shown.filter((s) => s.kind === 'warning' && s.message.includes('Refused')).length, 2, JSON.stringify(fake.shown));
    }
  });

  it("a token read for one gateway is not sent once the server was restarted for another", async () => {
    const secrets = new Secrets();
    secrets.values.set(KEY, 'MINE');
    const w = new Window(secrets);
    w.handlers.set('switchboard/signIn', () => Promise.resolve(signedIn('MINE-2')));
    const slow = deferred<void>();
    secrets.gate = slow.promise;
    const resumed = w.account.resume();
    await settle();
    w.gatewayUrl = 'https://other.example'; // the setting changed: client.ts restarted the server for it
    secrets.gate = undefined;
    slow.resolve();
    assert.equal(await resumed, undefined);
    assert.deepEqual(w.sent('switchboard/signIn'), [], "the token went to another gateway's server");
    assert.equal(secrets.values.get(KEY), 'MINE', 'the token was dropped');
  });

  it('stores a sign-in under the gateway it was sent to, even if the server changed gateway since', async () => {
    const secrets = new Secrets();
    const w = new Window(secrets);
    const answer = deferred<SignInResult>();
    w.handlers.set('switchboard/signIn', () => answer.promise);
    const signIn = w.account.signIn();
    await settle();
    w.gatewayUrl = 'https://other.example';
    answer.resolve(signedIn('FROM-CLOUD'));
    await signIn;
    assert.equal(secrets.values.get(KEY), 'FROM-CLOUD');
    assert.equal(secrets.values.has(OTHER_KEY), false, "cloud.example.com's token was stored as other.example's");
  });

  it('keeps the stored token when the failure says nothing about it', async () => {
    const failures = [
      rpcError(-32097, 'Connection is disposed.'),
      rpcError(-32603, 'Internal error'),
      rpcError(-32001, 'The server is not running.'), // a ClientError: never reached the server
      rpcError(1004, 'could not reach the gateway', 'unreachable'),
      rpcError(1004, 'no gateway', 'no_gateway'),
      new Error('boom'),
    ];
    for (const failure of failures) {
      const secrets = new Secrets();
      secrets.values.set(KEY, 'MINE');
      const w = new Window(secrets);
      w.handlers.set('switchboard/signIn', () => Promise.reject(failure));
      await w.account.resume();
      assert.equal(secrets.values.get(KEY), 'MINE', `deleted on ${failure.message}`);
    }
  });

  it('opens only an http(s) verification link; otherwise shows where to go and the code', async () => {
    for (const [code, opened] of [
      [{ verificationUri: 'https://gw.example/device', verificationUriComplete: 'https://gw.example/device?user_code=AB' }, ['https://gw.example/device?user_code=AB']],
      [{ verificationUri: 'https://gw.example/device', verificationUriComplete: 'command:workbench.action.terminal.new' }, ['https://gw.example/device']],
      [{ verificationUri: 'gw.example/device', verificationUriComplete: null }, []],
      [{ verificationUri: 'file:///etc/passwd', verificationUriComplete: 'vscode://x/y' }, []],
    ] as const) {
      fake.reset();
      fake.dialogAnswer = 'Copy code and open browser';
      const w = new Window(new Secrets());
      const answer = deferred<SignInResult>();
      w.handlers.set('switchboard/signIn', () => {
        w.codes.fire({ userCode: 'BCDF-GHJK', expiresIn: 600, ...code });
        return answer.promise;
      });
      const signIn = w.account.signIn();
      await settle();
      assert.deepEqual(fake.opened, opened, JSON.stringify(code));
      assert.deepEqual(fake.clipboard, ['BCDF-GHJK']);
      if (opened.length === 0) {
        assert.ok(
          fake.shown.some((s) => s.message === `Switchboard: open ${code.verificationUri} and enter BCDF-GHJK (copied).`),
          `no instructions shown for ${JSON.stringify(code)}: ${JSON.stringify(fake.shown)}`,
        );
      }
      answer.resolve(signedIn('T1'));
      await signIn;
    }
  });

  it('signs this window out when another window deletes the stored token', async () => {
    const secrets = new Secrets();
    const a = new Window(secrets);
    const b = new Window(secrets);
    for (const w of [a, b]) w.handlers.set('switchboard/signIn', () => Promise.resolve(signedIn('T1')));
    secrets.values.set(KEY, 'T0');
    await a.account.resume();
    await b.account.resume();
    await settle();
    assert.equal(a.usage?.accountInfo?.mode, 'hosted');
    await b.account.signOut();
    await settle();
    assert.equal(a.sent('switchboard/signOut').length, 1, 'window A stayed signed in');
    assert.equal(a.usage?.accountInfo?.mode, 'local');
    assert.equal(b.sent('switchboard/signOut').length, 1, 'B signed out twice (it heard its own deletion)');
    // A window that is not signed in has nothing to sign out of.
    const c = new Window(secrets);
    secrets.values.set(KEY, 'T5');
    await secrets.delete(KEY);
    await settle();
    assert.equal(c.sent('switchboard/signOut').length, 0);
  });

  it('sign-out waits for a resume under way, and the session does not come back', async () => {
    const secrets = new Secrets();
    secrets.values.set(KEY, 'T0');
    const w = new Window(secrets);
    const answer = deferred<SignInResult>();
    w.handlers.set('switchboard/signIn', () => answer.promise);
    const resumed = w.account.resume();
    await settle();
    const out = w.account.signOut();
    await settle();
    assert.deepEqual(w.sent('switchboard/signOut'), [], 'signed out before the resume ended: it will bring the session back');
    answer.resolve(signedIn('T1'));
    await resumed;
    await out;
    assert.deepEqual(
      w.requests.filter((r) => r.method.startsWith('switchboard/sign')).map((r) => r.method),
      ['switchboard/signIn', 'switchboard/signOut'],
    );
    assert.equal(secrets.values.has(KEY), false, 'the token outlived the sign-out');
  });

  it('a sign-out in another window while this one resumes signs this one out too, and nothing is stored', async () => {
    const secrets = new Secrets();
    secrets.values.set(KEY, 'T0');
    const a = new Window(secrets);
    const b = new Window(secrets);
    const answer = deferred<SignInResult>();
    a.handlers.set('switchboard/signIn', () => answer.promise);
    const resumed = a.account.resume();
    await settle();
    await b.account.signOut(); // B deletes the token while A's signIn is in flight
    await settle();
    assert.deepEqual(a.sent('switchboard/signOut'), [], 'A signed out before its resume ended: that would bring the session back');
    answer.resolve(signedIn('T1-A'));
    assert.equal(await resumed, undefined);
    await settle();
    assert.equal(secrets.values.has(KEY), false, 'A stored its session again after B signed out');
    assert.ok(!secrets.stored.includes('T1-A'), 'the revoked session was stored for a while (other windows adopt it)');
    assert.equal(a.sent('switchboard/signOut').length, 1, 'A stayed signed in');
    assert.equal(a.usage?.accountInfo?.mode, 'local');
  });

  it('a failed resume deletes only the token it presented, not one another window stored since', async () => {
    const secrets = new Secrets();
    secrets.values.set(KEY, 'T0');
    const w = new Window(secrets);
    let fail!: (err: Error) => void;
    w.handlers.set('switchboard/signIn', () => new Promise((_, reject) => (fail = reject)));
    const resumed = w.account.resume();
    await settle();
    await secrets.store(KEY, 'FRESH'); // another window signed in anew meanwhile
    fail(rpcError(1004, 'Your session has ended', 'session_ended'));
    await resumed;
    await settle();
    assert.equal(secrets.values.get(KEY), 'FRESH', "another window's new session was deleted");
    // The control: when the stored token is still the one presented, it goes.
    secrets.values.set(KEY, 'T0');
    w.handlers.set('switchboard/signIn', () => Promise.reject(rpcError(1004, 'Your session has ended', 'session_ended')));
    await w.account.resume();
    assert.equal(secrets.values.has(KEY), false);
  });

  it("a session that ended here deletes this window's token, not one another window stored since", async () => {
    const secrets = new Secrets();
    const w = new Window(secrets);
    w.credentials.fire({ refreshToken: 'MINE-1', reason: null });
    await settle();
    assert.equal(secrets.values.get(KEY), 'MINE-1');
    secrets.values.set(KEY, 'FRESH'); // another window's new sign-in (its change event not seen yet)
    w.credentials.fire({ refreshToken: null, reason: 'session_ended' });
    await settle();
    assert.equal(secrets.values.get(KEY), 'FRESH', "another window's new session was deleted");
    secrets.values.set(KEY, 'MINE-1');
    w.credentials.fire({ refreshToken: null, reason: 'session_ended' });
    await settle();
    assert.equal(secrets.values.has(KEY), false, "this window's ended session was kept");
  });

  it('sign-out shows progress, waits for a stuck resume only so long, and the late session is revoked, not stored', async () => {
    const secrets = new Secrets();
    secrets.values.set(KEY, 'T0');
    const w = new Window(secrets);
    w.account.resumeWaitMs = 50;
    const answer = deferred<SignInResult>();
    w.handlers.set('switchboard/signIn', () => answer.promise); // a stuck server: no answer
    const resumed = w.account.resume();
    await settle();
    const out = w.account.signOut();
    await settle();
    assert.deepEqual(fake.progress, [{ title: 'Switchboard: signing out…', running: true }]);
    await out;
    assert.equal(fake.progress[0]?.running, false);
    assert.equal(w.sent('switchboard/signOut').length, 1, 'the sign-out waited for the stuck resume');
    assert.equal(secrets.values.has(KEY), false);
    answer.resolve(signedIn('T-LATE')); // the resume ends after all
    await resumed;
    await settle();
    assert.ok(!secrets.stored.includes('T-LATE'), 'the late session was stored after the sign-out');
    assert.equal(w.sent('switchboard/signOut').length, 2, 'the late session was left signed in on the server');
  });

  it('a rotation arriving while the server signs out is not stored again, and the secret goes after the answer', async () => {
    const secrets = new Secrets();
    secrets.values.set(KEY, 'T0');
    const w = new Window(secrets);
    const answer = deferred<UsageReport>();
    let storedWhenAsked: string | undefined = 'unset';
    w.handlers.set('switchboard/signOut', () => {
      storedWhenAsked = secrets.values.get(KEY);
      return answer.promise;
    });
    const out = w.account.signOut();
    await settle();
    w.credentials.fire({ refreshToken: 'T-ROTATED', reason: null }); // a refresh racing the sign-out
    await settle();
    answer.resolve(usage({ accountInfo: LOCAL }));
    await out;
    await settle();
    assert.equal(storedWhenAsked, 'T0', 'the secret was deleted before the server answered');
    assert.equal(secrets.values.has(KEY), false, 'a dead token was stored again');
    assert.ok(!secrets.stored.includes('T-ROTATED'), 'the dead token was stored for a while (other windows adopt it)');
    // After the sign-out, rotations are stored again (a new sign-in's).
    w.credentials.fire({ refreshToken: 'T-NEW', reason: null });
    await settle();
    assert.equal(secrets.values.get(KEY), 'T-NEW');
  });
});
