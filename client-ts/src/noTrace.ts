// vscode-languageclient traces every JSON-RPC message (params and results) to its trace channel whenever
// that channel's log level is Trace, and `<client id>.trace.server` picks the detail; by default the trace
// channel is the Switchboard output channel, so "Set Log Level… Trace" there would write refresh tokens,
// the API key in initializationOptions and every prompt into the log. This channel is what the client gets
// as its trace channel instead: its level is Off and never changes, and whatever is written is dropped.
// (No `vscode` import at run time, so it can be unit tested.)
import type * as vscode from 'vscode';

/** vscode.LogLevel.Off (0): the languageclient turns message tracing off at any level but Trace. */
const OFF = 0 as vscode.LogLevel;

const nothing = (): void => undefined;

export function discardingLogChannel(name = 'Switchboard (no trace)'): vscode.LogOutputChannel {
  return {
    name,
    logLevel: OFF,
    onDidChangeLogLevel: () => ({ dispose: nothing }),
    trace: nothing,
    debug: nothing,
    info: nothing,
    warn: nothing,
    error: nothing,
    append: nothing,
    appendLine: nothing,
    replace: nothing,
    clear: nothing,
    show: nothing,
    hide: nothing,
    dispose: nothing,
  };
}
