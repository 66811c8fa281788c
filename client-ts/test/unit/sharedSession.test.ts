import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SharedSessionFollower, type SecretEvents } from '../../src/shared/sharedSession';

const KEY = 'switchboard.refreshToken';

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

function follower(secrets: FakeSecrets): { adopted: string[]; follower: SharedSessionFollower } {
  const adopted: string[] = [];
  return { adopted, follower: new SharedSessionFollower(secrets, KEY, (token) => adopted.push(token)) };
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

  it('ignores deletions, other keys, and changes after dispose', async () => {
    const secrets = new FakeSecrets();
    const a = follower(secrets);
    a.follower.handedOver('T1');
    secrets.store(KEY, undefined);
    secrets.store('switchboard.entitlement', 'other');
    await settle();
    a.follower.dispose();
    secrets.store(KEY, 'T9');
    await settle();
    assert.deepEqual(a.adopted, []);
  });
});
