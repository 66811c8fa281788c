"""What the router reads of the attached context: how many files, how much text, which languages, and
whether any of it is code or configuration. Only counts and sizes, plus a 2 KB look at a few files: 200 KB
of context costs microseconds. The escalation model never escalates on these alone (`escalation.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# (uri, text, language_id) as the chat request carries them.
ContextEntry = tuple[str, str, str | None]

CODE_LANGUAGES = frozenset(
    ["c", "cpp", "csharp", "css", "go", "html", "java", "javascript", "javascriptreact", "kotlin", "lua",
     "objective-c", "php", "python", "r", "ruby", "rust", "scala", "shellscript", "sql", "swift",
     "typescript", "typescriptreact", "vue", "dart", "elixir", "haskell", "ocaml", "perl", "zig"]
)  # fmt: skip
# Configuration is code for what an ask can demand of it (a security review of a workflow, a manifest's RBAC).
CONFIG_LANGUAGES = frozenset(
    ["yaml", "dockerfile", "terraform", "hcl", "nginx", "json", "jsonc", "toml", "ini", "properties", "xml",
     "makefile", "dockercompose", "helm", "bicep", "caddyfile", "apacheconf", "systemd"]
)  # fmt: skip
# Substrings that mark code or configuration in text without a language id (plain `in` checks: cheap).
CODE_MARKERS = (
    "def ", "```", "=>", "){", ") {", ";\n", "};", "#include", "function ", "function(", "import ",
    "return ", "self.", "this.", "console.", "print(", "fn ", "const ", "var ", "let ", "</",
    "apiVersion:", "FROM ", "resource \"", "server {", "location ",
)  # fmt: skip
CHARS_PER_TOKEN = 4
_FILES_READ_FOR_CODE = 5
_CHARS_READ_FOR_CODE = 2_000


@dataclass(frozen=True)
class ContextSummary:
    files: int = 0
    chars: int = 0
    languages: tuple[str, ...] = ()
    has_code: bool = False  # code or configuration

    @property
    def tokens(self) -> int:
        return self.chars // CHARS_PER_TOKEN


def looks_like_code(text: str) -> bool:
    return any(marker in text for marker in CODE_MARKERS)


def summarize_context(context: Sequence[ContextEntry]) -> ContextSummary:
    """Counts and sizes only; reads at most a few KB of a few files to tell code from prose."""
    if not context:
        return ContextSummary()
    languages = sorted({lang for _, _, lang in context if lang})
    has_code = any(lang in CODE_LANGUAGES or lang in CONFIG_LANGUAGES for lang in languages) or any(
        looks_like_code(text[:_CHARS_READ_FOR_CODE]) for _, text, _ in context[:_FILES_READ_FOR_CODE]
    )
    return ContextSummary(
        files=len({uri for uri, _, _ in context}),
        chars=sum(len(text) for _, text, _ in context),
        languages=tuple(languages),
        has_code=has_code,
    )
