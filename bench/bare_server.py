"""The floor for cold start: a pygls server that does nothing but answer `initialize`."""

from pygls.lsp.server import LanguageServer

if __name__ == "__main__":
    LanguageServer("bare", "0").start_io()
