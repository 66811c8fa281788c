// The usage view: plan and credits at a glance, credits per day (stacked by model) and totals per model.
import type { ModelInfo, UsageReport } from '../../src/protocol.generated';
import { answeredByLabel, creditsLabel, formatCredits, formatDate, formatDay, formatUsd, usageLevel, usedFraction } from '../../src/shared/format';
import { accountLine, accountOf, isHosted } from '../../src/shared/account';
import { overageSummary } from '../../src/shared/presentation';
import type { AccountAction, UsageEvents, UsageRequests } from '../../src/shared/webviewProtocol';
import { h, icon } from '../shared/dom';
import { Messenger } from '../shared/messenger';
import { dailyStacks, stackedBarChart } from './chart';

const messenger = new Messenger<UsageRequests, UsageEvents>();
const app = document.getElementById('app')!;
let usage: UsageReport | null = null;
let models: ModelInfo[] = [];

function daysUntil(iso: string): string {
  const days = Math.ceil((new Date(iso).getTime() - Date.now()) / 86_400_000);
  return days <= 0 ? 'today' : days === 1 ? 'in 1 day' : `in ${days} days`;
}

function card(title: string, ...children: (Node | string | null)[]): HTMLElement {
  return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

/** Signed in, the account's email (the gateway's account id means nothing to a person). */
function accountName(u: UsageReport): string | null {
  return accountOf(u).email ?? u.account;
}

function accountButton(action: AccountAction, label: string, codicon: string, secondary = true): HTMLElement {
  return h(
    'button',
    { class: secondary ? 'btn secondary' : 'btn primary', 'data-action': action, onclick: () => void messenger.request('account/run', { action }) },
    icon(codicon),
    ` ${label}`,
  );
}

/** Who the figures belong to: the gateway's account (with its links) or this machine's ledger. */
function accountCard(u: UsageReport): HTMLElement {
  const info = accountOf(u);
  const hosted = isHosted(info);
  const actions = hosted
    ? [accountButton('upgrade', 'Upgrade', 'rocket', false), accountButton('manageAccount', 'Manage account', 'account'), accountButton('signOut', 'Sign out', 'sign-out')]
    : [accountButton('signIn', 'Sign in to Switchboard Cloud', 'sign-in', false)];
  return h(
    'section',
    { class: `card account ${hosted ? 'hosted' : 'local'}`, id: 'account' },
    h('div', { class: 'account-line' }, icon(hosted ? 'cloud' : 'device-desktop'), ' ', h('span', { id: 'account-text' }, accountLine(info))),
    h('div', { class: 'account-actions' }, ...actions),
  );
}

function render(): void {
  if (!usage) {
    app.replaceChildren(h('div', { class: 'empty' }, icon('loading', 'codicon-modifier-spin'), ' Loading usage…'));
    return;
  }
  const u = usage;
  const frac = usedFraction(u);
  const level = usageLevel(u);
  const bar = h('div', { class: `progress level-${level}`, role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(Math.round(frac * 100)), 'aria-label': 'Included credits used' });
  const fill = h('div', { class: 'progress-fill' });
  fill.style.width = `${Math.min(100, frac * 100)}%`;
  bar.append(fill);

  const header = h(
    'header',
    { class: 'usage-header' },
    h('div', {}, h('h1', {}, 'Switchboard usage'), h('div', { class: 'sub' }, `${u.planName} plan${accountName(u) ? ` · ${accountName(u)}` : ''} · ${formatDate(u.periodStart)} – ${formatDate(u.periodEnd)}`)),
    h('button', { class: 'btn secondary', onclick: () => void messenger.request('model/select', {}) }, icon('chip'), ' Select model'),
  );

  const summary = h(
    'section',
    { class: 'summary' },
    h('div', { class: 'stat' }, h('div', { class: 'stat-value', id: 'remaining' }, formatCredits(Math.max(0, u.remainingCredits))), h('div', { class: 'stat-label' }, 'credits left')),
    h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, formatCredits(u.usedCredits)), h('div', { class: 'stat-label' }, `used of ${formatCredits(u.includedCredits)} included`)),
    h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, formatDay(u.periodEnd)), h('div', { class: 'stat-label' }, `next reset (${daysUntil(u.periodEnd)})`)),
    h(
      'div',
      { class: 'stat', id: 'overage' },
      h('div', { class: 'stat-value small' }, u.overage.enabled ? `On${u.overage.budgetUsd != null ? ` · ${formatUsd(u.overage.budgetUsd)} cap` : ''}` : u.overage.available ? 'Off' : 'Not available'),
      h('div', { class: 'stat-label' }, u.overage.enabled ? `${creditsLabel(u.overage.credits)} (${formatUsd(u.overage.costUsd)}) past the plan` : 'overage'),
      u.overage.available
        ? h('button', { class: 'link-btn', onclick: () => void messenger.request('overage/set', { enabled: !u.overage.enabled }) }, u.overage.enabled ? 'Turn off' : 'Enable overage…')
        : null,
    ),
  );

  const alerts = u.alerts.length ? h('div', { class: 'alerts', role: 'status' }, ...u.alerts.map((a) => h('div', { class: 'alert' }, icon('warning'), h('span', {}, a)))) : null;
  const reason = u.planReason ? h('p', { class: 'plan-reason' }, icon('info'), ' ', u.planReason) : null;

  const { series, days } = dailyStacks(u, models);
  const chartBox = h('div', { class: 'chart-box' });
  // Draw at the box's real width so the axis labels keep their size (re-drawn on resize).
  const drawChart = () => {
    const width = Math.max(320, Math.round(chartBox.clientWidth || Math.min(880, document.body.clientWidth) - 80));
    chartBox.innerHTML = stackedBarChart(series, days, { width, height: 220, today: new Date().toISOString().slice(0, 10) });
  };
  redrawChart = drawChart;
  const legend = h('div', { class: 'legend' }, ...series.map((s) => h('span', { class: 'legend-item' }, h('span', { class: `swatch ${s.className}` }), s.label)));

  const total = u.byModel.reduce((s, m) => s + m.credits, 0);
  const rows = [...u.byModel].sort((a, b) => b.credits - a.credits);
  const table = rows.length
    ? h(
        'table',
        { class: 'by-model' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Model'), h('th', { scope: 'col', class: 'num' }, 'Messages'), h('th', { scope: 'col', class: 'num' }, 'Credits'), h('th', { scope: 'col' }, 'Share'))),
        h(
          'tbody',
          {},
          ...rows.map((m) => {
            const share = total > 0 ? m.credits / total : 0;
            const shareBar = h('div', { class: 'share' }, h('div', { class: 'share-fill' }));
            (shareBar.firstChild as HTMLElement).style.width = `${Math.round(share * 100)}%`;
            return h(
              'tr',
              {},
              h('td', {}, answeredByLabel(m.modelId, m.routedModel, models)),
              h('td', { class: 'num' }, String(m.turns)),
              h('td', { class: 'num' }, formatCredits(m.credits)),
              h('td', { class: 'share-cell' }, shareBar, h('span', { class: 'share-pct' }, `${Math.round(share * 100)}%`)),
            );
          }),
        ),
        h('tfoot', {}, h('tr', {}, h('td', {}, 'Total'), h('td', { class: 'num' }, String(rows.reduce((s, m) => s + m.turns, 0))), h('td', { class: 'num' }, formatCredits(total)), h('td', {}))),
      )
    : h('p', { class: 'empty' }, 'No messages yet this period.');

  app.replaceChildren(
    h(
      'div',
      { class: 'usage' },
      header,
      accountCard(u),
      alerts,
      h('section', { class: 'card' }, bar, h('div', { class: 'progress-caption' }, `${Math.round(frac * 100)}% of the included credits used · ${overageSummary(u)}`), reason),
      summary,
      card('Credits per day', chartBox, legend),
      card('Totals per model', table),
    ),
  );
  drawChart();
}

let redrawChart: (() => void) | undefined;
let resizeTimer: ReturnType<typeof setTimeout> | undefined;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => redrawChart?.(), 100);
});

messenger.on('state/usage', (u) => {
  usage = u;
  render();
});
messenger.on('state/models', (m) => {
  models = m.models;
  render();
});

void messenger.request('init', {}).then((r) => {
  usage = r.usage;
  models = r.models;
  render();
});
render();
