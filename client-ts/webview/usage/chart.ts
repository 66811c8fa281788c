// A hand-written SVG stacked bar chart of credits per day (pure: returns markup; unit-tested).
import type { ModelInfo, UsageReport } from '../../src/protocol.generated';
import { answeredByLabel, formatCredits, formatDay } from '../../src/shared/format';

export interface Series {
  key: string;
  label: string;
  /** CSS class that sets the fill (colours come from VS Code's chart theme variables). */
  className: string;
}

export interface DayStack {
  date: string;
  /** series key → credits */
  values: Record<string, number>;
}

const PALETTE = ['series-blue', 'series-purple', 'series-green', 'series-orange', 'series-yellow', 'series-red'];

const seriesKey = (modelId: string, routedModel?: string | null) => (modelId === 'auto' && routedModel ? `auto>${routedModel}` : modelId);

/**
 * Every day of the period (zero-filled), stacked by model when the server breaks days down by
 * model; otherwise a single "Credits" series.
 */
export function dailyStacks(usage: UsageReport, models: readonly Pick<ModelInfo, 'id' | 'name'>[] = []): { series: Series[]; days: DayStack[] } {
  const byDate = new Map(usage.daily.map((d) => [d.date.slice(0, 10), d]));
  const days: DayStack[] = [];
  const start = new Date(`${usage.periodStart.slice(0, 10)}T00:00:00Z`);
  const end = new Date(`${usage.periodEnd.slice(0, 10)}T00:00:00Z`);
  const dates: string[] = [];
  if (!Number.isNaN(start.getTime()) && !Number.isNaN(end.getTime()) && end > start) {
    for (let t = start.getTime(); t < end.getTime() && dates.length < 62; t += 86_400_000) dates.push(new Date(t).toISOString().slice(0, 10));
  } else {
    dates.push(...[...byDate.keys()].sort());
  }
  for (const d of byDate.keys()) if (!dates.includes(d)) dates.push(d);
  dates.sort();

  const seriesMap = new Map<string, Series>();
  const addSeries = (key: string, label: string) => {
    if (!seriesMap.has(key)) seriesMap.set(key, { key, label, className: PALETTE[seriesMap.size % PALETTE.length]! });
  };
  // Series order follows the month's totals per model, biggest first, so colours match the table.
  for (const m of [...usage.byModel].sort((a, b) => b.credits - a.credits)) {
    addSeries(seriesKey(m.modelId, m.routedModel), answeredByLabel(m.modelId, m.routedModel, models));
  }
  let stacked = false;
  for (const date of dates) {
    const entry = byDate.get(date);
    const values: Record<string, number> = {};
    if (entry && entry.byModel.length) {
      stacked = true;
      for (const b of entry.byModel) {
        const key = seriesKey(b.modelId, b.routedModel);
        addSeries(key, answeredByLabel(b.modelId, b.routedModel, models));
        values[key] = (values[key] ?? 0) + b.credits;
      }
    } else if (entry) {
      values.total = entry.credits;
    }
    days.push({ date, values });
  }
  if (!stacked) {
    return { series: [{ key: 'total', label: 'Credits', className: 'series-blue' }], days };
  }
  return { series: [...seriesMap.values()], days };
}

/** A "nice" axis maximum and step: 0, 2, 4, 6, 8 … */
export function niceScale(max: number, ticks = 4): { max: number; step: number } {
  if (!(max > 0)) return { max: 1, step: 0.25 };
  const rough = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(rough));
  const norm = rough / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  const clean = (v: number) => Number(v.toPrecision(12));
  return { max: clean(Math.ceil(max / step - 1e-9) * step), step: clean(step) };
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function stackedBarChart(series: readonly Series[], days: readonly DayStack[], opts: { width?: number; height?: number; today?: string } = {}): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 220;
  const pad = { top: 12, right: 8, bottom: 26, left: 40 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const totals = days.map((d) => series.reduce((s, x) => s + (d.values[x.key] ?? 0), 0));
  const { max, step } = niceScale(Math.max(0, ...totals));
  const y = (v: number) => pad.top + plotH - (v / max) * plotH;
  const slot = plotW / Math.max(1, days.length);
  const barW = Math.max(2, Math.min(28, slot * 0.7));
  const parts: string[] = [];
  parts.push(
    `<svg class="chart" viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="Credits used per day this period" xmlns="http://www.w3.org/2000/svg">`,
  );
  for (let i = 0; i * step <= max + 1e-9; i++) {
    const v = Number((i * step).toPrecision(12));
    const yy = y(v).toFixed(1);
    parts.push(`<line class="grid" x1="${pad.left}" x2="${width - pad.right}" y1="${yy}" y2="${yy}"/>`);
    parts.push(`<text class="axis" x="${pad.left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${esc(formatCredits(v))}</text>`);
  }
  const labelEvery = Math.max(1, Math.ceil(days.length / 10));
  days.forEach((d, i) => {
    const x = pad.left + i * slot + (slot - barW) / 2;
    let acc = 0;
    const tip: string[] = [];
    for (const s of series) {
      const v = d.values[s.key] ?? 0;
      if (v <= 0) continue;
      const y0 = y(acc);
      const y1 = y(acc + v);
      acc += v;
      tip.push(`${s.label}: ${formatCredits(v)}`);
      parts.push(
        `<rect class="bar ${s.className}" x="${x.toFixed(1)}" y="${y1.toFixed(1)}" width="${barW.toFixed(1)}" height="${Math.max(0.5, y0 - y1).toFixed(1)}" rx="1.5"><title>${esc(`${formatDay(d.date)} · ${s.label}: ${formatCredits(v)} credits`)}</title></rect>`,
      );
    }
    if (opts.today === d.date) {
      parts.push(`<rect class="today" x="${(pad.left + i * slot).toFixed(1)}" y="${pad.top}" width="${slot.toFixed(1)}" height="${plotH}"><title>Today</title></rect>`);
    }
    if (i % labelEvery === 0) {
      parts.push(`<text class="axis" x="${(x + barW / 2).toFixed(1)}" y="${height - 8}" text-anchor="middle">${esc(formatDay(d.date))}</text>`);
    }
  });
  parts.push(`<line class="baseline" x1="${pad.left}" x2="${width - pad.right}" y1="${y(0).toFixed(1)}" y2="${y(0).toFixed(1)}"/>`);
  parts.push('</svg>');
  return parts.join('');
}
