import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { discardingLogChannel } from '../../src/noTrace';

describe('the language client trace channel', () => {
  it('is at log level Off for good, so vscode-languageclient never traces messages, and drops what it gets', () => {
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
