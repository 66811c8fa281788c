// The chat webview's entry point: builds the store, the views and the wiring between them and the
// extension, then loads the conversation. The pieces:
//   store.ts (the one place state changes: state.ts + draft.ts + the history pane's contents),
//   intents.ts (what the user can do), dispatcher.ts (events from the extension), estimates.ts,
//   views/ (DOM components that render from the store and act through intents).
import type { ChatEvents, ChatRequests } from '../../src/shared/webviewProtocol';
import { h } from '../shared/dom';
import { Messenger } from '../shared/messenger';
import { dispatchExtensionEvents } from './dispatcher';
import { draftFromSaved, type PersistedDraft } from './draft';
import { EstimateScheduler, estimateIsStale } from './estimates';
import { createIntents } from './intents';
import { createMarkdownRenderer } from './markdown';
import { ChatStore } from './store';
import { createBanner } from './views/banner';
import { createComposer } from './views/composer';
import { createHeader } from './views/header';
import { createHistoryPane } from './views/history';
import { createNotice } from './views/notice';
import { createTranscript } from './views/transcript';

const messenger = new Messenger<ChatRequests, ChatEvents>();
const store = new ChatStore(draftFromSaved(messenger.getState<PersistedDraft>()), (draft) => messenger.setState(draft));
const estimates = new EstimateScheduler(
  () => messenger.request('estimate', { prompt: store.draft.text, context: store.draft.chips.map((c) => c.item) }),
  (estimate) => store.updateDraft({ type: 'estimated', estimate }),
);
const intents = createIntents(messenger, store, estimates);

const header = createHeader(store, intents);
const banner = createBanner(store, intents);
const history = createHistoryPane(store, intents);
const transcript = createTranscript(store, createMarkdownRenderer(window), intents);
const notice = createNotice(store, intents);
const composer = createComposer(store, intents);
document.getElementById('app')!.append(h('div', { class: 'chat' }, header.el, banner.el, history.el, transcript.el, notice.el, composer.el));

function renderAll(): void {
  header.render();
  banner.render();
  transcript.render();
  notice.render();
  composer.render();
  history.render();
}

function renderHistoryToggle(): void {
  header.render();
  transcript.el.hidden = store.history.open;
  history.render();
}

// Streamed events come in bursts: the conversation is drawn at most once a frame. The draft and the
// history pane answer the user's own input, so they are drawn at once.
let renderQueued = false;
function scheduleRender(): void {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderAll();
  });
}

store.subscribe((part, before) => {
  if (part === 'chat') {
    scheduleRender();
    if (estimateIsStale(before, store.chat)) estimates.schedule();
  } else if (part === 'draft') composer.render();
  else renderHistoryToggle();
});

dispatchExtensionEvents(messenger, { store, intents, estimates, focusPrompt: composer.focus });

document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || composer.pickerOpen()) return;
  if (store.chat.pending) {
    e.preventDefault();
    intents.stop();
  } else if (store.history.open) void intents.toggleHistory(false);
});

async function init(): Promise<void> {
  renderAll();
  try {
    store.dispatch({ type: 'state/snapshot', data: await messenger.request('init', {}) });
    estimates.schedule();
  } catch (err) {
    store.dispatch({ type: 'notice', data: { message: `Could not load the chat: ${(err as Error).message}` } });
  }
  composer.focus();
}
void init();
