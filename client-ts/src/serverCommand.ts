// Finding the command that starts `switchboard serve` (pure parts: no `vscode` import, unit-tested).
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where the command came from, for the logs and error messages. */
  source: 'setting' | 'repo-venv' | 'managed-venv' | 'path';
}

/**
 * Split a command line into argv: whitespace separates words, single or double quotes group them,
 * a backslash escapes the next character outside single quotes.
 */
export function splitCommandLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length && /["\\$`]/.test(line[i + 1]!)) cur += line[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`Unterminated ${quote} quote in "${line}"`);
  if (inWord) out.push(cur);
  return out;
}

/** The `switchboard.server.command` setting as argv, or undefined when it is unset/empty. */
export function commandFromSetting(value: unknown): string[] | undefined {
  if (typeof value === 'string') {
    const argv = splitCommandLine(value.trim());
    return argv.length ? argv : undefined;
  }
  if (Array.isArray(value)) {
    const argv = value.filter((v): v is string => typeof v === 'string' && v.length > 0);
    return argv.length ? argv : undefined;
  }
  return undefined;
}

export const isWindows = process.platform === 'win32';

/** bin/ (or Scripts\ on Windows) of a virtual environment. */
export function venvBin(venv: string, exe: string): string {
  return isWindows ? path.join(venv, 'Scripts', `${exe}.exe`) : path.join(venv, 'bin', exe);
}

/** Find an executable on PATH (like `which`). */
export function findOnPath(exe: string, envPath: string | undefined = process.env.PATH): string | undefined {
  if (!envPath) return undefined;
  const exts = isWindows ? (process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';') : [''];
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = path.join(dir, exe + ext);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        if (fs.statSync(candidate).isFile()) return candidate;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

export interface ResolveInputs {
  setting: unknown;
  /** The extension's install folder (for the repo checkout case and the bundled wheel). */
  extensionPath: string;
  /** Where the managed venv lives (in the extension's global storage). */
  managedVenv: string;
  /** Version stamp the managed venv must carry to be reused. */
  managedStamp: string;
  envPath?: string;
  exists?: (p: string) => boolean;
  readFile?: (p: string) => string | undefined;
}

/**
 * Which server to start, in order: the setting; a development checkout's `.venv` next to the
 * extension; the managed venv when it is installed and current; `switchboard` on PATH. Undefined
 * means the managed venv has to be (re)created first.
 */
export function resolveServerCommand(input: ResolveInputs): ServerCommand | undefined {
  const exists = input.exists ?? fs.existsSync;
  const readFile =
    input.readFile ??
    ((p: string) => {
      try {
        return fs.readFileSync(p, 'utf8');
      } catch {
        return undefined;
      }
    });
  const fromSetting = commandFromSetting(input.setting);
  if (fromSetting) return { command: fromSetting[0]!, args: fromSetting.slice(1), source: 'setting' };

  const repoVenv = venvBin(path.join(input.extensionPath, '..', '.venv'), 'switchboard');
  if (exists(path.join(input.extensionPath, '..', 'pyproject.toml')) && exists(repoVenv)) {
    return { command: repoVenv, args: ['serve'], source: 'repo-venv' };
  }

  const managed = venvBin(input.managedVenv, 'switchboard');
  if (exists(managed) && readFile(path.join(input.managedVenv, 'switchboard-stamp'))?.trim() === input.managedStamp) {
    return { command: managed, args: ['serve'], source: 'managed-venv' };
  }

  const onPath = findOnPath('switchboard', input.envPath);
  if (onPath) return { command: onPath, args: ['serve'], source: 'path' };
  return undefined;
}

/** Where the managed venv installs the server from: the bundled wheel, else the repo checkout. */
export function installSource(extensionPath: string, exists: (p: string) => boolean = fs.existsSync): string | undefined {
  const wheelDir = path.join(extensionPath, 'dist', 'server');
  if (exists(wheelDir)) {
    const wheel = fs.readdirSync(wheelDir).find((f) => /^switchboard-.*\.whl$/.test(f));
    if (wheel) return path.join(wheelDir, wheel);
  }
  const repo = path.join(extensionPath, '..');
  if (exists(path.join(repo, 'pyproject.toml')) && exists(path.join(repo, 'server', 'switchboard'))) return repo;
  return undefined;
}

/** Parse `python --version` output ("Python 3.11.7") and check it is at least 3.11. */
export function pythonVersionOk(output: string): { ok: boolean; version: string | undefined } {
  const m = /Python (\d+)\.(\d+)(?:\.(\d+))?/.exec(output);
  if (!m) return { ok: false, version: undefined };
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return { ok: major > 3 || (major === 3 && minor >= 11), version: `${m[1]}.${m[2]}${m[3] ? `.${m[3]}` : ''}` };
}

/** Redact anything that looks like a key or token before it reaches a log. */
export function redactSecrets(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 8) out = out.split(s).join('‹redacted›');
  return out.replace(/sk-ant-[A-Za-z0-9_-]{6,}/g, 'sk-ant-‹redacted›');
}
