// The composer at the bottom: the message input with its context chips, the Selection / File / Think
// tools, the model picker, Send and Stop, and under it the cost preview (costMeter.ts).
import { h, icon } from '../../shared/dom';
import type { ChatIntents } from '../intents';
import { selectedModel, serverAcceptsMessages } from '../state';
import type { ChatModel } from '../store';
import { createChips } from './chips';
import { createCostMeter } from './costMeter';
import { createModelPicker } from './modelPicker';
import type { View } from './view';

/** The input grows with its text up to this height, then scrolls. */
const MAX_INPUT_PX = 240;

export interface ComposerView extends View {
  focus(): void;
  pickerOpen(): boolean;
}

export type ComposerIntents = Pick<
  ChatIntents,
  'editDraft' | 'send' | 'stop' | 'attachContext' | 'detachChip' | 'toggleThinking' | 'selectModel' | 'showUsage'
>;

export function createComposer(model: ChatModel, intents: ComposerIntents): ComposerView {
  const prompt = h('textarea', { id: 'prompt', class: 'prompt', rows: 1, 'aria-label': 'Message', placeholder: 'Ask Claude about your code…', spellcheck: 'true' });
  const focus = () => prompt.focus();
  const chips = createChips(model, (chipId) => {
    intents.detachChip(chipId);
    focus();
  });
  const picker = createModelPicker(model, intents, focus);
  const costMeter = createCostMeter(model, intents);
  const tool = (id: string, title: string, label: string, iconName: string, attrs: Record<string, string> = {}) =>
    h('button', { class: 'tool-btn', id, title, 'aria-label': title, ...attrs }, icon(iconName), h('span', { class: 'tool-label' }, label));
  const addSelection = tool('add-selection', 'Include the current selection', 'Selection', 'selection');
  const addFile = tool('add-file', 'Include the current file', 'File', 'file');
  const think = tool('think', 'Extended thinking for the next message', 'Think', 'lightbulb', { 'aria-label': 'Extended thinking', 'aria-pressed': 'false' });
  const send = h('button', { class: 'send-btn', id: 'send', title: 'Send (Enter)', 'aria-label': 'Send' }, icon('send'));
  const stop = h('button', { class: 'stop-btn', id: 'stop', title: 'Stop (Escape)', 'aria-label': 'Stop', hidden: true }, icon('debug-stop'));
  const el = h(
    'footer',
    { class: 'composer' },
    h(
      'div',
      { class: 'input-box' },
      chips.el,
      prompt,
      h('div', { class: 'composer-bar' }, h('div', { class: 'tools' }, addSelection, addFile, think), h('div', { class: 'actions' }, picker.el, send, stop)),
    ),
    costMeter.el,
  );

  function fitHeight(): void {
    prompt.style.height = 'auto';
    prompt.style.height = `${Math.min(prompt.scrollHeight, MAX_INPUT_PX)}px`;
  }

  prompt.addEventListener('input', () => {
    fitHeight();
    intents.editDraft(prompt.value);
  });
  prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      intents.send();
    }
  });
  send.addEventListener('click', () => intents.send());
  stop.addEventListener('click', () => intents.stop());
  addSelection.addEventListener('click', () => void intents.attachContext('selection'));
  addFile.addEventListener('click', () => void intents.attachContext('file'));
  think.addEventListener('click', () => intents.toggleThinking());

  let fitted = false;
  function renderInput(): void {
    const { text } = model.draft;
    // Only when the draft changed from outside the input (sent, restored, reloaded): keeps the caret.
    if (prompt.value !== text) prompt.value = text;
    else if (fitted) return;
    fitted = true;
    fitHeight();
  }

  function renderButtons(): void {
    const { chat, draft } = model;
    const answering = chat.pending !== null;
    send.hidden = answering;
    stop.hidden = !answering;
    send.disabled = !draft.text.trim() || !serverAcceptsMessages(chat);
    const m = selectedModel(chat);
    think.setAttribute('aria-pressed', String(draft.thinking));
    think.classList.toggle('on', draft.thinking);
    think.hidden = m ? !m.supportsThinking : false;
  }

  return {
    el,
    render() {
      renderInput();
      renderButtons();
      picker.render();
      chips.render();
      costMeter.render();
    },
    focus,
    pickerOpen: () => picker.isOpen(),
  };
}
