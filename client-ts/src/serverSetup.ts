// Creating the managed virtual environment the server runs from when nothing else is configured.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { installSource, pythonVersionOk, venvBin, type ServerCommand } from './serverCommand';

export class SetupError extends Error {
  constructor(
    message: string,
    readonly hint: 'python' | 'install' | 'source' | 'cancelled',
  ) {
    super(message);
  }
}

function run(
  command: string,
  args: string[],
  log: vscode.LogOutputChannel,
  token: vscode.CancellationToken,
  onLine?: (line: string) => void,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    log.info(`$ ${command} ${args.join(' ')}`);
    const child = spawn(command, args, { env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' } });
    let output = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      for (const line of text.split(/\r?\n/)) {
        if (line.trim()) {
          log.info(line);
          onLine?.(line);
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const cancel = token.onCancellationRequested(() => child.kill());
    child.on('error', (err) => {
      cancel.dispose();
      reject(err);
    });
    child.on('close', (code) => {
      cancel.dispose();
      resolve({ code: code ?? -1, output });
    });
  });
}

/**
 * Create (or re-create) the managed venv in the extension's global storage and install the server
 * into it, with a notification and progress while it runs.
 */
export async function createManagedVenv(opts: {
  python: string;
  extensionPath: string;
  venv: string;
  stamp: string;
  log: vscode.LogOutputChannel;
}): Promise<ServerCommand> {
  const { python, extensionPath, venv, stamp, log } = opts;
  const source = installSource(extensionPath);
  if (!source) {
    throw new SetupError(
      'This build of the extension has no bundled server. Install Switchboard (`pip install switchboard`) or set `switchboard.server.command`.',
      'source',
    );
  }
  return vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: 'Switchboard: installing the language server',
      cancellable: true,
    },
    async (progress, token) => {
      progress.report({ message: `checking ${python}…` });
      let version;
      try {
        version = await run(python, ['--version'], log, token);
      } catch (err) {
        throw new SetupError(`Could not run "${python}" (${(err as Error).message}). Switchboard needs Python 3.11 or newer.`, 'python');
      }
      const v = pythonVersionOk(version.output);
      if (!v.ok) {
        throw new SetupError(
          `"${python}" is Python ${v.version ?? 'unknown'}; Switchboard needs Python 3.11 or newer. Set switchboard.server.python.`,
          'python',
        );
      }
      progress.report({ message: `creating a virtual environment (Python ${v.version})…`, increment: 10 });
      fs.rmSync(venv, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(venv), { recursive: true });
      const created = await run(python, ['-m', 'venv', venv], log, token);
      if (token.isCancellationRequested) throw new SetupError('Installation cancelled.', 'cancelled');
      if (created.code !== 0) {
        throw new SetupError(`Creating the virtual environment failed (exit ${created.code}). On Debian/Ubuntu install python3-venv.`, 'install');
      }
      progress.report({ message: 'installing switchboard and its dependencies…', increment: 20 });
      let steps = 0;
      const installed = await run(
        venvBin(venv, 'python'),
        ['-m', 'pip', 'install', '--upgrade', source],
        log,
        token,
        (line) => {
          const m = /^(Collecting|Downloading|Installing collected packages|Successfully installed)\s*(\S*)/.exec(line);
          if (m && steps < 60) {
            steps++;
            progress.report({ message: `${m[1]!.toLowerCase()} ${m[2] ?? ''}`.trim(), increment: 1 });
          }
        },
      );
      if (token.isCancellationRequested) throw new SetupError('Installation cancelled.', 'cancelled');
      if (installed.code !== 0) throw new SetupError(`pip install failed (exit ${installed.code}); see the Switchboard output.`, 'install');
      fs.writeFileSync(path.join(venv, 'switchboard-stamp'), stamp);
      progress.report({ message: 'done', increment: 100 });
      log.info(`managed server installed in ${venv}`);
      return { command: venvBin(venv, 'switchboard'), args: ['serve'], source: 'managed-venv' as const };
    },
  );
}
