import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  accountLine,
  accountOf,
  accountTarget,
  canonicalGatewayUrl,
  deviceCodeLink,
  deviceCodePrompt,
  gatewayHost,
  gatewayIdentity,
  gatewayUrlProblem,
  refreshTokenKey,
  sessionIsOver,
  safeExternalUrl,
  signInFailure,
  upgradeTarget,
} from '../../src/shared/account';
import type { AccountInfo } from '../../src/protocol.generated';
import { usage } from './fixtures';

/** The gateway URLs the server's tests read too (tests/gateway/hosted/test_hosted_gateway_url.py). */
const shared = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../tests/fixtures/gateway_urls.json'), 'utf8')) as {
  accepted: [string, string, string][];
  refused: string[];
};

const HOSTED: AccountInfo = {
  mode: 'hosted',
  email: 'ada@example.com',
  gatewayUrl: 'http://127.0.0.1:8780',
  accountUrl: 'http://127.0.0.1:8780/account',
  upgradeUrl: 'http://127.0.0.1:8780/account/upgrade',
};
const info = (fields: Partial<AccountInfo>): AccountInfo => ({ mode: 'local', email: null, gatewayUrl: null, accountUrl: null, upgradeUrl: null, ...fields });

describe('account', () => {
  it('reads the account from the usage report, local when absent', () => {
    assert.equal(accountOf(undefined).mode, 'local');
    assert.equal(accountOf(usage({ accountInfo: HOSTED })).email, 'ada@example.com');
  });
  it('says who is signed in and where', () => {
    assert.equal(accountLine(HOSTED), 'Signed in as ada@example.com via 127.0.0.1:8780');
    assert.equal(accountLine(info({ mode: 'hosted' })), 'Signed in via Switchboard Cloud');
    assert.equal(accountLine(info({})), 'Not signed in: credits are counted on this machine');
    assert.equal(gatewayHost('not a url'), 'not a url');
  });
  it('Upgrade opens the gateway’s upgrade page when signed in, else asks to sign in', () => {
    assert.deepEqual(upgradeTarget(HOSTED), { kind: 'open', url: 'http://127.0.0.1:8780/account/upgrade' });
    assert.deepEqual(upgradeTarget({ ...HOSTED, upgradeUrl: null }), { kind: 'open', url: 'http://127.0.0.1:8780/account' });
    assert.deepEqual(upgradeTarget(info({})), { kind: 'signIn' });
    // a local report that somehow carries links does not open them: the plan is not the gateway's
    assert.deepEqual(upgradeTarget(info({ upgradeUrl: 'https://x.example/up' })), { kind: 'signIn' });
    assert.deepEqual(accountTarget(HOSTED), { kind: 'open', url: 'http://127.0.0.1:8780/account' });
  });
  it('opens only http(s) links from the gateway', () => {
    for (const bad of ['command:workbench.action.terminal.new', 'file:///etc/passwd', 'vscode://x/y', 'javascript:alert(1)', '', 'nope']) {
      assert.equal(safeExternalUrl(bad), undefined, bad);
    }
    assert.equal(safeExternalUrl('https://cloud.example.com/account'), 'https://cloud.example.com/account');
    assert.deepEqual(upgradeTarget({ ...HOSTED, upgradeUrl: 'command:evil', accountUrl: null }), { kind: 'signIn' });
  });
  it('puts the code, the page and the expiry in the sign-in dialog', () => {
    const p = deviceCodePrompt({ userCode: 'WDJB-MJHT', verificationUri: 'http://gw/device', expiresIn: 600 });
    assert.equal(p.message, 'Your Switchboard sign-in code: WDJB-MJHT');
    assert.match(p.detail, /Open http:\/\/gw\/device .* enter the code WDJB-MJHT/);
    assert.match(p.detail, /expires in 10 minutes/);
    assert.match(deviceCodePrompt({ userCode: 'A', verificationUri: 'u', expiresIn: 20 }).detail, /1 minute\./);
  });
  it('explains each way a sign-in can fail', () => {
    assert.equal(signInFailure('no_gateway', '').openSettings, true);
    assert.match(signInFailure('no_gateway', '').text, /switchboard\.gateway\.url/);
    assert.match(signInFailure('expired', '').text, /expired/);
    assert.match(signInFailure('denied', '').text, /denied/);
    assert.match(signInFailure('unreachable', 'Connection refused').text, /could not be reached\. Connection refused/);
    assert.equal(signInFailure(undefined, 'boom').text, 'boom');
  });
  it('keys the stored refresh token by the gateway it came from', () => {
    assert.equal(refreshTokenKey('https://Cloud.Example.com/'), 'switchboard.refreshToken:https://cloud.example.com');
    assert.equal(refreshTokenKey(' https://cloud.example.com '), refreshTokenKey('https://cloud.example.com'));
    assert.equal(gatewayIdentity('https://cloud.example.com:443/sb//'), 'https://cloud.example.com/sb');
    assert.equal(gatewayIdentity('http://127.0.0.1:8780'), 'http://127.0.0.1:8780');
    // another origin, port, scheme or path is another gateway
    const keys = ['https://cloud.example.com', 'https://evil.example', 'https://cloud.example.com:8443', 'http://localhost', 'https://localhost', 'https://cloud.example.com/other'];
    assert.equal(new Set(keys.map(refreshTokenKey)).size, keys.length);
    assert.ok(keys.every((k) => refreshTokenKey(k)));
    // never the unkeyed name of older versions, and nothing without a gateway
    assert.notEqual(refreshTokenKey('https://cloud.example.com'), 'switchboard.refreshToken');
    assert.equal(refreshTokenKey(''), undefined);
    assert.equal(refreshTokenKey(undefined), undefined);
    // nothing for a URL the server refuses: no token is read, kept or presented for it
    assert.equal(refreshTokenKey('not a url'), undefined);
    assert.match(gatewayUrlProblem('gateway.example.com') ?? '', /not an https:\/\/ URL/);
    assert.equal(gatewayUrlProblem('https://cloud.example.com'), undefined);
  });
  describe('agrees with the server on the gateway URL (tests/fixtures/gateway_urls.json)', () => {
    // The reviewer's case: WHATWG URL reads cloud.example.com, the server's httpx attacker.example.
    const confused = 'https://cloud.example.com\\@attacker.example/..';
    it('refuses the URL whose key named the real gateway while the server sent the token elsewhere', () => {
      assert.equal(new URL(confused).host, 'cloud.example.com'); // what the key was made of before
      assert.ok(shared.refused.includes(confused));
      assert.equal(refreshTokenKey(confused), undefined);
      assert.match(gatewayUrlProblem(confused) ?? '', /backslash/);
    });
    for (const [url, canonical, host] of shared.accepted) {
      it(`accepts ${JSON.stringify(url)} as ${canonical}`, () => {
        assert.deepEqual(canonicalGatewayUrl(url), { url: canonical });
        assert.equal(refreshTokenKey(url), `switchboard.refreshToken:${canonical}`);
        // the host the key names is the host the server (httpx) posts the token to
        assert.equal(new URL(canonical).hostname.replace(/^\[(.*)\]$/, '$1'), host);
        assert.equal(refreshTokenKey(canonical), refreshTokenKey(url));
      });
    }
    for (const url of shared.refused) {
      it(`refuses ${JSON.stringify(url)}`, () => {
        assert.ok('problem' in canonicalGatewayUrl(url));
        assert.equal(refreshTokenKey(url), undefined);
        assert.equal(gatewayIdentity(url), undefined);
      });
    }
  });
  it('forgets a stored session only when the server says it is over', () => {
    for (const over of ['session_ended', 'denied', 'expired']) assert.equal(sessionIsOver(over), true, over);
    for (const kept of ['unreachable', 'no_gateway', 'missing_key', undefined]) assert.equal(sessionIsOver(kept), false, String(kept));
  });
  it('opens a device code link only when it is http(s)', () => {
    const code = { verificationUri: 'https://gw.example/device', verificationUriComplete: 'https://gw.example/device?user_code=AB' };
    assert.equal(deviceCodeLink(code), 'https://gw.example/device?user_code=AB');
    assert.equal(deviceCodeLink({ ...code, verificationUriComplete: null }), 'https://gw.example/device');
    assert.equal(deviceCodeLink({ ...code, verificationUriComplete: 'command:workbench.action.terminal.new' }), 'https://gw.example/device');
    assert.equal(deviceCodeLink({ verificationUri: 'gw.example/device', verificationUriComplete: 'gw.example/device?user_code=AB' }), undefined);
    assert.equal(deviceCodeLink({ verificationUri: 'file:///etc/passwd', verificationUriComplete: null }), undefined);
  });
});
