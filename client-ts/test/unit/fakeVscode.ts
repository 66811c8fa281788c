// A stand-in for the `vscode` module, enough for src/account.ts: registered as `vscode` for require(), so
// the controller's sequencing (secrets, resume, sign-out) can be tested under node --test. Import it first.
import Module from 'node:module';

export interface Shown {
  kind: 'info' | 'warning';
  message: string;
}

export const fake = {
  shown: [] as Shown[],
  opened: [] as string[],
  clipboard: [] as string[],
  commands: [] as string[],
  /** What the next modal dialog answers (the sign-in code's). */
  dialogAnswer: undefined as string | undefined,
  reset(): void {
    fake.shown.length = 0;
    fake.opened.length = 0;
    fake.clipboard.length = 0;
    fake.commands.length = 0;
    fake.dialogAnswer = undefined;
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

const vscode = {
  CancellationTokenSource,
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
    withProgress<T>(_options: unknown, task: (progress: { report(v: unknown): void }, token: unknown) => Promise<T>): Promise<T> {
      return task({ report: () => undefined }, new CancellationTokenSource().token);
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
loader._cache.vscode = { id: 'vscode', filename: 'vscode', loaded: true, exports: vscode };
