// The one place the chat webview's state changes. It holds the conversation as mirrored from the
// extension (state.ts), the draft of the next message (draft.ts) and the history pane's contents;
// views read it through ChatModel and never write to it. Listeners learn which part changed.
import type { ConversationSummary } from '../../src/protocol.generated';
import { persistedDraft, reduceDraft, type Draft, type DraftAction, type PersistedDraft } from './draft';
import { initialState, reduce, type ChatAction, type ChatViewState } from './state';

export interface HistoryState {
  open: boolean;
  /** null while loading. */
  items: ConversationSummary[] | null;
}

/** The read-only view of the state that views render from. */
export interface ChatModel {
  readonly chat: ChatViewState;
  readonly draft: Draft;
  readonly history: HistoryState;
}

export type ChangedPart = 'chat' | 'draft' | 'history';
/** `before` is the conversation state before the change (the same object unless `part` is 'chat'). */
export type ChangeListener = (part: ChangedPart, before: ChatViewState) => void;

export class ChatStore implements ChatModel {
  private chatState: ChatViewState = initialState();
  private draftState: Draft;
  private historyState: HistoryState = { open: false, items: null };
  private readonly listeners = new Set<ChangeListener>();

  constructor(
    draft: Draft,
    private readonly persist: (draft: PersistedDraft) => void,
  ) {
    this.draftState = draft;
  }

  get chat(): ChatViewState {
    return this.chatState;
  }

  get draft(): Draft {
    return this.draftState;
  }

  get history(): HistoryState {
    return this.historyState;
  }

  subscribe(listener: ChangeListener): void {
    this.listeners.add(listener);
  }

  dispatch(action: ChatAction): void {
    const before = this.chatState;
    this.chatState = reduce(before, action);
    if (this.chatState !== before) this.notify('chat', before);
  }

  /** Returns whether the draft changed. */
  updateDraft(action: DraftAction): boolean {
    const before = this.draftState;
    this.draftState = reduceDraft(before, action);
    if (this.draftState === before) return false;
    const d = this.draftState;
    if (d.text !== before.text || d.chips !== before.chips || d.thinking !== before.thinking) this.persist(persistedDraft(d));
    this.notify('draft', this.chatState);
    return true;
  }

  updateHistory(change: Partial<HistoryState>): void {
    this.historyState = { ...this.historyState, ...change };
    this.notify('history', this.chatState);
  }

  private notify(part: ChangedPart, before: ChatViewState): void {
    for (const listener of this.listeners) listener(part, before);
  }
}
