// SwitchboardClient.resumeSession: a stored refresh token goes only to a server started for the gateway it
// was read under (the real class, on the fake `vscode`, with stand-ins for its language clients).
import './fakeVscode'; // first: registers the `vscode` stand-in
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type * as vscode from 'vscode';
import { SwitchboardClient } from '../../src/client';
import { refreshTokenKey } from '../../src/shared/account';

interface Internals {
  lc: unknown;
  _status: { state: string };
  gatewayOf: WeakMap<object, string | undefined>;
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
