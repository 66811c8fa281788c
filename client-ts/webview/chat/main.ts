// The chat webview: transcript with streamed Markdown answers, composer with model picker, context
// chips, estimate and context meter, history, inline errors. State lives in state.ts (a reducer);
// this file only draws it and forwards the user's intent to the extension.
import type { ContextItem, ConversationSummary, ModelInfo } from '../../src/protocol.generated';
import type { ErrorAction } from '../../src/shared/errors';
import {
  answeredByLabel,
  creditsLabel,
  formatDate,
  formatMultiplier,
  formatTokens,
  lineSpanLabel,
  modelName,
  relativeTime,
  truncate,
  usageLevel,
} from '../../src/shared/format';
import type { ChatEvents, ChatRequests, ContextChip, EstimateView } from '../../src/shared/webviewProtocol';
import { h, icon } from '../shared/dom';
import { Messenger } from '../shared/messenger';
import { createMarkdownRenderer } from './markdown';
import { canRetryStronger, displayedTurns, initialState, orderedModels, reduce, type ChatAction, type ChatViewState, type ViewTurn } from './state';

interface Persisted {
  draft: string;
  chips: ContextChip[];
  thinking: boolean;
}

const messenger = new Messenger<ChatRequests, ChatEvents>();
const markdown = createMarkdownRenderer(window);
let state: ChatViewState = initialState();
const saved = messenger.getState<Persisted>();
let chips: ContextChip[] = saved?.chips ?? [];
let thinking = saved?.thinking ?? false;
let estimate: EstimateView | null = null;
let historyOpen = false;
let historyItems: ConversationSummary[] | null = null;
let pickerOpen = false;
let pickerIndex = 0;

// --- skeleton ----------------------------------------------------------------------------------------

