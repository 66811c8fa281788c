// The next message as the user composes it: its text, the context chips, the Think toggle and the
// server's estimate of what it will cost. A pure reducer (unit-tested); the store persists it.
import type { ContextItem } from '../../src/protocol.generated';
import { lineSpanLabel } from '../../src/shared/format';
import type { ContextChip, EstimateView } from '../../src/shared/webviewProtocol';

export interface Draft {
  text: string;
  chips: ContextChip[];
  thinking: boolean;
  /** The latest estimate for this draft: null until one arrives, and again after sending. */
  estimate: EstimateView | null;
}

/** What survives a reload of the webview (kept in VS Code's webview state; the names are stored). */
export interface PersistedDraft {
  draft: string;
  chips: ContextChip[];
  thinking: boolean;
}

export type DraftAction =
  | { type: 'edit'; text: string }
  | { type: 'attach'; chip: ContextChip }
  | { type: 'detach'; chipId: string }
  | { type: 'toggleThinking' }
  | { type: 'estimated'; estimate: EstimateView | null }
  | { type: 'sent' }
  /** Put a message that could not be sent back, unless the user has started a new one. */
  | { type: 'restore'; prompt: string; context: ContextItem[] };

export function draftFromSaved(saved: PersistedDraft | undefined): Draft {
  return { text: saved?.draft ?? '', chips: saved?.chips ?? [], thinking: saved?.thinking ?? false, estimate: null };
}

export function persistedDraft(draft: Draft): PersistedDraft {
  return { draft: draft.text, chips: draft.chips, thinking: draft.thinking };
}

export function reduceDraft(draft: Draft, action: DraftAction): Draft {
  switch (action.type) {
    case 'edit':
      return { ...draft, text: action.text };
    case 'attach':
      return draft.chips.some((c) => sameContext(c.item, action.chip.item)) ? draft : { ...draft, chips: [...draft.chips, action.chip] };
    case 'detach':
      return { ...draft, chips: draft.chips.filter((c) => c.id !== action.chipId) };
    case 'toggleThinking':
      return { ...draft, thinking: !draft.thinking };
    case 'estimated':
      return { ...draft, estimate: action.estimate };
    case 'sent':
      return { ...draft, text: '', chips: [], estimate: null };
    case 'restore':
      if (draft.text.trim()) return draft;
      return { ...draft, text: action.prompt, chips: chipsFromContext(action.context) };
    default: {
      const never: never = action;
      return never;
    }
  }
}

function sameContext(a: ContextItem, b: ContextItem): boolean {
  return a.uri === b.uri && JSON.stringify(a.range) === JSON.stringify(b.range);
}

/** "fib.py:1-10" for a selection, "fib.py" for a whole file. */
export function contextLabel(item: ContextItem): string {
  const name = decodedName(item.uri.split('/').pop() ?? item.uri);
  return item.range ? `${name}:${lineSpanLabel(item.range)}` : name;
}

/** A malformed escape (`%E0%A4%A`, a lone `%`) shows as it is rather than failing the whole message. */
function decodedName(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function chipsFromContext(context: ContextItem[]): ContextChip[] {
  return context.map((item, i) => ({ id: `restored-${i}`, kind: item.range ? 'selection' : 'file', label: contextLabel(item), item }));
}
