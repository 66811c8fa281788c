import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SharedSessionFollower, type SecretEvents } from '../../src/shared/sharedSession';

const KEY = 'switchboard.refreshToken:https://cloud.example.com';

/** SecretStorage as every window sees it: one store, a change event per write (fired asynchronously). */
class FakeSecrets implements SecretEvents {
  private readonly values = new Map<string, string>();
  private readonly listeners = new Set<(event: { key: string }) => unknown>();

  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.values.get(key));
  }

  onDidChange(listener: (event: { key: string }) => unknown): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  store(key: string, value: string | undefined): void {
    if (value === undefined) this.values.delete(key);
    else this.values.set(key, value);
    for (const listener of this.listeners) setImmediate(() => listener({ key }));
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

function follower(
  secrets: FakeSecrets,
  key: () => string | undefined = () => KEY,
): { adopted: string[]; ended: number[]; follower: SharedSessionFollower } {
  const adopted: string[] = [];
  const ended: number[] = [];
  const handlers = { adopt: (token: string) => adopted.push(token), ended: () => ended.push(1) };
  return { adopted, ended, follower: new SharedSessionFollower(secrets, key, handlers) };
}

describe('SharedSessionFollower', () => {
  it("hands this window's server the token another window stored, once", async () => {
    const secrets = new FakeSecrets();
    const a = follower(secrets);
    const b = follower(secrets);
    a.follower.handedOver('T1');
    secrets.store(KEY, 'T1');
    await settle();
    b.follower.handedOver('T2');
    secrets.store(KEY, 'T2');
    await settle();
    assert.deepEqual(a.adopted, ['T2']);
    assert.deepEqual(b.adopted, ['T1']); // B was not signed in yet: its server ignores it
    secrets.store(KEY, 'T2'); // the same value again (e.g. a re-store): not sent twice
    await settle();
    assert.deepEqual(a.adopted, ['T2']);
  });

  it("never sends back a token of this window's own, even one read late behind queued writes", async () => {
    const secrets = new FakeSecrets();
    const a = follower(secrets);
    a.follower.handedOver('T3');
    a.follower.handedOver('T4');
    secrets.store(KEY, 'T3'); // the event for T3 reads T3: already spent by this server
    await settle();
    secrets.store(KEY, 'T4');
    await settle();
    assert.deepEqual(a.adopted, []);
  });

  it('ignores its own deletion, other keys, and changes after dispose', async () => {
    const secrets = new FakeSecrets();
    const a = follower(secrets);
    a.follower.handedOver('T1');
    a.follower.handedOver(null); // this window's session ended: it deletes the secret itself
    secrets.store(KEY, undefined);
    secrets.store('switchboard.entitlement', 'other');
    await settle();
    a.follower.dispose();
    secrets.store(KEY, 'T9');
    secrets.store(KEY, undefined);
    await settle();
    assert.deepEqual(a.adopted, []);
    assert.deepEqual(a.ended, []);
  });

  it('says so when another window deletes the stored token (signed out there)', async () => {
    const secrets = new FakeSecrets();
    const a = follower(secrets);
    const b = follower(secrets);
    a.follower.handedOver('T1');
    secrets.store(KEY, 'T1');
    await settle();
    b.follower.handedOver(null); // Sign Out in B
    secrets.store(KEY, undefined);
    await settle();
    assert.deepEqual(a.ended, [1], 'A must sign out too');
    assert.deepEqual(b.ended, [], "B's own deletion is not news to B");
    // A later sign-in in A, then a deletion by B again: A hears of it again.
    a.follower.handedOver('T2');
    secrets.store(KEY, 'T2');
    await settle();
    secrets.store(KEY, undefined);
    await settle();
    assert.deepEqual(a.ended, [1, 1]);
  });

  it("follows only the current gateway's key, and nothing without a gateway", async () => {
    const secrets = new FakeSecrets();
    let key: string | undefined = KEY;
    const a = follower(secrets, () => key);
    const other = 'switchboard.refreshToken:https://other.example';
    secrets.store(other, 'X1'); // another gateway's session: not this server's business
    secrets.store('switchboard.refreshToken', 'LEGACY');
    await settle();
    assert.deepEqual(a.adopted, []);
    key = other; // the server was restarted against the other gateway
    secrets.store(other, 'X2');
    await settle();
    assert.deepEqual(a.adopted, ['X2']);
    key = undefined;
    secrets.store(other, 'X3');
    secrets.store(other, undefined);
    await settle();
    assert.deepEqual(a.adopted, ['X2']);
    assert.deepEqual(a.ended, []);
  });
});