const app = document.getElementById('app')!;
const titleEl = h('div', { class: 'chat-title', id: 'chat-title' }, 'New chat');
const historyBtn = h('button', { class: 'icon-btn', id: 'history-btn', title: 'Chat history', 'aria-label': 'Chat history', 'aria-expanded': 'false' }, icon('history'));
const newBtn = h('button', { class: 'icon-btn', id: 'new-chat-btn', title: 'New chat', 'aria-label': 'New chat' }, icon('add'));
const header = h('header', { class: 'chat-header' }, titleEl, h('div', { class: 'header-actions' }, historyBtn, newBtn));
const banner = h('div', { class: 'banner', id: 'banner', role: 'status', hidden: true });
const historyPane = h('section', { class: 'history', id: 'history', 'aria-label': 'Conversations in this workspace', hidden: true });
const transcript = h('main', { class: 'transcript', id: 'transcript', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation' });
const noticeEl = h('div', { class: 'notice', id: 'notice', role: 'status', hidden: true });

const chipsEl = h('div', { class: 'chips', id: 'chips', 'aria-label': 'Context attached to the next message' });
const promptEl = h('textarea', {
  id: 'prompt',
  class: 'prompt',
  rows: 1,
  'aria-label': 'Message',
  placeholder: 'Ask Claude about your code…',
  spellcheck: 'true',
});
promptEl.value = saved?.draft ?? '';
const addSelectionBtn = h(
  'button',
  { class: 'tool-btn', id: 'add-selection', title: 'Include the current selection', 'aria-label': 'Include the current selection' },
  icon('selection'),
  h('span', { class: 'tool-label' }, 'Selection'),
);
const addFileBtn = h(
  'button',
  { class: 'tool-btn', id: 'add-file', title: 'Include the current file', 'aria-label': 'Include the current file' },
  icon('file'),
  h('span', { class: 'tool-label' }, 'File'),
);
const thinkBtn = h(
  'button',
  { class: 'tool-btn', id: 'think', title: 'Extended thinking for the next message', 'aria-label': 'Extended thinking', 'aria-pressed': 'false' },
  icon('lightbulb'),
  h('span', { class: 'tool-label' }, 'Think'),
);
const modelBtn = h('button', { class: 'model-btn', id: 'model-btn', 'aria-haspopup': 'listbox', 'aria-expanded': 'false', 'aria-controls': 'model-list' });
const modelList = h('ul', { class: 'model-list', id: 'model-list', role: 'listbox', tabindex: '-1', 'aria-label': 'Model for the next message', hidden: true });
const picker = h('div', { class: 'model-picker' }, modelBtn, modelList);
const sendBtn = h('button', { class: 'send-btn', id: 'send', title: 'Send (Enter)', 'aria-label': 'Send' }, icon('send'));
const stopBtn = h('button', { class: 'stop-btn', id: 'stop', title: 'Stop (Escape)', 'aria-label': 'Stop', hidden: true }, icon('debug-stop'));
const estimateEl = h('span', { class: 'estimate', id: 'estimate', 'aria-live': 'polite' });
const meterFill = h('div', { class: 'meter-fill' });
const meter = h('div', { class: 'meter', id: 'context-meter', role: 'meter', 'aria-label': 'Context window used', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' }, meterFill);
const meterLabel = h('span', { class: 'meter-label', id: 'context-label' });
const creditsLeftEl = h('button', { class: 'credits-left link-btn', id: 'credits-left', title: 'Show usage' });

const composer = h(
  'footer',
  { class: 'composer' },
  h(
    'div',
    { class: 'input-box' },
    chipsEl,
    promptEl,
    h('div', { class: 'composer-bar' }, h('div', { class: 'tools' }, addSelectionBtn, addFileBtn, thinkBtn), h('div', { class: 'actions' }, picker, sendBtn, stopBtn)),
  ),
  h('div', { class: 'meter-row' }, estimateEl, h('span', { class: 'spacer' }), meter, meterLabel, h('span', { class: 'sep', 'aria-hidden': 'true' }, '·'), creditsLeftEl),
);
app.append(h('div', { class: 'chat' }, header, banner, historyPane, transcript, noticeEl, composer));

// --- state --------------------------------------------------------------------------------------------

function dispatch(action: ChatAction): void {
  const before = state;
  state = reduce(state, action);
  if (state !== before) scheduleRender();
  if (before.conversationId !== state.conversationId || before.selected !== state.selected || before.turns.length !== state.turns.length) {
    scheduleEstimate();
  }
}

function persist(): void {
  messenger.setState<Persisted>({ draft: promptEl.value, chips, thinking });
}

let renderQueued = false;
function scheduleRender(): void {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

let estimateTimer: ReturnType<typeof setTimeout> | undefined;
let estimateSeq = 0;
function scheduleEstimate(): void {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(async () => {
    const seq = ++estimateSeq;
    try {
      const result = await messenger.request('estimate', { prompt: promptEl.value, context: chips.map((c) => c.item) });
      if (seq === estimateSeq) {
        estimate = result;
        renderComposer();
      }
    } catch {
      // estimates are best effort
    }
  }, 300);
}

// --- rendering ------------------------------------------------------------------------------------------

function render(): void {
  renderHeader();
  renderBanner();
  renderTranscript();
  renderNotice();
  renderComposer();
  if (historyOpen) renderHistory();
}

function renderHeader(): void {
  titleEl.textContent = state.title ? truncate(state.title, 60) : 'New chat';
  titleEl.title = state.title ?? '';
}

function renderBanner(): void {
  banner.replaceChildren();
  const s = state.server;
  let content: HTMLElement | null = null;
  if (s.state === 'starting') {
    content = h('div', { class: 'banner-row' }, icon('loading', 'codicon-modifier-spin'), h('span', {}, `Starting the Switchboard server${s.detail ? ` (${s.detail})` : ''}…`));
  } else if (s.state === 'failed') {
    content = h(
      'div',
      { class: 'banner-row error' },
      icon('error'),
      h('span', {}, s.message),
      actionButton({ id: 'restartServer', label: 'Restart' }),
      actionButton({ id: 'showLogs', label: 'Show logs' }),
    );
  } else if (s.state === 'stopped') {
    content = h('div', { class: 'banner-row' }, icon('debug-disconnect'), h('span', {}, 'The Switchboard server is stopped.'), actionButton({ id: 'restartServer', label: 'Start' }));
  }
  banner.hidden = !content;
  if (content) banner.append(content);
}

const turnCache = new Map<string, { key: string; el: HTMLElement }>();

function turnKey(t: ViewTurn): string {
  const retry = t.role === 'assistant' && !state.pending && canRetryStronger(t, state.turns, state.models);
  return [t.status, t.text.length, t.thinking?.length ?? 0, t.credits, t.routedModel, t.error, state.models.length, t.fallback, retry].join('|');
}

function renderTranscript(): void {
  const nearBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 80;
  const turns = displayedTurns(state);
  const children: HTMLElement[] = [];
  if (!turns.length && !state.inlineError) children.push(renderWelcome());
  const seen = new Set<string>();
  for (const t of turns) {
    seen.add(t.id);
    const key = turnKey(t);
    const cached = turnCache.get(t.id);
    if (cached && cached.key === key) {
      children.push(cached.el);
      continue;
    }
    const el = t.role === 'user' ? renderUserTurn(t) : renderAssistantTurn(t);
    turnCache.set(t.id, { key, el });
    children.push(el);
  }
  for (const id of [...turnCache.keys()]) if (!seen.has(id)) turnCache.delete(id);
  if (state.inlineError) children.push(renderInlineError());
  transcript.replaceChildren(...children);
  if (nearBottom || state.pending) transcript.scrollTop = transcript.scrollHeight;
}

function renderWelcome(): HTMLElement {
  const u = state.usage;
  const plan = u
    ? `${u.planName} plan · ${creditsLabel(Math.max(0, u.remainingCredits))} left · resets ${formatDate(u.periodEnd)}`
    : 'Connecting to the Switchboard server…';
  return h(
    'div',
    { class: 'welcome' },
    h('div', { class: 'welcome-logo', 'aria-hidden': 'true' }, icon('sparkle')),
    h('h2', {}, 'Ask Claude about your code'),
    h('p', { class: 'welcome-plan' }, plan),
    !state.hasApiKey && state.server.state === 'running'
      ? h('div', { class: 'welcome-cta' }, h('p', {}, 'Add your Anthropic API key to start chatting.'), actionButton({ id: 'setApiKey', label: 'Set API key' }, true))
      : null,
    h(
      'ul',
      { class: 'welcome-tips' },
      h('li', {}, icon('sparkle'), h('span', {}, h('strong', {}, 'Auto'), ' picks the best-value Claude model for each message and tells you which one answered.')),
      h('li', {}, icon('credit-card'), h('span', {}, 'See the estimated credits before you send, and what each answer cost after.')),
      h('li', {}, icon('selection'), h('span', {}, 'Attach the current selection or file with the buttons below.')),
      h('li', {}, icon('keyboard'), h('span', {}, h('kbd', {}, 'Enter'), ' sends, ', h('kbd', {}, 'Shift+Enter'), ' adds a line, ', h('kbd', {}, 'Esc'), ' stops.')),
    ),
  );
}

function contextLabel(item: ContextItem): string {
  const name = decodeURIComponent(item.uri.split('/').pop() ?? item.uri);
  return item.range ? `${name}:${lineSpanLabel(item.range)}` : name;
}

function renderUserTurn(t: ViewTurn): HTMLElement {
  return h(
    'article',
    { class: 'msg user', 'data-turn-id': t.id, 'aria-label': 'You' },
    h('div', { class: 'msg-body' }, t.text),
    t.context.length
      ? h('div', { class: 'msg-context' }, ...t.context.map((c) => h('span', { class: 'chip small', title: c.uri }, icon(c.range ? 'selection' : 'file'), contextLabel(c))))
      : null,
  );
}

function renderAssistantTurn(t: ViewTurn): HTMLElement {
  const streaming = t.status === 'streaming';
  const el = h('article', { class: `msg assistant${streaming ? ' streaming' : ''}`, 'data-turn-id': t.id, 'aria-label': 'Claude', 'aria-busy': streaming ? 'true' : 'false' });
  if (t.thinking) {
    el.append(
      h(
        'details',
        { class: 'thinking', open: streaming && !t.text ? true : undefined },
        h('summary', {}, icon('lightbulb'), streaming && !t.text ? 'Thinking…' : 'Thought process'),
        h('div', { class: 'thinking-body' }, t.thinking),
      ),
    );
  }
  if (streaming && !t.text) {
    const p = state.pending;
    const label = p?.route ? p.route.message || `${answeredByLabel(p.route.modelId, p.route.routedModel, state.models)} is answering` : 'Routing your message';
    el.append(h('div', { class: 'typing' }, h('span', { class: 'dots', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')), h('span', {}, label)));
  } else {
    const body = h('div', { class: 'msg-body markdown' });
    if (t.text || t.status === 'complete') {
      body.innerHTML = markdown.render(t.text || '_(empty answer)_');
      decorateCodeBlocks(body);
      el.append(body);
    }
  }
  if (t.error && t.status === 'failed') el.append(h('div', { class: 'turn-error' }, icon('error'), t.error));
  el.append(renderFooter(t));
  return el;
}

function renderFooter(t: ViewTurn): HTMLElement {
  const streaming = t.status === 'streaming';
  const footer = h('div', { class: 'msg-footer' });
  if (t.routedModel || t.modelId) {
    const label = answeredByLabel(t.modelId, t.routedModel, state.models);
    footer.append(
      h(
        'span',
        { class: 'answered-by', title: t.routeReason ?? '', tabindex: t.routeReason ? '0' : undefined, 'aria-label': `Answered by ${label}${t.routeReason ? `. ${t.routeReason}` : ''}` },
        icon(t.modelId === 'auto' ? 'sparkle' : 'hubot'),
        h('span', { class: 'answered-label' }, label),
      ),
    );
  }
  if (t.fallback) footer.append(h('span', { class: 'tag warn', title: 'Auto switched models while answering' }, 'fallback'));
  if (t.retryOf) footer.append(h('span', { class: 'tag' }, 'retry'));
  if (!streaming) footer.append(h('span', { class: 'credits', title: 'Credits charged for this answer' }, creditsLabel(t.credits)));
  if (t.status === 'cancelled') footer.append(h('span', { class: 'tag warn' }, icon('debug-stop'), 'Stopped'));
  if (t.status === 'failed') footer.append(h('span', { class: 'tag error' }, 'Failed'));
  if (!streaming && t.status !== 'failed' && !state.pending && canRetryStronger(t, state.turns, state.models)) {
    footer.append(h('span', { class: 'spacer' }));
    footer.append(
      h(
        'button',
        {
          class: 'link-btn retry-btn',
          title: 'Answer this again with a stronger model (both answers are kept)',
          onclick: () => {
            void messenger.request('chat/retry', { turnId: t.id });
          },
        },
        icon('arrow-up'),
        'Retry with a stronger model',
      ),
    );
  }
  return footer;
}

function decorateCodeBlocks(root: HTMLElement): void {
  for (const block of Array.from(root.querySelectorAll<HTMLElement>('.code-block'))) {
    const code = block.querySelector('code')?.textContent ?? '';
    const header = block.querySelector('.code-header');
    if (!header) continue;
    const copy = h('button', { class: 'code-btn', title: 'Copy', 'aria-label': 'Copy code' }, icon('copy'), h('span', {}, 'Copy'));
    copy.addEventListener('click', async () => {
      await messenger.request('code/copy', { code });
      copy.replaceChildren(icon('check'), h('span', {}, 'Copied'));
      setTimeout(() => copy.replaceChildren(icon('copy'), h('span', {}, 'Copy')), 1500);
    });
    const insert = h('button', { class: 'code-btn', title: 'Insert at cursor', 'aria-label': 'Insert code at cursor' }, icon('insert'), h('span', {}, 'Insert'));
    insert.addEventListener('click', () => void messenger.request('code/insert', { code }));
    header.append(h('span', { class: 'spacer' }), copy, insert);
  }
}

function actionButton(
  a: ErrorAction,
  primary = false,
  extra?: { prompt?: string; context?: ContextItem[]; retryOf?: string | null; modelId?: string },
): HTMLButtonElement {
  return h(
    'button',
    {
      class: primary ? 'btn primary' : 'btn secondary',
      'data-action': a.id,
      onclick: () => {
        if (a.id === 'retry' || a.id === 'retryWithModel') dispatch({ type: 'local/retractFailed' });
        // Retry re-runs a recorded failed answer on the model first asked for; a suggested model overrides it.
        const modelId = a.modelId ?? (a.id === 'retry' && extra?.retryOf ? extra.modelId : undefined);
        void messenger.request('action/run', { action: a.id, modelId, prompt: extra?.prompt, context: extra?.context, retryOf: extra?.retryOf });
      },
    },
    a.label,
  );
}

function renderInlineError(): HTMLElement {
  const e = state.inlineError!;
  return h(
    'div',
    { class: `error-card kind-${e.error.kind}`, role: 'alert', 'data-code': String(e.error.code) },
    icon(e.error.kind === 'auth' ? 'key' : e.error.kind === 'plan' ? 'lock' : e.error.kind === 'credits' ? 'credit-card' : 'error', 'error-icon'),
    h(
      'div',
      { class: 'error-content' },
      h('div', { class: 'error-title' }, e.error.title),
      h('div', { class: 'error-message' }, e.error.message),
      h('div', { class: 'error-actions' }, ...e.error.actions.map((a, i) => actionButton(a, i === 0, e))),
    ),
    h('button', { class: 'icon-btn dismiss', title: 'Dismiss', 'aria-label': 'Dismiss', onclick: () => dispatch({ type: 'local/dismissError' }) }, icon('close')),
  );
}

let noticeTimer: ReturnType<typeof setTimeout> | undefined;
function renderNotice(): void {
  const n = state.notice;
  noticeEl.hidden = !n;
  noticeEl.replaceChildren();
  if (!n) return;
  noticeEl.className = `notice${n.error ? ' error' : ''}`;
  noticeEl.append(icon(n.error ? (n.error.kind === 'plan' ? 'lock' : 'warning') : 'info'), h('span', { class: 'notice-text' }, n.error ? `${n.error.title}. ${n.error.message}` : n.message));
  for (const [i, a] of (n.error?.actions ?? []).entries()) noticeEl.append(actionButton(a, i === 0));
  noticeEl.append(h('button', { class: 'icon-btn', 'aria-label': 'Dismiss', title: 'Dismiss', onclick: () => dispatch({ type: 'local/dismissNotice' }) }, icon('close')));
  clearTimeout(noticeTimer);
  if (!n.error) noticeTimer = setTimeout(() => dispatch({ type: 'local/dismissNotice' }), 6000);
}

function selectedModel(): ModelInfo | undefined {
  return state.models.find((m) => m.id === state.selected);
}

function renderComposer(): void {
  const streaming = state.pending !== null;
  sendBtn.hidden = streaming;
  stopBtn.hidden = !streaming;
  sendBtn.disabled = !promptEl.value.trim() || state.server.state === 'failed' || state.server.state === 'stopped';
  const m = selectedModel();
  modelBtn.replaceChildren(
    icon(state.selected === 'auto' ? 'sparkle' : 'hubot'),
    h('span', { class: 'model-name' }, modelName(state.selected, state.models)),
    ...(m ? [h('span', { class: 'mult' }, formatMultiplier(m.creditMultiplier))] : []),
    icon('chevron-down', 'chev'),
  );
  modelBtn.setAttribute('aria-label', `Model for the next message: ${modelName(state.selected, state.models)}. Change model`);
  modelBtn.title = m ? `${m.name} · ${formatMultiplier(m.creditMultiplier)} credits — ${m.description}` : 'Choose a model';
  thinkBtn.setAttribute('aria-pressed', String(thinking));
  thinkBtn.classList.toggle('on', thinking);
  thinkBtn.hidden = m ? !m.supportsThinking : false;
  // chips
  chipsEl.replaceChildren(
    ...chips.map((c) =>
      h(
        'span',
        { class: 'chip', title: c.item.uri },
        icon(c.kind === 'selection' ? 'selection' : 'file'),
        h('span', { class: 'chip-label' }, c.label),
        h('button', { class: 'chip-remove', 'aria-label': `Remove ${c.label}`, title: 'Remove', onclick: () => removeChip(c.id) }, icon('close')),
      ),
    ),
  );
  chipsEl.hidden = chips.length === 0;
  // estimate + meter
  const est = estimate?.estimate;
  if (est && promptEl.value.trim()) {
    estimateEl.textContent = `≈ ${creditsLabel(est.estimatedCredits)}`;
    estimateEl.title = `Estimated for this message on ${modelName(est.modelId, state.models)}: ${formatTokens(est.inputTokens)} input tokens, ~${formatTokens(est.estimatedOutputTokens)} output tokens`;
    estimateEl.classList.toggle('warn', !est.allowed || !est.fitsContext);
    if (!est.allowed) estimateEl.textContent += ' · not on your plan';
    else if (!est.fitsContext) estimateEl.textContent += ' · too large for the context window';
  } else {
    estimateEl.textContent = streaming ? 'Answering…' : '';
    estimateEl.title = '';
    estimateEl.classList.remove('warn');
  }
  const windowSize = est?.contextWindow ?? m?.contextWindow ?? 200_000;
  const used = est?.inputTokens ?? 0;
  const frac = Math.min(1, used / windowSize);
  meterFill.style.width = `${Math.max(frac > 0 ? 2 : 0, Math.round(frac * 100))}%`;
  meter.classList.toggle('warn', frac >= 0.75 && frac < 0.95);
  meter.classList.toggle('error', frac >= 0.95);
  meter.setAttribute('aria-valuenow', String(Math.round(frac * 100)));
  meter.title = `Context window: ${formatTokens(used)} of ${formatTokens(windowSize)} tokens (${Math.round(frac * 100)}%) for this conversation and message`;
  meterLabel.textContent = `${formatTokens(used)} / ${formatTokens(windowSize)}`;
  const u = state.usage;
  creditsLeftEl.hidden = !u;
  if (u) {
    creditsLeftEl.textContent = `${creditsLabel(Math.max(0, u.remainingCredits))} left`;
    creditsLeftEl.className = `credits-left link-btn level-${usageLevel(u)}`;
  }
  if (pickerOpen) renderPicker();
}

function renderPicker(): void {
  const models = orderedModels(state.models);
  modelList.replaceChildren(
    ...models.map((m, i) => {
      const selected = m.id === state.selected;
      const est = estimate?.all.find((e) => e.modelId === m.id);
      return h(
        'li',
        {
          id: `model-opt-${m.id}`,
          role: 'option',
          class: `model-opt${m.available ? '' : ' locked'}${i === pickerIndex ? ' active' : ''}`,
          'aria-selected': selected ? 'true' : 'false',
          'aria-disabled': m.available ? undefined : 'true',
          'data-model-id': m.id,
          onclick: (ev: Event) => {
            ev.stopPropagation();
            choose(m);
          },
          onmousemove: () => {
            if (pickerIndex !== i) {
              pickerIndex = i;
              renderPicker();
            }
          },
        },
        h(
          'div',
          { class: 'opt-main' },
          icon(selected ? 'check' : m.available ? 'blank' : 'lock', 'opt-icon'),
          h('span', { class: 'opt-name' }, m.name),
          h('span', { class: 'opt-mult' }, formatMultiplier(m.creditMultiplier)),
          m.recommended || m.id === 'auto' ? h('span', { class: 'badge' }, 'Recommended') : null,
          est && m.available && promptEl.value.trim() ? h('span', { class: 'opt-est' }, `≈ ${creditsLabel(est.estimatedCredits)}`) : null,
        ),
        h('div', { class: 'opt-desc' }, m.description),
        m.available ? null : h('div', { class: 'opt-lock' }, `${m.unavailableReason ?? 'Not included in your plan'} · Upgrade to unlock`),
      );
    }),
  );
  const active = models[pickerIndex];
  if (active) {
    modelList.setAttribute('aria-activedescendant', `model-opt-${active.id}`);
    document.getElementById(`model-opt-${active.id}`)?.scrollIntoView({ block: 'nearest' });
  }
}

function openPicker(): void {
  if (!state.models.length) return;
  pickerOpen = true;
  pickerIndex = Math.max(0, orderedModels(state.models).findIndex((m) => m.id === state.selected));
  modelList.hidden = false;
  modelBtn.setAttribute('aria-expanded', 'true');
  renderPicker();
  modelList.focus();
}

function closePicker(focusButton = true): void {
  if (!pickerOpen) return;
  pickerOpen = false;
  modelList.hidden = true;
  modelBtn.setAttribute('aria-expanded', 'false');
  if (focusButton) modelBtn.focus();
}

function choose(m: ModelInfo): void {
  closePicker(false);
  promptEl.focus();
  // Locked models go to the server too: it refuses them with the reason (shown as a notice).
  void messenger.request('model/select', { modelId: m.id });
}

function renderHistory(): void {
  historyPane.replaceChildren(
    h('div', { class: 'history-header' }, h('span', {}, 'Conversations in this workspace'), h('button', { class: 'icon-btn', title: 'Close', 'aria-label': 'Close history', onclick: () => toggleHistory(false) }, icon('close'))),
  );
  if (historyItems === null) {
    historyPane.append(h('div', { class: 'history-empty' }, icon('loading', 'codicon-modifier-spin'), ' Loading…'));
    return;
  }
  if (!historyItems.length) {
    historyPane.append(h('div', { class: 'history-empty' }, 'No conversations yet.'));
    return;
  }
  const list = h('ul', { class: 'history-list', role: 'list' });
  for (const c of historyItems) {
    const del = h('button', { class: 'icon-btn history-delete', title: 'Delete conversation', 'aria-label': `Delete “${c.title}”` }, icon('trash'));
    let armed = false;
    del.addEventListener('click', async (ev) => {
      ev.stopPropagation();
      if (!armed) {
        armed = true;
        del.classList.add('armed');
        del.replaceChildren(h('span', {}, 'Delete?'));
        setTimeout(() => {
          armed = false;
          del.classList.remove('armed');
          del.replaceChildren(icon('trash'));
        }, 3000);
        return;
      }
      historyItems = await messenger.request('history/delete', { conversationId: c.id });
      renderHistory();
    });
    const open = h(
      'button',
      { class: `history-item${c.id === state.conversationId ? ' current' : ''}`, 'aria-label': `Open “${c.title}”`, onclick: () => openConversation(c.id) },
      h('span', { class: 'history-title' }, truncate(c.title || 'Untitled', 80)),
      h('span', { class: 'history-meta' }, `${relativeTime(c.updatedAt)} · ${c.turnCount} ${c.turnCount === 1 ? 'message' : 'messages'}`),
    );
    list.append(h('li', { class: 'history-row' }, open, del));
  }
  historyPane.append(list);
}

async function toggleHistory(open = !historyOpen): Promise<void> {
  historyOpen = open;
  historyPane.hidden = !open;
  transcript.hidden = open;
  historyBtn.setAttribute('aria-expanded', String(open));
  historyBtn.classList.toggle('on', open);
  if (!open) return;
  historyItems = null;
  renderHistory();
  try {
    historyItems = await messenger.request('history/list', {});
  } catch {
    historyItems = [];
  }
  renderHistory();
}

async function openConversation(id: string): Promise<void> {
  await messenger.request('history/open', { conversationId: id });
  void toggleHistory(false);
}

// --- input -------------------------------------------------------------------------------------------

function autosize(): void {
  promptEl.style.height = 'auto';
  promptEl.style.height = `${Math.min(promptEl.scrollHeight, 240)}px`;
}

function send(): void {
  const prompt = promptEl.value.trim();
  // While the server (re)starts the request waits for it; only a failed or stopped server refuses.
  if (!prompt || state.pending || state.server.state === 'failed' || state.server.state === 'stopped') return;
  void messenger.request('chat/send', { prompt, context: chips.map((c) => c.item), thinking });
  promptEl.value = '';
  chips = [];
  estimate = null;
  autosize();
  persist();
  renderComposer();
}

function stop(): void {
  if (state.pending) void messenger.request('chat/stop', {});
}

function addChip(chip: ContextChip): void {
  if (chips.some((c) => c.item.uri === chip.item.uri && JSON.stringify(c.item.range) === JSON.stringify(chip.item.range))) return;
  chips = [...chips, chip];
  persist();
  renderComposer();
  scheduleEstimate();
}

function removeChip(id: string): void {
  chips = chips.filter((c) => c.id !== id);
  persist();
  renderComposer();
  scheduleEstimate();
  promptEl.focus();
}

promptEl.addEventListener('input', () => {
  autosize();
  persist();
  renderComposer();
  scheduleEstimate();
});
promptEl.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
sendBtn.addEventListener('click', send);
stopBtn.addEventListener('click', stop);
newBtn.addEventListener('click', () => {
  void toggleHistory(false);
  void messenger.request('chat/new', {});
});
historyBtn.addEventListener('click', () => void toggleHistory());
addSelectionBtn.addEventListener('click', async () => {
  const chip = await messenger.request('context/add', { kind: 'selection' });
  if (chip) addChip(chip);
});
addFileBtn.addEventListener('click', async () => {
  const chip = await messenger.request('context/add', { kind: 'file' });
  if (chip) addChip(chip);
});
thinkBtn.addEventListener('click', () => {
  thinking = !thinking;
  persist();
  renderComposer();
});
creditsLeftEl.addEventListener('click', () => void messenger.request('action/run', { action: 'showUsage' }));
modelBtn.addEventListener('click', (e) => {
  e.stopPropagation();
  if (pickerOpen) closePicker();
  else openPicker();
});
modelBtn.addEventListener('keydown', (e) => {
  if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
    e.preventDefault();
    openPicker();
  }
});
modelList.addEventListener('keydown', (e) => {
  const models = orderedModels(state.models);
  if (e.key === 'ArrowDown') pickerIndex = Math.min(models.length - 1, pickerIndex + 1);
  else if (e.key === 'ArrowUp') pickerIndex = Math.max(0, pickerIndex - 1);
  else if (e.key === 'Home') pickerIndex = 0;
  else if (e.key === 'End') pickerIndex = models.length - 1;
  else if (e.key === 'Enter' || e.key === ' ') {
    const m = models[pickerIndex];
    if (m) choose(m);
  } else if (e.key === 'Escape' || e.key === 'Tab') {
    closePicker(e.key === 'Escape');
    e.stopPropagation();
    if (e.key === 'Escape') e.preventDefault();
    return;
  } else return;
  e.preventDefault();
  renderPicker();
});
document.addEventListener('click', (e) => {
  if (pickerOpen && !picker.contains(e.target as Node)) closePicker(false);
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !pickerOpen) {
    if (state.pending) {
      e.preventDefault();
      stop();
    } else if (historyOpen) void toggleHistory(false);
  }
});

// --- events from the extension -------------------------------------------------------------------------

messenger.onAny((event, data) => {
  const authError = state.inlineError?.error.kind === 'auth' ? state.inlineError : null;
  dispatch({ type: event, data } as ChatAction);
  // A key was just set: clear the "set a key" card and put the message back, ready to send again.
  if (authError && event === 'state/server' && (data as ChatEvents['state/server']).hasApiKey) {
    dispatch({ type: 'local/retractFailed' });
    if (!promptEl.value.trim()) {
      promptEl.value = authError.prompt;
      chips = authError.context.map((item, i) => ({ id: `restored-${i}`, kind: item.range ? 'selection' : 'file', label: contextLabel(item), item }));
      autosize();
      persist();
      renderComposer();
      promptEl.focus();
    }
  }
});
messenger.on('context/added', (chip) => addChip(chip));
messenger.on('ui/focus', () => {
  void toggleHistory(false);
  promptEl.focus();
});
messenger.on('ui/history', () => void toggleHistory(true));
messenger.on('chat/finished', () => scheduleEstimate());
messenger.on('conversation/loaded', () => {
  void toggleHistory(false);
  scheduleEstimate();
});

async function init(): Promise<void> {
  autosize();
  render();
  try {
    const snapshot = await messenger.request('init', {});
    dispatch({ type: 'state/snapshot', data: snapshot });
    scheduleEstimate();
  } catch (err) {
    dispatch({ type: 'notice', data: { message: `Could not load the chat: ${(err as Error).message}` } });
  }
  promptEl.focus();
}
void init();
