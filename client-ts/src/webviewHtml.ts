// The HTML shell of a webview: a strict Content-Security-Policy with a per-load nonce, and only the
// extension's own bundled scripts, styles and fonts (no remote resources).
import * as vscode from 'vscode';
import { contentSecurityPolicy, nonce } from './csp';

export function webviewHtml(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  opts: { title: string; script: string; styles: string[]; bodyClass?: string },
): string {
  const n = nonce();
  const asset = (file: string) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', file)).toString();
  const styles = ['codicon.css', ...opts.styles].map((s) => `<link rel="stylesheet" nonce="${n}" href="${asset(s)}">`).join('\n    ');
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(webview.cspSource, n)}">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>${opts.title}</title>
    ${styles}
  </head>
  <body class="${opts.bodyClass ?? ''}">
    <div id="app" role="application" aria-label="${opts.title}"></div>
    <script nonce="${n}" src="${asset(opts.script)}"></script>
  </body>
</html>`;
}
