// A stand-in for the `vscode` module, enough for src/account.ts: registered as `vscode` for require(), so
// the controller's sequencing (secrets, resume, sign-out) can be tested under node --test. Import it first.
import Module from 'node:module';

export interface Shown {
  kind: 'info' | 'warning' | 'error';
  message: string;
}

export const fake = {
  shown: [] as Shown[],
  opened: [] as string[],
  clipboard: [] as string[],
  commands: [] as string[],
  /** What the next modal dialog answers (the sign-in code's). */
  dialogAnswer: undefined as string | undefined,
  /** The titles of the progress notifications shown, and whether each is still running. */
  progress: [] as { title: string; running: boolean }[],
  /** What workspace.getConfiguration(section).get(key) answers, by `section.key`. */
  settings: new Map<string, unknown>(),
  reset(): void {
    fake.shown.length = 0;
    fake.opened.length = 0;
    fake.clipboard.length = 0;
    fake.commands.length = 0;
    fake.dialogAnswer = undefined;
    fake.settings.clear();
    fake.progress.length = 0;
  },
};

class CancellationTokenSource {
  private listeners: (() => void)[] = [];
  token = {
    isCancellationRequested: false,
    onCancellationRequested: (listener: () => void) => {
      this.listeners.push(listener);
      return { dispose: () => undefined };
    },
  };
  cancel(): void {
    if (this.token.isCancellationRequested) return;
    this.token.isCancellationRequested = true;
    this.listeners.forEach((l) => l());
  }
  dispose(): void {}
}

class EventEmitter<T> {
  private readonly listeners = new Set<(value: T) => unknown>();
  event = (listener: (value: T) => unknown): { dispose(): void } => {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  };
  fire(value: T): void {
    this.listeners.forEach((l) => l(value));
  }
  dispose(): void {
    this.listeners.clear();
  }
}

const vscode = {
  version: '1.100.0',
  CancellationTokenSource,
  EventEmitter,
  LogLevel: { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 },
  workspace: {
    getConfiguration(section?: string) {
      return {
        get<T>(key: string, fallback?: T): T | undefined {
          const full = section ? `${section}.${key}` : key;
          return fake.settings.has(full) ? (fake.settings.get(full) as T) : fallback;
        },
      };
    },
    onDidChangeConfiguration: () => ({ dispose: () => undefined }),
  },
  ProgressLocation: { Notification: 15 },
  Uri: {
    parse(value: string, strict?: boolean): { toString(): string } {
      if (strict && !/^[a-z][a-z0-9+.-]*:/i.test(value)) throw new Error(`[UriError]: Scheme is missing: ${value}`);
      return { toString: () => value };
    },
  },
  window: {
    showInformationMessage(message: string, ...rest: unknown[]): Promise<string | undefined> {
      fake.shown.push({ kind: 'info', message });
      const modal = typeof rest[0] === 'object' && rest[0] !== null && (rest[0] as { modal?: boolean }).modal;
      return Promise.resolve(modal ? fake.dialogAnswer : undefined);
    },
    showWarningMessage(message: string): Promise<string | undefined> {
      fake.shown.push({ kind: 'warning', message });
      return Promise.resolve(undefined);
    },
    showErrorMessage(message: string): Promise<string | undefined> {
      fake.shown.push({ kind: 'error', message });
      return Promise.resolve(undefined);
    },
    withProgress<T>(options: { title?: string }, task: (progress: { report(v: unknown): void }, token: unknown) => Promise<T>): Promise<T> {
      const shown = { title: options.title ?? '', running: true };
      fake.progress.push(shown);
      return task({ report: () => undefined }, new CancellationTokenSource().token).finally(() => (shown.running = false));
    },
  },
  env: {
    clipboard: {
      writeText(text: string): Promise<void> {
        fake.clipboard.push(text);
        return Promise.resolve();
      },
    },
    openExternal(uri: { toString(): string }): Promise<boolean> {
      fake.opened.push(uri.toString());
      return Promise.resolve(true);
    },
  },
  commands: {
    executeCommand(command: string): Promise<unknown> {
      fake.commands.push(command);
      return Promise.resolve(undefined);
    },
  },
};

const loader = Module as unknown as {
  _resolveFilename(request: string, ...rest: unknown[]): string;
  _cache: Record<string, unknown>;
};
const resolve = loader._resolveFilename;
loader._resolveFilename = function (request: string, ...rest: unknown[]): string {
  return request === 'vscode' ? 'vscode' : resolve.call(this, request, ...rest);
};
/**
 * Any other name (vscode-languageclient reads many while it loads and builds a client: classes it extends,
 * enums, events it subscribes to): a function that can be extended, called (it returns a disposable: an
 * event's subscription) or read (every member is another such function).
 */
function anything(name: string): unknown {
  const members = new Map<PropertyKey, unknown>();
  function Stub(this: unknown): unknown {
    return new.target ? undefined : { dispose: () => undefined };
  }
  Object.defineProperty(Stub, 'name', { value: name });
  return new Proxy(Stub, {
    get(target, key, receiver) {
      if (key in target || typeof key === 'symbol') return Reflect.get(target, key, receiver) as unknown;
      if (!members.has(key)) members.set(key, anything(`${name}.${String(key)}`));
      return members.get(key);
    },
  });
}

/** `target` with anything() for the members it does not have. */
function withFallback<T extends object>(target: T, name: string): T {
  const others = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(t, key, receiver) {
      // __esModule: TypeScript's CommonJS output (vscode-languageclient) then uses this module, not a copy.
      if (key === '__esModule') return true;
      if (key in t || typeof key === 'symbol' || key === 'then') return Reflect.get(t, key, receiver) as unknown;
      if (!others.has(key)) others.set(key, anything(`${name}.${String(key)}`));
      return others.get(key);
    },
  });
}

const module_ = withFallback(
  Object.fromEntries(
    Object.entries(vscode).map(([k, v]) => [k, typeof v === 'object' && v !== null && k === k.toLowerCase() ? withFallback(v, k) : v]),
  ),
  'vscode',
);
loader._cache.vscode = { id: 'vscode', filename: 'vscode', loaded: true, exports: module_ };
