// Start the real Python server (and the fake Anthropic API) and talk JSON-RPC to it over stdio.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  CancellationTokenSource,
  createMessageConnection,
  ProgressType,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import type {
  ChatProgress,
  SwitchboardNotificationMethod,
  SwitchboardNotifications,
  SwitchboardRequestMethod,
  SwitchboardRequests,
} from '../../src/protocol.generated';

export const repoRoot = path.resolve(__dirname, '..', '..', '..');
export const binDir = process.env.SWITCHBOARD_PYTHON_BIN_DIR || path.join(repoRoot, '.venv', 'bin');
export const switchboardBin = path.join(binDir, 'switchboard');

export function serverAvailable(): boolean {
  return existsSync(switchboardBin);
}

/** `switchboard mock-api --port 0`, resolved once it prints its address. */
export async function startFakeApi(): Promise<{ url: string; proc: ChildProcess; stop: () => Promise<void> }> {
  const proc = spawn(switchboardBin, ['mock-api', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`fake API did not start: ${out}`)), 20_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`fake API exited (${code}): ${out}`)));
  });
  return { url, proc, stop: () => stopProcess(proc) };
}

async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const done = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
  await done;
  clearTimeout(timer);
}

export interface ServerHandle {
  connection: MessageConnection;
  proc: ChildProcess;
  home: string;
  stderr: () => string;
  notifications: { method: string; params: unknown }[];
  request<M extends SwitchboardRequestMethod>(
    method: M,
    params: SwitchboardRequests[M]['params'],
    token?: CancellationTokenSource,
  ): Promise<SwitchboardRequests[M]['result']>;
  waitForNotification<M extends SwitchboardNotificationMethod>(
    method: M,
    predicate?: (p: SwitchboardNotifications[M]) => boolean,
    timeoutMs?: number,
  ): Promise<SwitchboardNotifications[M]>;
  onProgress(token: string, handler: (v: ChatProgress) => void): { dispose(): void };
  stop(): Promise<void>;
}

/** Spawn `switchboard serve`, initialize it, and return a typed handle. */
export async function startServer(opts: { apiBaseUrl: string; apiKey?: string | null; home?: string }): Promise<ServerHandle> {
  const home = opts.home ?? mkdtempSync(path.join(tmpdir(), 'switchboard-it-'));
  const env: NodeJS.ProcessEnv = { ...process.env, ANTHROPIC_BASE_URL: opts.apiBaseUrl, SWITCHBOARD_HOME: home };
  delete env.ANTHROPIC_API_KEY;
  const proc = spawn(switchboardBin, ['serve'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const connection = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
  const notifications: { method: string; params: unknown }[] = [];
  const waiters = new Set<() => void>();
  connection.onNotification((method: string, params: unknown) => {
    notifications.push({ method, params });
    for (const w of [...waiters]) w();
  });
  connection.onRequest('window/workDoneProgress/create', () => null);
  connection.onRequest('client/registerCapability', () => null);
  connection.onRequest('workspace/configuration', (p: { items: unknown[] }) => p.items.map(() => null));
  connection.listen();
  await connection.sendRequest('initialize', {
    processId: process.pid,
    clientInfo: { name: 'switchboard-integration-test' },
    rootUri: null,
    capabilities: { window: { workDoneProgress: true } },
    initializationOptions: { apiKey: opts.apiKey === undefined ? 'sk-ant-test-key-0123456789' : opts.apiKey },
  });
  await connection.sendNotification('initialized', {});

  const handle: ServerHandle = {
    connection,
    proc,
    home,
    stderr: () => stderr,
    notifications,
    // (never pass an undefined token: vscode-jsonrpc would send [params, null] as positional params)
    request: (method, params, cts) => (cts ? connection.sendRequest(method, params, cts.token) : connection.sendRequest(method, params)),
    waitForNotification: (method, predicate = () => true, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const seen = notifications.length;
        let index = 0;
        const check = () => {
          for (; index < notifications.length; index++) {
            const n = notifications[index]!;
            if (n.method === method && predicate(n.params as never)) {
              waiters.delete(check);
              clearTimeout(timer);
              resolve(n.params as never);
              return;
            }
          }
        };
        index = seen;
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${method} notification within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    onProgress: (token, handler) => connection.onProgress(new ProgressType<ChatProgress>(), token, handler),
    stop: async () => {
      try {
        await Promise.race([connection.sendRequest('shutdown'), new Promise((r) => setTimeout(r, 3000))]);
        await connection.sendNotification('exit');
      } catch {
        // already gone
      }
      connection.dispose();
      await stopProcess(proc);
      if (!opts.home) rmSync(home, { recursive: true, force: true });
    },
  };
  return handle;
}

export function rpcError(e: unknown): { code: number; message: string; data: Record<string, unknown> } {
  if (e instanceof ResponseError) return { code: e.code, message: e.message, data: (e.data ?? {}) as Record<string, unknown> };
  throw e;
}

export { CancellationTokenSource };
