// The model picker: a button showing the model for the next message, and a listbox of the models with
// their credit multipliers, estimates and locks, driven by mouse or keyboard. Which option is active
// and whether the list is open are this widget's own; the choice goes to the server.
import type { ModelInfo } from '../../../src/protocol.generated';
import { creditsLabel, formatMultiplier, modelName, retirementText } from '../../../src/shared/format';
import { h, icon } from '../../shared/dom';
import type { ChatIntents } from '../intents';
import { optionIndexAfterKey } from '../listboxKeys';
import { orderedModels, selectedModel } from '../state';
import type { ChatModel } from '../store';
import type { View } from './view';

export interface ModelPickerView extends View {
  isOpen(): boolean;
}

export function createModelPicker(model: ChatModel, intents: Pick<ChatIntents, 'selectModel'>, afterChoice: () => void): ModelPickerView {
  const button = h('button', { class: 'model-btn', id: 'model-btn', 'aria-haspopup': 'listbox', 'aria-expanded': 'false', 'aria-controls': 'model-list' });
  const list = h('ul', { class: 'model-list', id: 'model-list', role: 'listbox', tabindex: '-1', 'aria-label': 'Model for the next message', hidden: true });
  const el = h('div', { class: 'model-picker' }, button, list);
  let open = false;
  let active = 0;

  function renderButton(): void {
    const { selected, models } = model.chat;
    const m = selectedModel(model.chat);
    button.replaceChildren(
      icon(selected === 'auto' ? 'sparkle' : 'hubot'),
      h('span', { class: 'model-name' }, modelName(selected, models)),
      ...(m ? [h('span', { class: 'mult' }, formatMultiplier(m.creditMultiplier))] : []),
      icon('chevron-down', 'chev'),
    );
    button.setAttribute('aria-label', `Model for the next message: ${modelName(selected, models)}. Change model`);
    button.title = m ? `${m.name} · ${formatMultiplier(m.creditMultiplier)} credits — ${m.description}` : 'Choose a model';
  }

  function option(m: ModelInfo, i: number): HTMLLIElement {
    const selected = m.id === model.chat.selected;
    const est = model.draft.estimate?.all.find((e) => e.modelId === m.id);
    const retirement = retirementText(m.retiresOn);
    return h(
      'li',
      {
        id: `model-opt-${m.id}`,
        role: 'option',
        class: `model-opt${m.available ? '' : ' locked'}${i === active ? ' active' : ''}`,
        'aria-selected': selected ? 'true' : 'false',
        'aria-disabled': m.available ? undefined : 'true',
        'data-model-id': m.id,
        onclick: (ev: Event) => {
          ev.stopPropagation();
          choose(m);
        },
        onmousemove: () => {
          if (active !== i) {
            active = i;
            renderList();
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
        est && m.available && model.draft.text.trim() ? h('span', { class: 'opt-est' }, `≈ ${creditsLabel(est.estimatedCredits)}`) : null,
      ),
      h('div', { class: 'opt-desc' }, m.description),
      retirement ? h('div', { class: 'opt-retires' }, retirement) : null,
      m.available ? null : h('div', { class: 'opt-lock' }, `${m.unavailableReason ?? 'Not included in your plan'} · Upgrade to unlock`),
    );
  }

  function renderList(): void {
    const models = orderedModels(model.chat.models);
    list.replaceChildren(...models.map(option));
    const current = models[active];
    if (current) {
      list.setAttribute('aria-activedescendant', `model-opt-${current.id}`);
      document.getElementById(`model-opt-${current.id}`)?.scrollIntoView({ block: 'nearest' });
    }
  }

  function openList(): void {
    if (!model.chat.models.length) return;
    open = true;
    active = Math.max(0, orderedModels(model.chat.models).findIndex((m) => m.id === model.chat.selected));
    list.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    renderList();
    list.focus();
  }

  function closeList(focusButton = true): void {
    if (!open) return;
    open = false;
    list.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    if (focusButton) button.focus();
  }

  function choose(m: ModelInfo): void {
    closeList(false);
    afterChoice();
    // Locked models go to the server too: it refuses them with the reason (shown as a notice).
    intents.selectModel(m.id);
  }

  function onListKey(e: KeyboardEvent): void {
    const models = orderedModels(model.chat.models);
    const moved = optionIndexAfterKey(e.key, active, models.length);
    if (moved !== undefined) active = moved;
    else if (e.key === 'Enter' || e.key === ' ') {
      const m = models[active];
      if (m) choose(m);
    } else if (e.key === 'Escape' || e.key === 'Tab') {
      closeList(e.key === 'Escape');
      e.stopPropagation();
      if (e.key === 'Escape') e.preventDefault();
      return;
    } else return;
    e.preventDefault();
    renderList();
  }

  button.addEventListener('click', (e) => {
    e.stopPropagation();
    if (open) closeList();
    else openList();
  });
  button.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
      e.preventDefault();
      openList();
    }
  });
  list.addEventListener('keydown', onListKey);
  document.addEventListener('click', (e) => {
    if (open && !el.contains(e.target as Node)) closeList(false);
  });

  return {
    el,
    render() {
      renderButton();
      if (open) renderList();
    },
    isOpen: () => open,
  };
}
