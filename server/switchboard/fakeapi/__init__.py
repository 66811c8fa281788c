"""A fake Anthropic Messages API on 127.0.0.1 that the real `anthropic` SDK works against unchanged.

Used by the test-suite, the terminal client's `--offline` mode, benchmarks and the editor end-to-end
tests instead of api.anthropic.com. Answers are simulated and deterministic; faults can be injected
(from Python, over `/_fake/` HTTP, or with `[[fake:...]]` directives in the prompt).

    with FakeAnthropic() as api:
        client = anthropic.Anthropic(base_url=api.base_url, api_key="test")
"""

from switchboard.fakeapi.cache import CacheUsage, PromptCache
from switchboard.fakeapi.faults import Fault, FaultKind
from switchboard.fakeapi.records import RecordedRequest
from switchboard.fakeapi.server import FakeAnthropic
from switchboard.fakeapi.signatures import sign_thinking
from switchboard.fakeapi.tokens import count_tokens

__all__ = [
    "CacheUsage",
    "FakeAnthropic",
    "Fault",
    "FaultKind",
    "PromptCache",
    "RecordedRequest",
    "count_tokens",
    "sign_thinking",
]
