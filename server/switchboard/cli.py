"""The `switchboard` command: serve, chat, mock-api, dev-issuer, schema, gateway."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from switchboard import __version__

if TYPE_CHECKING:
    from datetime import date


def _serve(_args: argparse.Namespace) -> int:
    return serve_stdio()


def serve_stdio(today: Callable[[], date] | None = None) -> int:
    """The language server on stdin and stdout; `today` replaces the calendar (tests of dated behaviour)."""
    from switchboard import logs
    from switchboard.app import create_server
    from switchboard.config import Settings
    from switchboard.features.host import utc_today

    settings = Settings.from_env()
    logs.configure(settings.log_dir)
    protocol_out = sys.stdout.buffer
    # Only protocol frames may reach stdout: whatever else prints (a library, a stray print) goes to stderr.
    sys.stdout = sys.stderr
    server = create_server(settings, today or utc_today)
    server.start_io(stdin=sys.stdin.buffer, stdout=protocol_out)
    return 0


def _chat(args: argparse.Namespace) -> int:
    from switchboard.terminal import run_terminal_chat

    return run_terminal_chat(args)


def _mock_api(args: argparse.Namespace) -> int:
    from switchboard.fakeapi.cli import main as fake_main

    argv = ["--host", args.host, "--port", str(args.port)]
    if args.api_key:
        argv += ["--api-key", args.api_key]
    return fake_main(argv)


def _dev_issuer(args: argparse.Namespace) -> int:
    from pathlib import Path

    from switchboard.config import Settings
    from switchboard.plans.dev_issuer import main as issuer_main

    return issuer_main(args.issuer_args, Path(Settings.from_env().state_dir))


def _gateway(args: argparse.Namespace) -> int:
    # Imported only here: `switchboard serve` must never load the gateway (its start-up time matters).
    from switchboard.gateway.cli import main as gateway_main

    return gateway_main(args.gateway_args)


def _schema(args: argparse.Namespace) -> int:
    from switchboard.protocol.schema import render

    text = render()
    if args.check:
        with open(args.check, encoding="utf-8") as current:
            if current.read() != text:
                print(f"{args.check} is stale: run `switchboard schema --out {args.check}`", file=sys.stderr)
                return 1
        return 0
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="Chat with Claude models from any editor: a language server, a terminal client, tools.",
    )
    # Editors' health checks (Neovim's :checkhealth switchboard) read the version without starting a server.
    parser.add_argument("--version", action="version", version=f"switchboard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the language server on stdio (what an editor starts)")
    # vscode-languageclient and others append --stdio; stdio is the only transport, so it is accepted as is.
    serve.add_argument("--stdio", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(run=_serve)

    chat = sub.add_parser("chat", help="chat from the terminal through the language server")
    chat.add_argument("prompt", nargs="*", help="a one-shot prompt (omit for the interactive REPL)")
    chat.add_argument("--offline", action="store_true", help="use the bundled fake API: simulated answers")
    chat.add_argument("--model", help="model for this session (auto, claude-haiku-4.5, ...)")
    chat.add_argument(
        "--workspace", default=os.getcwd(), help="workspace folder (default: current directory)"
    )
    chat.add_argument("--conversation", help="continue this conversation id")
    chat.add_argument(
        "--gateway",
        metavar="URL",
        help="Switchboard Cloud's URL, to sign in with /signin (default: $SWITCHBOARD_GATEWAY_URL)",
    )
    chat.set_defaults(run=_chat)

    mock = sub.add_parser("mock-api", help="run a local fake of the Anthropic Messages API on 127.0.0.1")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, default=8765)
    mock.add_argument("--api-key", help="accept only this key (default: any non-empty key)")
    mock.set_defaults(run=_mock_api)

    issuer = sub.add_parser("dev-issuer", help="a local entitlement issuer for development and tests")
    issuer.add_argument("issuer_args", nargs=argparse.REMAINDER, help="init | token --plan PLAN | ...")
    issuer.set_defaults(run=_dev_issuer)

    gateway = sub.add_parser("gateway", help="Switchboard Cloud, the hosted gateway (see docs/gateway.md)")
    gateway.add_argument(
        "gateway_args", nargs=argparse.REMAINDER, help="serve | migrate | accounts | tokens | keys"
    )
    gateway.set_defaults(run=_gateway)

    schema = sub.add_parser("schema", help="print the protocol's JSON Schema")
    schema.add_argument("--out", help="write to this file instead of stdout")
    schema.add_argument("--check", metavar="FILE", help="exit 1 if FILE differs from the current schema")
    schema.set_defaults(run=_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
