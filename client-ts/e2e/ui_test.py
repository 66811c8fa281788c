"""UI tests: drive the real VS Code workbench (code-server) with the installed Switchboard .vsix.

Each step is one user-visible behaviour; a screenshot is saved after each (NN-name.png in $SHOTS) and on
failure (NN-name-FAILED.png). Steps build on each other, so the run stops at the first failure. The last
line is "N passed, N failed".
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import traceback
import urllib.request
from collections.abc import Callable

from playwright.sync_api import Frame, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

URL = os.environ["CS_URL"]
FAKE_URL = os.environ["FAKE_URL"]
SHOTS = os.environ.get("SHOTS", "shots")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--force-device-scale-factor=1",
]
API_KEY = "sk-ant-e2e-ui-key-0123456789"
CREDITS = re.compile(r"· ([\d,.]+) credits?")
CLOUD = json.loads(os.environ.get("CLOUD_JSON") or "{}")  # tests/hosted_stack.py: the gateway and its account


def fake_api(path: str, body: object | None = None) -> object:
    """The fake Anthropic API's control endpoint (faults, reset)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(FAKE_URL + path, data=data, method="POST", headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


class Ctx:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.index = 0
        self.credits_before: float | None = None

    # --- workbench helpers ------------------------------------------------------------------------------
    def status(self):
        return self.page.locator(".statusbar-item", has_text=re.compile(r"credits?$|Switchboard")).first

    def status_credits(self) -> float:
        text = self.status().inner_text()
        m = CREDITS.search(text)
        assert m, f"no credits in status bar text {text!r}"
        return float(m.group(1).replace(",", ""))

    def palette(self, command: str) -> None:
        page = self.page
        # F1 can be swallowed (seen once in CI, with a status-bar hover open): press it again if the
        # palette does not open.
        box = page.locator(".quick-input-widget input")
        for _ in range(3):
            page.keyboard.press("F1")
            try:
                expect(box).to_be_visible(timeout=5_000)
                break
            except AssertionError:
                page.keyboard.press("Escape")
        expect(box).to_be_visible(timeout=5_000)
        box.fill(">" + command)
        expect(page.locator(".quick-input-list .monaco-list-row", has_text=command).first).to_be_visible(timeout=15_000)
        page.keyboard.press("Enter")

    def toast(self, text: str | re.Pattern[str]):
        return self.page.locator(".notification-toast .notification-list-item-message", has_text=text).first

    def clear_toasts(self) -> None:
        self.page.keyboard.press("Escape")
        for btn in self.page.locator(".notification-toast .codicon-notifications-clear").all():
            try:
                btn.click(timeout=1000)
            except Exception:
                pass

    def frame_with(self, selector: str, timeout: float = 40) -> Frame:
        """The webview frame (innermost iframe) that contains `selector`."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for frame in self.page.frames:
                try:
                    if frame.locator(selector).count() > 0:
                        return frame
                except Exception:
                    continue
            self.page.wait_for_timeout(200)
        raise AssertionError(f"no webview frame with {selector}")

    def widen_side_bar(self, width: int = 500) -> None:
        """Drag the secondary side bar's sash so the chat is wider (users do the same)."""
        box = self.page.locator(".part.auxiliarybar").bounding_box()
        if not box or box["width"] >= width:
            return
        x, y = box["x"] - 1, box["y"] + box["height"] / 2
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        self.page.mouse.move(x - (width - box["width"]), y, steps=8)
        self.page.mouse.up()
        self.page.wait_for_timeout(300)

    def chat(self) -> Frame:
        return self.frame_with("#prompt")

    def last_answer(self, chat: Frame):
        return chat.locator(".msg.assistant").last


STEPS: list[tuple[str, Callable[[Ctx], None]]] = []


