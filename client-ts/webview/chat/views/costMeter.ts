// The row under the input: the draft's estimated credits, the context-window meter and the credits
// left (a link to the usage view). The numbers come from costPreview.ts.
import { h } from '../../shared/dom';
import { contextMeter, creditsLeft, estimateLine } from '../costPreview';
import type { ChatIntents } from '../intents';
import { selectedModel } from '../state';
import type { ChatModel } from '../store';
import type { View } from './view';

export function createCostMeter(model: ChatModel, intents: Pick<ChatIntents, 'showUsage'>): View {
  const estimate = h('span', { class: 'estimate', id: 'estimate', 'aria-live': 'polite' });
  const fill = h('div', { class: 'meter-fill' });
  const meter = h(
    'div',
    { class: 'meter', id: 'context-meter', role: 'meter', 'aria-label': 'Context window used', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' },
    fill,
  );
  const meterLabel = h('span', { class: 'meter-label', id: 'context-label' });
  const credits = h('button', { class: 'credits-left link-btn', id: 'credits-left', title: 'Show usage', onclick: () => intents.showUsage() });
  const el = h('div', { class: 'meter-row' }, estimate, h('span', { class: 'spacer' }), meter, meterLabel, h('span', { class: 'sep', 'aria-hidden': 'true' }, '·'), credits);

  function renderEstimate(): void {
    const { chat, draft } = model;
    const line = estimateLine(draft.estimate, draft.text, chat.pending !== null, chat.models);
    estimate.textContent = line.text;
    estimate.title = line.title;
    estimate.classList.toggle('warn', line.warn);
  }

  function renderMeter(): void {
    const m = contextMeter(model.draft.estimate, selectedModel(model.chat));
    fill.style.width = m.fillWidth;
    meter.classList.toggle('warn', m.level === 'warn');
    meter.classList.toggle('error', m.level === 'error');
    meter.setAttribute('aria-valuenow', String(m.percent));
    meter.title = m.title;
    meterLabel.textContent = m.label;
  }

  function renderCredits(): void {
    const u = model.chat.usage;
    credits.hidden = !u;
    if (!u) return;
    const left = creditsLeft(u);
    credits.textContent = left.text;
    credits.className = `credits-left link-btn level-${left.level}`;
  }

  return {
    el,
    render() {
      renderEstimate();
      renderMeter();
      renderCredits();
    },
  };
}
