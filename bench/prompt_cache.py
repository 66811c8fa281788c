"""Credits of a 10-turn conversation with prompt caching on, against the same conversation with it off.

Both runs go through the real server and the fake API (which simulates Anthropic's cache: 5-minute TTL,
keyed by model and prefix, minimum cacheable length per model). The first turn attaches a source file, as
a user asking about their code would. Target: at least 50% fewer credits with caching.

Run: .venv/bin/python bench/prompt_cache.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from rawlsp import RawServer  # noqa: E402
from switchboard.fakeapi import FakeAnthropic  # noqa: E402

TURNS = 10
SOURCE = (HERE.parent / "server" / "switchboard" / "features" / "chat.py").read_text(encoding="utf-8")
PROMPTS = [
    "Walk me through how this module handles a chat request.",
    "Where does cancellation happen?",
    "How are credits charged for a cancelled turn?",
    "What happens when the routed model is overloaded?",
    "Could the retry path replay the old answer?",
    "Suggest a test for the fallback path.",
    "How would you split this file?",
    "Is there any blocking I/O on the event loop?",
    "What does the progress stream look like?",
    "Summarise the risks you found.",
]


def conversation(cache: bool, model: str = "claude-sonnet-4.5") -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as state, FakeAnthropic(host="127.0.0.1", port=0) as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_"))}
        env.update(
            SWITCHBOARD_HOME=state,
            ANTHROPIC_API_KEY="sk-bench-0000000000",
            ANTHROPIC_BASE_URL=fake.base_url,
            SWITCHBOARD_PROMPT_CACHE="1" if cache else "0",
        )
        workspace = Path(state).as_uri()
        server = RawServer(env)
        server.initialize(workspace)
        results: list[dict[str, Any]] = []
        conversation_id = None
        for index, prompt in enumerate(PROMPTS[:TURNS]):
            params: dict[str, Any] = {"workspaceUri": workspace, "prompt": prompt, "modelId": model}
            if index == 0:
                params["context"] = [{"uri": f"{workspace}/chat.py", "text": SOURCE, "languageId": "python"}]
            if conversation_id:
                params["conversationId"] = conversation_id
            server.request(index + 1, "switchboard/chat", params)
            result = server.wait_for(index + 1, timeout=60)["result"]
            conversation_id = result["conversationId"]
            results.append(result)
        server.close()
    return results


def main() -> dict[str, float]:
    cached = conversation(cache=True)
    uncached = conversation(cache=False)
    with_cache = sum(r["credits"] for r in cached)
    without = sum(r["credits"] for r in uncached)
    read = sum(r["usage"]["cacheReadInputTokens"] for r in cached)
    total_in = sum(
        r["usage"]["inputTokens"]
        + r["usage"]["cacheReadInputTokens"]
        + r["usage"]["cacheCreationInputTokens"]
        for r in cached
    )
    saving = 1 - with_cache / without
    print(
        f"prompt cache, {TURNS} turns on Sonnet 4.5   without {without:.2f} credits   "
        f"with {with_cache:.2f} credits   saving {saving:.0%} (target >= 50%)   "
        f"input read from cache {read / total_in:.0%}"
    )
    return {"credits_without_cache": without, "credits_with_cache": with_cache, "saving": saving}


if __name__ == "__main__":
    main()
