// Message tracing is off for good: the real QuietLanguageClient (vscode-languageclient on the fake `vscode`),
// built with the log channels client.ts gives it, never turns tracing on, even with the Switchboard channel
// at log level Trace and `switchboardServer.trace.server` set to verbose. A trace would write every message's
// params (refresh tokens, the API key, prompts) into the log.
import { fake } from './fakeVscode'; // first: registers the `vscode` stand-in
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { Trace } from 'vscode-languageclient/node';
import type * as vscode from 'vscode';
import { logChannels, QuietLanguageClient } from '../../src/client';
import { discardingLogChannel } from '../../src/noTrace';

const TRACE_LEVEL = 1 as vscode.LogLevel; // vscode.LogLevel.Trace

/** The Switchboard output channel, set to Trace by the user: records what is written to it. */
function channelAtTrace(): { channel: vscode.LogOutputChannel; written: string[]; setLevel: (level: vscode.LogLevel) => void } {
  const written: string[] = [];
  const listeners = new Set<(level: vscode.LogLevel) => unknown>();
  const write = (line: string) => void written.push(line);
  const channel = {
    ...discardingLogChannel('Switchboard'),
    logLevel: TRACE_LEVEL,
    onDidChangeLogLevel: (l: (level: vscode.LogLevel) => unknown) => (listeners.add(l), { dispose: () => listeners.delete(l) }),
    trace: write,
    debug: write,
    info: write,
    warn: write,
    error: write,
    append: write,
    appendLine: write,
  } as vscode.LogOutputChannel;
  return { channel, written, setLevel: (level) => listeners.forEach((l) => l(level)) };
}

/** A connection standing in for the server's: records each trace level the client sets. */
function fakeConnection(levels: Trace[]) {
  return {
    trace: (value: Trace) => {
      levels.push(value);
      return Promise.resolve();
    },
  };
}

interface Internals {
  refreshTrace(connection: unknown, sendNotification?: boolean): void;
  hookLogLevelChanged(connection: unknown): void;
  $state: string;
  _connection: unknown;
}

function client(log: vscode.LogOutputChannel): QuietLanguageClient {
  return new QuietLanguageClient('switchboardServer', 'Switchboard', { command: 'switchboard', args: ['serve'] }, { documentSelector: [], ...logChannels(log) });
}

describe('the language client never traces messages', () => {
  beforeEach(() => {
    fake.reset();
    fake.settings.set('switchboardServer.trace.server', 'verbose');
  });

  it('leaves tracing off on refreshTrace (start-up, settings or log level changes), with the log at Trace', async () => {
    const { channel, written, setLevel } = channelAtTrace();
    const lc = client(channel);
    assert.notEqual(lc.traceOutputChannel, channel, 'the trace channel is the Switchboard log');
    const levels: Trace[] = [];
    const connection = fakeConnection(levels);
    const internals = lc as unknown as Internals;
    internals.refreshTrace(connection, false);
    internals.hookLogLevelChanged(connection);
    setLevel(TRACE_LEVEL);
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(levels.length >= 1);
    assert.deepEqual(levels, levels.map(() => Trace.Off), `tracing was turned on: ${JSON.stringify(levels)}`);
    lc.trace('Sending request switchboard/signIn', { refreshToken: 'sbr_secret' });
    assert.deepEqual(written.filter((w) => w.includes('sbr_secret')), []);
  });

  it('keeps tracing off when asked for it explicitly (setTrace(Trace.Verbose))', async () => {
    const { channel, written } = channelAtTrace();
    const lc = client(channel);
    const levels: Trace[] = [];
    const internals = lc as unknown as Internals;
    internals._connection = fakeConnection(levels);
    internals.$state = 'running';
    await lc.setTrace(Trace.Verbose);
    await lc.setTrace(Trace.Messages);
    assert.deepEqual(levels, [Trace.Off, Trace.Off]);
    assert.deepEqual(written, []);
  });

  it('gets a trace channel at level Off for good, which drops what it gets', () => {
    const channel = discardingLogChannel();
    assert.equal(channel.logLevel, 0); // vscode.LogLevel.Off: tracing is on only at LogLevel.Trace (1)
    let fired = false;
    channel.onDidChangeLogLevel(() => (fired = true)).dispose();
    const writes: unknown[] = [];
    const original = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: unknown) => (writes.push(chunk), true)) as typeof process.stdout.write;
    try {
      channel.trace('{"params":{"refreshToken":"sbr_secret"}}');
      channel.info('x');
      channel.appendLine('x');
    } finally {
      process.stdout.write = original;
    }
    assert.equal(fired, false);
    assert.deepEqual(writes, []);
  });
});