def step(name: str):
    def register(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        STEPS.append((name, fn))
        return fn

    return register


@step("workbench loads and the status bar shows the model and the credits left")
def _statusbar(c: Ctx) -> None:
    c.page.goto(URL)
    expect(c.page.locator(".monaco-workbench")).to_be_visible(timeout=60_000)
    expect(c.page.locator(".statusbar-item", has_text=re.compile(r"Auto · [\d,.]+ credits$"))).to_be_visible(timeout=60_000)
    c.credits_before = c.status_credits()
    assert c.credits_before == 50, f"a new Free account has 50 credits, got {c.credits_before}"


@step("Ctrl+L opens and focuses the chat panel")
def _open_chat(c: Ctx) -> None:
    page = c.page
    page.keyboard.press("Control+P")
    expect(page.locator(".quick-input-widget input")).to_be_visible(timeout=15_000)
    page.keyboard.type("fib.py")
    expect(page.locator(".quick-input-list .monaco-list-row", has_text="fib.py").first).to_be_visible(timeout=15_000)
    page.keyboard.press("Enter")
    expect(page.locator(".monaco-editor .view-lines", has_text="def fib")).to_be_visible(timeout=15_000)
    page.keyboard.press("Control+L")
    chat = c.chat()
    expect(chat.locator(".welcome h2")).to_have_text("Ask Claude about your code", timeout=30_000)
    c.widen_side_bar()
    expect(chat.locator(".welcome-plan")).to_contain_text("Free plan · 50 credits left")
    expect(chat.locator("#model-btn")).to_contain_text("Auto")
    deadline = time.time() + 10
    while chat.evaluate("document.activeElement && document.activeElement.id") != "prompt":
        assert time.time() < deadline, "the message box is not focused"
        page.wait_for_timeout(100)


@step("without an API key, the chat says what to do (inline, with a Set API key button)")
def _no_key(c: Ctx) -> None:
    chat = c.chat()
    chat.locator("#prompt").fill("Explain this code and list the steps")
    chat.locator("#prompt").press("Enter")
    card = chat.locator(".error-card")
    expect(card).to_be_visible(timeout=20_000)
    if CLOUD:  # a gateway is configured (switchboard.gateway.url): signing in is offered first
        expect(card).to_contain_text("Sign in or set an API key")
        expect(card.locator(".error-actions button").first).to_contain_text("Sign in")
    else:
        expect(card).to_contain_text("An Anthropic API key is needed")
    expect(card.locator("button", has_text="Set API key")).to_be_visible()


@step("Set API key (from the inline error) stores the key and the message is ready to send again")
def _set_key(c: Ctx) -> None:
    chat = c.chat()
    chat.locator(".error-card button", has_text="Set API key").click()
    box = c.page.locator(".quick-input-widget input")
    expect(box).to_be_visible(timeout=15_000)
    expect(c.page.locator(".quick-input-widget")).to_contain_text("Anthropic API key")
    assert box.get_attribute("type") == "password", "the key is typed into a password box"
    box.fill(API_KEY)
    c.page.keyboard.press("Enter")
    expect(c.toast("API key saved")).to_be_visible(timeout=30_000)
    expect(chat.locator(".error-card")).to_have_count(0, timeout=30_000)
    expect(chat.locator("#prompt")).to_have_value("Explain this code and list the steps", timeout=10_000)
    c.clear_toasts()


@step("the current selection becomes a context chip")
def _chip(c: Ctx) -> None:
    page = c.page
    page.locator(".monaco-editor .view-lines").first.click()
    page.keyboard.press("Control+A")
    chat = c.chat()
    chat.locator("#add-selection").click()
    expect(chat.locator(".chips .chip")).to_have_count(1, timeout=10_000)
    expect(chat.locator(".chips .chip")).to_contain_text("fib.py:1-10")
    expect(chat.locator("#estimate")).to_contain_text(re.compile(r"≈ [\d.]+ credits?"), timeout=15_000)
    expect(chat.locator("#context-label")).to_contain_text("/ 200k")


@step("send a message and see the answer stream in as Markdown")
def _send(c: Ctx) -> None:
    fake_api("/_fake/faults", {"kind": "slow", "seconds": 0.1, "count": 2})  # a visible stream
    chat = c.chat()
    chat.locator("#prompt").press("Enter")
    answer = chat.locator(".msg.assistant.streaming")
    expect(answer).to_have_count(1, timeout=20_000)
    expect(chat.locator("#stop")).to_be_visible()
    body = answer.locator(".msg-body")
    expect(body).to_contain_text("Simulated reply", timeout=20_000)
    first = len(body.inner_text())
    c.page.wait_for_timeout(600)
    if chat.locator(".msg.assistant.streaming").count():
        assert len(chat.locator(".msg.assistant.streaming .msg-body").inner_text()) > first, "the answer grows while streaming"
    expect(chat.locator(".msg.assistant.streaming")).to_have_count(0, timeout=60_000)
    done = c.last_answer(chat)
    expect(done.locator(".code-block pre code.language-python")).to_be_visible()
    expect(done.locator(".code-block .code-btn", has_text="Copy")).to_be_visible()
    expect(done.locator(".code-block .code-btn", has_text="Insert")).to_be_visible()
    expect(done.locator("li")).to_have_count(3)
    expect(done.locator(".answered-by")).to_contain_text(re.compile(r"Auto → Claude"))
    assert done.locator(".answered-by").get_attribute("title"), "the router's reason is on hover"
    expect(done.locator(".credits")).to_contain_text(re.compile(r"[\d.]+ credits?"))
    # own key: what the answer cost at list price; it stays after the transcript reloads from the server
    expect(done.locator(".cost-usd")).to_have_text(re.compile(r"^\$\d+\.\d+$"))
    expect(chat.locator(".msg.user .msg-context .chip")).to_contain_text("fib.py:1-10")
    expect(chat.locator("#send")).to_be_visible()
    chat.locator("#prompt").fill("Now write a unit test for it")
    expect(chat.locator("#estimate")).to_contain_text(re.compile(r"≈ [\d.]+ credits?"), timeout=15_000)
    c.page.mouse.move(640, 620)  # no hover highlight in the picture
    c.page.wait_for_timeout(200)
    c.page.screenshot(path=f"{SHOTS}/chat-panel.png")
    chat.locator("#prompt").fill("")


@step("the status bar credits drop after the answer")
def _credits_drop(c: Ctx) -> None:
    before = c.credits_before or 50
    deadline = time.time() + 15
    while c.status_credits() >= before:
        assert time.time() < deadline, f"status bar credits did not drop below {before}"
        c.page.wait_for_timeout(200)
    c.credits_before = c.status_credits()
    chat = c.chat()
    expect(chat.locator("#credits-left")).to_contain_text(f"{c.credits_before:g} credits left")


# Where the "$0.0123 a typical request (53% of always-Sonnet)" run of text ends on screen, against the right
# edge of the first clipping box around it (the quick pick ellipsizes overflowing text).
_DOLLAR_FIGURE_FITS_JS = """(row) => {
  const walker = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const at = n.data.indexOf('a typical request');
    if (at < 0) continue;
    const range = document.createRange();
    range.setStart(n, n.data.lastIndexOf('$', at));
    range.setEnd(n, n.data.indexOf(')', at) + 1);
    let box = n.parentElement;
    while (box && box !== row && getComputedStyle(box).overflow === 'visible') box = box.parentElement;
    return {figureRight: range.getBoundingClientRect().right, boxRight: (box ?? row).getBoundingClientRect().right};
  }
  return null;
}"""


@step("Switchboard: Select Model from the palette lists every model with its multiplier")
def _quickpick(c: Ctx) -> None:
    c.palette("Switchboard: Select Model")
    qp = c.page.locator(".quick-input-widget")
    expect(qp.locator(".monaco-list-row", has_text="Claude Haiku 4.5 · 0.4x")).to_be_visible(timeout=15_000)
    expect(qp.locator(".monaco-list-row", has_text="Auto · 1x").first).to_contain_text("current")
    # Auto's entry is the server's: the allow-list and the expected Sonnet share at the preference
    auto = qp.locator(".monaco-list-row", has_text="Auto · 1x").first
    # The quick pick cuts its detail line with an ellipsis: the dollar figure must be inside what shows.
    shown = auto.evaluate(_DOLLAR_FIGURE_FITS_JS)
    assert shown and shown["figureRight"] <= shown["boxRight"] + 1, shown
    expect(auto).to_contain_text(re.compile(r"~\d+% Sonnet · ~\$\d+\.\d{4} a typical request \(\d+% of always-Sonnet\)"))
    expect(auto).to_contain_text("Haiku 4.5, Sonnet 4.5, Sonnet 4.0 · balanced")
    opus_row = qp.locator(".monaco-list-row", has_text="Claude Opus 4.5 · 2.2x")
    expect(opus_row).to_contain_text("needs Pro, Pro+ or Power")
    expect(opus_row).to_contain_text(re.compile(r"Anthropic retire[sd] it on 2027-01-22"))  # either side of the day


@step("choosing a model in the palette changes the status bar and the chat's picker")
def _switch(c: Ctx) -> None:
    c.page.keyboard.type("Haiku")
    expect(c.page.locator(".quick-input-list .monaco-list-row.focused", has_text="Claude Haiku 4.5")).to_be_visible(timeout=10_000)
    c.page.keyboard.press("Enter")
    expect(c.page.locator(".statusbar-item", has_text=re.compile(r"Claude Haiku 4\.5 · [\d,.]+ credits$"))).to_be_visible(timeout=15_000)
    expect(c.chat().locator("#model-btn")).to_contain_text("Claude Haiku 4.5", timeout=10_000)


@step("a locked model is refused with its reason, and the selection stays")
def _locked(c: Ctx) -> None:
    c.palette("Switchboard: Select Model")
    expect(c.page.locator(".quick-input-widget .monaco-list-row", has_text="Claude Opus 4.5")).to_be_visible(timeout=15_000)
    c.page.keyboard.type("Opus")
    # Enter before the filter has moved the focus would pick whatever row was focused (seen once in CI)
    expect(c.page.locator(".quick-input-list .monaco-list-row.focused", has_text="Claude Opus 4.5")).to_be_visible(timeout=10_000)
    c.page.keyboard.press("Enter")
    toast = c.toast(re.compile(r"Claude Opus 4\.5 needs Pro, Pro\+ or Power"))
    expect(toast).to_be_visible(timeout=15_000)
    expect(c.page.locator(".notification-toast", has_text="Claude Opus 4.5").locator(".monaco-button", has_text="Upgrade")).to_be_visible()
    expect(c.page.locator(".statusbar-item", has_text=re.compile(r"Claude Haiku 4\.5 · "))).to_be_visible()


@step("an answer from Claude Haiku 4.5 can be retried with a stronger model (both answers kept)")
def _retry(c: Ctx) -> None:
    c.clear_toasts()
    chat = c.chat()
    answers = chat.locator(".msg.assistant").count()
    chat.locator("#prompt").fill("What does range(10) return in Python?")
    chat.locator("#prompt").press("Enter")
    expect(chat.locator(".msg.assistant:not(.streaming)")).to_have_count(answers + 1, timeout=60_000)
    answer = c.last_answer(chat)
    expect(answer.locator(".answered-by")).to_have_text("Claude Haiku 4.5", timeout=20_000)
    assert chat.locator(".retry-btn").count() == 1, "only the latest answer offers a retry"
    count = chat.locator(".msg.assistant").count()
    answer.locator(".retry-btn").click()
    expect(chat.locator(".msg.assistant:not(.streaming)")).to_have_count(count + 1, timeout=60_000)
    retried = c.last_answer(chat)
    expect(retried.locator(".tag", has_text="retry")).to_be_visible(timeout=20_000)
    expect(retried.locator(".answered-by")).not_to_have_text("Claude Haiku 4.5")
    expect(retried.locator(".answered-by")).to_contain_text("Claude Sonnet")


@step("thumbs up/down on an answer: reachable by keyboard, aria-pressed, stored and shown again after a reload")
def _thumbs(c: Ctx) -> None:
    chat = c.chat()
    answer = c.last_answer(chat)
    expect(answer.locator('[data-rate="up"]')).to_have_attribute("aria-pressed", "false")
    expect(answer.locator(".credits")).to_have_text(re.compile(r"^[\d.]+ credits?$"))
    expect(answer.locator(".cost-usd")).to_have_text(re.compile(r"^\$\d+\.\d+$"))  # own key: the list price
    answer.locator(".answered-by").focus()
    c.page.keyboard.press("Tab")
    assert chat.evaluate("document.activeElement.dataset.rate") == "up", "Tab reaches the thumbs"
    c.page.keyboard.press("Space")
    expect(c.last_answer(chat).locator('[data-rate="up"]')).to_have_attribute("aria-pressed", "true", timeout=10_000)
    assert chat.evaluate("document.activeElement.dataset.rate") == "up", "the focus stays on the button"
    c.page.keyboard.press("Tab")
    c.page.keyboard.press("Enter")
    last = c.last_answer(chat)
    expect(last.locator('[data-rate="down"]')).to_have_attribute("aria-pressed", "true", timeout=10_000)
    expect(last.locator('[data-rate="up"]')).to_have_attribute("aria-pressed", "false")
    # reload the conversation from the server: the rating comes back from the stored turn
    chat.locator("#history-btn").click()
    chat.locator(".history-item").first.click()
    expect(chat.locator("#transcript")).to_be_visible()
    expect(c.last_answer(chat).locator('[data-rate="down"]')).to_have_attribute("aria-pressed", "true", timeout=10_000)


@step("the chat's model dropdown shows multipliers, Auto recommended and locked models greyed with the reason")
def _dropdown(c: Ctx) -> None:
    c.clear_toasts()
    chat = c.chat()
    chat.locator("#model-btn").click()
    options = chat.locator("#model-list [role=option]")
    expect(options).to_have_count(5, timeout=10_000)
    expect(options.first).to_contain_text("Auto")
    expect(options.first).to_contain_text("Recommended")
    expect(chat.locator("#model-opt-claude-haiku-4\\.5")).to_have_attribute("aria-selected", "true")
    opus = chat.locator("#model-opt-claude-opus-4\\.5")
    expect(opus).to_have_class(re.compile(r"locked"))
    expect(opus).to_have_attribute("aria-disabled", "true")
    expect(opus).to_contain_text("needs Pro, Pro+ or Power")
    expect(opus).to_contain_text("2.2x")
    expect(opus.locator(".opt-retires")).to_have_text(re.compile(r"^Anthropic retire[sd] it on 2027-01-22"))
    expect(chat.locator("#model-opt-claude-haiku-4\\.5 .opt-retires")).to_have_count(0)


@step("picking Auto in the dropdown applies to the next message and updates the status bar")
def _dropdown_pick(c: Ctx) -> None:
    chat = c.chat()
    chat.locator("#model-opt-auto").click()
    expect(chat.locator("#model-list")).to_be_hidden()
    expect(c.page.locator(".statusbar-item", has_text=re.compile(r"Auto · [\d,.]+ credits$"))).to_be_visible(timeout=15_000)
    expect(chat.locator("#model-btn")).to_contain_text("Auto")
    expect(chat.locator(".msg.assistant")).to_have_count(3, timeout=5_000)  # the conversation stays


@step("the Stop button cancels a streaming answer")
def _stop(c: Ctx) -> None:
    chat = c.chat()
    chat.locator("#prompt").fill("Tell me a long story [[fake:slow=0.3 words=800]]")
    chat.locator("#prompt").press("Enter")
    streaming = chat.locator(".msg.assistant.streaming .msg-body")
    expect(streaming).to_contain_text("Simulated reply", timeout=30_000)
    t0 = time.time()
    chat.locator("#stop").click()
    expect(chat.locator(".msg.assistant.streaming")).to_have_count(0, timeout=10_000)
    assert time.time() - t0 < 8, "the answer stopped promptly"
    last = c.last_answer(chat)
    expect(last.locator(".tag", has_text="Stopped")).to_be_visible(timeout=10_000)
    expect(chat.locator("#send")).to_be_visible()


@step("Escape stops a streaming answer too")
def _escape(c: Ctx) -> None:
    chat = c.chat()
    chat.locator("#prompt").fill("Another long story [[fake:slow=0.3 words=800]]")
    chat.locator("#prompt").press("Enter")
    expect(chat.locator(".msg.assistant.streaming .msg-body")).to_contain_text("Simulated reply", timeout=30_000)
    chat.locator("#prompt").press("Escape")
    expect(chat.locator(".msg.assistant.streaming")).to_have_count(0, timeout=10_000)
    expect(c.last_answer(chat).locator(".tag", has_text="Stopped")).to_be_visible(timeout=10_000)


@step("an Anthropic API failure shows inline with Retry, and Retry recovers")
def _upstream(c: Ctx) -> None:
    fake_api("/_fake/faults", {"kind": "status", "status": 529, "count": 20})
    chat = c.chat()
    answers = chat.locator(".msg.assistant").count()
    chat.locator("#prompt").fill("Summarise the file in one sentence")
    chat.locator("#prompt").press("Enter")
    card = chat.locator(".error-card")
    expect(card).to_be_visible(timeout=60_000)
    expect(card).to_contain_text("Anthropic API error (529)")
    expect(card).to_have_attribute("data-code", "1003")
    c.page.wait_for_timeout(300)
    c.page.screenshot(path=f"{SHOTS}/{c.index:02d}a-upstream-error.png")
    fake_api("/_fake/reset")
    card.locator("button", has_text="Retry").click()
    expect(chat.locator(".error-card")).to_have_count(0, timeout=10_000)
    expect(chat.locator(".msg.assistant:not(.streaming)")).to_have_count(answers + 1, timeout=60_000)
    expect(c.last_answer(chat).locator(".msg-body")).to_contain_text("Summarise the file")
    assert chat.locator(".msg.user", has_text="Summarise the file").count() == 1, "the prompt is not duplicated"


@step("the history lists this workspace's conversations")
def _history(c: Ctx) -> None:
    chat = c.chat()
    chat.locator("#history-btn").click()
    items = chat.locator(".history-item")
    expect(items.first).to_be_visible(timeout=10_000)
    expect(items.first).to_contain_text("Explain this code")
    expect(items.first).to_have_class(re.compile(r"current"))
    expect(items.first.locator(".history-meta")).to_contain_text("messages")
    c.page.wait_for_timeout(300)
    c.page.screenshot(path=f"{SHOTS}/{c.index:02d}a-history-list.png")
    items.first.click()
    expect(chat.locator("#transcript")).to_be_visible()


@step("clicking the status bar opens the usage view: credits by day and totals per model")
def _usage(c: Ctx) -> None:
    c.status().click()
    usage = c.frame_with(".usage h1")
    expect(usage.locator("h1")).to_have_text("Switchboard usage", timeout=15_000)
    expect(usage.locator(".chart")).to_be_visible()
    assert usage.locator(".chart rect.bar").count() >= 1, "today's bar is drawn"
    expect(usage.locator(".by-model tbody tr").first).to_be_visible()
    expect(usage.locator("#remaining")).to_have_text(f"{c.status_credits():g}")
    expect(usage.locator("#auto-for-you")).to_contain_text(re.compile(r"Auto for you: \d+% Sonnet this month"))


@step("Switchboard: Enter an Entitlement Token… switches to the plan and unlocks its models")
def _sign_in(c: Ctx) -> None:
    page = c.page
    page.keyboard.press("Control+W")  # close the usage view
    c.palette("Switchboard: Enter an Entitlement Token…")
    box = page.locator(".quick-input-widget input")
    expect(box).to_be_visible(timeout=15_000)
    box.fill(os.environ["DEV_TOKEN"])
    page.keyboard.press("Enter")
    expect(c.toast(re.compile(r"signed in as .* Pro plan"))).to_be_visible(timeout=20_000)
    expect(page.locator(".statusbar-item", has_text=re.compile(r"Auto · 1,000 credits$"))).to_be_visible(timeout=15_000)
    chat = c.chat()
    chat.locator("#model-btn").click()
    opus = chat.locator("#model-opt-claude-opus-4\\.5")
    expect(opus).not_to_have_class(re.compile(r"locked"), timeout=10_000)
    opus.click()
    # Chosen in the panel, the selection's notice (Anthropic retires the model) is said in the panel.
    expect(chat.locator("#notice")).to_contain_text(re.compile(r"Anthropic retire[sd] Claude Opus 4\.5 on 2027-01-22"))
    expect(page.locator(".statusbar-item", has_text=re.compile(r"Claude Opus 4\.5 · 1,000 credits$"))).to_be_visible(timeout=15_000)


@step("Enable Overage… asks for a budget and the usage view shows it")
def _overage(c: Ctx) -> None:
    page = c.page
    c.clear_toasts()
    c.palette("Switchboard: Enable Overage…")
    box = page.locator(".quick-input-widget input")
    expect(box).to_be_visible(timeout=15_000)
    expect(page.locator(".quick-input-widget")).to_contain_text("budget in USD")
    box.fill("20")
    page.keyboard.press("Enter")
    expect(c.toast("overage is on with a $20.00 monthly budget")).to_be_visible(timeout=15_000)
    c.status().hover()
    tooltip = page.locator(".monaco-hover, .workbench-hover").filter(has_text="Overage: on")
    expect(tooltip.first).to_be_visible(timeout=10_000)
    expect(tooltip.first).to_contain_text("Pro plan")
    expect(tooltip.first).to_contain_text("Resets")
    page.wait_for_timeout(300)
    page.screenshot(path=f"{SHOTS}/{c.index:02d}a-status-tooltip.png")
    page.mouse.move(600, 500)
    c.status().click()
    usage = c.frame_with(".usage h1")
    expect(usage.locator("#overage")).to_contain_text("On · $20.00 cap", timeout=15_000)


@step("the chat survives a window reload (restored from the server)")
def _reload(c: Ctx) -> None:
    page = c.page
    page.keyboard.press("Control+W")  # close the usage view
    c.palette("Developer: Reload Window")
    page.wait_for_timeout(1500)
    expect(page.locator(".monaco-workbench")).to_be_visible(timeout=60_000)
    # the entitlement is passed again at start (initializationOptions.entitlement): still Pro, still Opus
    expect(page.locator(".statusbar-item", has_text=re.compile(r"Claude Opus 4\.5 · 1,000 credits$"))).to_be_visible(timeout=60_000)
    page.keyboard.press("Control+L")
    chat = c.chat()
    expect(chat.locator(".msg.user").first).to_contain_text("Explain this code", timeout=30_000)
    assert chat.locator(".msg.assistant").count() >= 4
    expect(chat.locator(".chat-title")).to_contain_text("Explain this code")


@step("New Chat starts an empty conversation")
def _new_chat(c: Ctx) -> None:
    chat = c.chat()
    chat.locator("#new-chat-btn").click()
    expect(chat.locator(".welcome")).to_be_visible(timeout=10_000)
    expect(chat.locator(".msg")).to_have_count(0)
    expect(chat.locator(".chat-title")).to_have_text("New chat")


@step("model output with <script>, onerror handlers and javascript: links renders inert")
def _inert(c: Ctx) -> None:
    # The fake API echoes the prompt into its answer, so this is hostile *model output* reaching the webview.
    chat = c.chat()
    chat.evaluate("() => { window.__pwned = 0; }")
    answers = chat.locator(".msg.assistant").count()
    payload = (
        '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> '
        "[go](javascript:window.__pwned=3) <a href=\"javascript:window.__pwned=4\">x</a>"
    )
    chat.locator("#prompt").fill(payload)
    chat.locator("#prompt").press("Enter")
    expect(chat.locator(".msg.assistant")).to_have_count(answers + 1, timeout=20_000)
    expect(chat.locator(".msg.assistant.streaming")).to_have_count(0, timeout=60_000)
    body = c.last_answer(chat).locator(".msg-body")
    expect(body).to_contain_text("Simulated reply", timeout=20_000)
    assert body.locator("script").count() == 0, "a script element survived sanitizing"
    assert body.locator("[onerror], [onclick], [onload]").count() == 0, "an event handler survived"
    assert body.locator('a[href^="javascript:" i]').count() == 0, "a javascript: link survived"
    c.page.wait_for_timeout(500)
    assert chat.evaluate("() => window.__pwned") == 0, "hostile output ran code in the webview"
    c.credits_before = c.status_credits()


def gateway_usage() -> dict[str, object]:
    """The account's usage as the gateway's PostgreSQL ledger has it (the admin CLI)."""
    env = {**os.environ, **CLOUD["admin_env"]}
    out = subprocess.run(
        [os.environ["SWITCHBOARD_BIN"], "gateway", "accounts", "usage", str(CLOUD["email"])],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )
    return json.loads(out.stdout)


def open_external(page: Page, click: Callable[[], None]) -> Page:
    """The browser tab vscode.env.openExternal opens (past VS Code's link check, if it asks)."""
    with page.context.expect_page(timeout=20_000) as opened:
        click()
        trust = page.locator(".monaco-dialog-box", has_text="external website")
        with contextlib.suppress(PlaywrightTimeout):
            trust.locator(".monaco-button", has_text="Open").first.click(timeout=2_000)
    tab = opened.value
    tab.wait_for_load_state()
    return tab


def approve_on_device_page(page: Page, code: str) -> None:
    """What the user does on the gateway's /device page: the code, their email and password, Continue; then,
    on the confirmation that names the program and what it could do, Approve."""
    expect(page.locator("form").first).to_be_visible(timeout=15_000)
    code_box = page.locator("input[name='user_code']")
    if code_box.count() and not code_box.input_value():
        code_box.fill(code)
    page.locator("input[type='email'], input[name='email']").first.fill(CLOUD["email"])
    page.locator("input[type='password']").first.fill(CLOUD["password"])
    page.locator("button", has_text=re.compile(r"^\s*continue", re.I)).first.click()
    expect(page.locator("h1")).to_contain_text(re.compile(r"asks to sign in to your account", re.I), timeout=15_000)
    page.locator("button", has_text=re.compile(r"^\s*approve", re.I)).first.click()
    expect(page.locator("body")).to_contain_text(re.compile(r"device approved", re.I), timeout=15_000)


@step("Switchboard: Sign In shows a device code, and cancelling it leaves the editor signed out")
def _device_cancel(c: Ctx) -> None:
    page = c.page
    c.clear_toasts()
    c.palette("Switchboard: Sign In")
    dialog = page.locator(".monaco-dialog-box")
    expect(dialog).to_contain_text(re.compile(r"Your Switchboard sign-in code: [A-Z]{4}-[A-Z]{4}"), timeout=30_000)
    expect(dialog).to_contain_text(f"Open {CLOUD['gateway']}/device")
    page.keyboard.press("Escape")
    expect(c.toast("sign-in cancelled")).to_be_visible(timeout=15_000)
    expect(page.locator(".statusbar-item .codicon-cloud")).to_have_count(0)


@step("device sign-in: copy the code, approve it on the gateway's /device page, and the status bar turns to the gateway's account")
def _device_sign_in(c: Ctx) -> None:
    page = c.page
    c.clear_toasts()
    c.palette("Switchboard: Sign In")
    dialog = page.locator(".monaco-dialog-box")
    expect(dialog).to_contain_text("Your Switchboard sign-in code", timeout=30_000)
    code = re.search(r"[A-Z]{4}-[A-Z]{4}", dialog.inner_text())
    assert code, f"no code in the dialog: {dialog.inner_text()!r}"
    page.wait_for_timeout(300)
    page.screenshot(path=f"{SHOTS}/{c.index:02d}a-device-code.png")
    browser = open_external(page, lambda: dialog.locator(".monaco-button", has_text="Copy code and open browser").click())
    assert f"user_code={code.group(0)}" in browser.url, f"the browser opened {browser.url}"
    if not browser.url.startswith(CLOUD["gateway"]):
        browser.goto(f"{CLOUD['gateway']}/device?user_code={code.group(0)}")  # a forwarded-port address
    approve_on_device_page(browser, code.group(0))
    browser.screenshot(path=f"{SHOTS}/{c.index:02d}b-device-approved.png")
    browser.close()
    expect(c.toast(re.compile(r"signed in as ada@example\.com — Pro plan"))).to_be_visible(timeout=30_000)
    item = page.locator(".statusbar-item", has_text=re.compile(r"Pro · .* · [\d,.]+ credits$"))
    expect(item).to_be_visible(timeout=15_000)
    expect(item.locator(".codicon-cloud")).to_have_count(1)
    assert c.status_credits() == gateway_usage()["remainingCredits"], "the status bar shows the gateway's figure"


@step("the usage view names the account, and Upgrade opens the gateway's upgrade page")
def _cloud_usage(c: Ctx) -> None:
    page = c.page
    c.clear_toasts()
    c.status().click()
    usage = c.frame_with("#account-text")
    host = CLOUD["gateway"].removeprefix("http://")
    expect(usage.locator("#account-text")).to_have_text(f"Signed in as ada@example.com via {host}", timeout=15_000)
    expect(usage.locator("#remaining")).to_have_text(f"{c.status_credits():,g}")
    upgrade = open_external(page, lambda: usage.locator("button[data-action=upgrade]").click())
    assert "/account" in upgrade.url, f"Upgrade opened {upgrade.url}"
    upgrade.close()
    page.keyboard.press("Control+W")


@step("signed in, a chat goes through the gateway and the status bar counts down from its ledger")
def _cloud_chat(c: Ctx) -> None:
    before = c.status_credits()
    used_before = float(gateway_usage()["usedCredits"])  # type: ignore[arg-type]
    chat = c.chat()
    answers = chat.locator(".msg.assistant").count()
    chat.locator("#prompt").fill("Hello from the cloud")
    chat.locator("#prompt").press("Enter")
    expect(chat.locator(".msg.assistant:not(.streaming)")).to_have_count(answers + 1, timeout=60_000)
    expect(c.last_answer(chat).locator(".msg-body")).to_contain_text("Simulated reply", timeout=20_000)
    expect(c.last_answer(chat).locator(".cost-usd")).to_have_count(0)  # the gateway's credits, no key's price
    deadline = time.time() + 15
    while c.status_credits() >= before:
        assert time.time() < deadline, f"status bar credits did not drop below {before}"
        c.page.wait_for_timeout(200)
    ledger = gateway_usage()
    assert float(ledger["usedCredits"]) > used_before, "the gateway charged the turn"  # type: ignore[arg-type]
    assert c.status_credits() == ledger["remainingCredits"], "the status bar shows the gateway's figure"


@step("a reloaded window is still signed in: the refresh token from SecretStorage resumes the session")
def _cloud_reload(c: Ctx) -> None:
    page = c.page
    c.clear_toasts()
    c.palette("Developer: Reload Window")
    page.wait_for_timeout(1500)
    expect(page.locator(".monaco-workbench")).to_be_visible(timeout=60_000)
    item = page.locator(".statusbar-item", has_text=re.compile(r"Pro · .* · [\d,.]+ credits$"))
    expect(item).to_be_visible(timeout=60_000)
    expect(item.locator(".codicon-cloud")).to_have_count(1)
    assert c.status_credits() == gateway_usage()["remainingCredits"], "the gateway's figure after the reload"


@step("Switchboard: Sign Out returns to this machine's credits")
def _sign_out(c: Ctx) -> None:
    page = c.page
    c.clear_toasts()
    c.palette("Switchboard: Sign Out")
    expect(c.toast("signed out")).to_be_visible(timeout=15_000)
    # the entitlement token went too: Free, with the credits this machine's ledger counted
    expect(page.locator(".statusbar-item .codicon-cloud")).to_have_count(0, timeout=15_000)
    expect(c.status()).not_to_contain_text("Pro ·")
    expect(page.locator(".statusbar-item", has_text=re.compile(r"Auto · [\d,.]+ credits$"))).to_be_visible(timeout=15_000)
    deadline = time.time() + 20  # the server restarts without the entitlement: Pro (local) → Free
    while c.status_credits() >= 50:
        assert time.time() < deadline, "the local Free figure, with this run's local turns"
        page.wait_for_timeout(200)


def main() -> int:
    os.makedirs(SHOTS, exist_ok=True)
    passed = failed = 0
    t_start = time.time()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("console", lambda m: m.type == "error" and "vsda" not in m.text and print("  console error:", m.text[:240], flush=True))
        c = Ctx(page)
        for i, (name, fn) in enumerate(STEPS, 1):
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48]
            t0 = time.time()
            c.index = i
            try:
                fn(c)
            except Exception as e:  # noqa: BLE001 - report any failure as a failed step
                failed += 1
                print(f"✖ {i:02d} {name} ({time.time() - t0:.1f}s)\n    {type(e).__name__}: {e}", flush=True)
                traceback.print_exc(limit=3)
                page.screenshot(path=f"{SHOTS}/{i:02d}-{slug}-FAILED.png")
                break
            passed += 1
            page.wait_for_timeout(350)  # let toasts and transitions settle
            page.screenshot(path=f"{SHOTS}/{i:02d}-{slug}.png")
            print(f"✔ {i:02d} {name} ({time.time() - t0:.1f}s)", flush=True)
        browser.close()
    skipped = len(STEPS) - passed - failed
    print(f"UI steps: {len(STEPS)}, skipped after failure: {skipped}, time {time.time() - t_start:.1f}s")
    print(f"{passed} passed, {failed + skipped} failed")
    return 0 if failed == 0 and skipped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
