// The conversation as the chat webview knows it, and its reducer (pure, unit-tested). The server holds
// the truth; this is the view's copy of it, fed by snapshots and by the streaming events of the answer
// in flight. The draft of the next message is draft.ts; store.ts holds both.
import type { ContextItem, ConversationResult, ModelId, ModelInfo, TurnInfo, UsageReport } from '../../src/protocol.generated';
import type { UiError } from '../../src/shared/errors';
import type { ChatEvents, ChatSnapshot, PendingAnswer, ServerStatus } from '../../src/shared/webviewProtocol';

export interface ViewTurn {
  id: string;
  role: 'user' | 'assistant';
  text: string;
  thinking: string | null;
  modelId: string | null;
  routedModel: string | null;
  routeReason: string | null;
  credits: number;
  status: TurnInfo['status'] | 'streaming';
  error: string | null;
  retryOf: string | null;
  context: ContextItem[];
  /** Auto fell back to another model while answering. */
  fallback?: boolean;
  /** The user's thumbs on a stored answer. */
  rating?: 'up' | 'down' | null;
  /** The answer's API cost at list prices, when the server knows it (own key). */
  costUsd?: number | null;
  /** Stopped while signed in: the gateway's charge has not come yet (`credits` is not it). */
  chargePending?: boolean;
}

/** An error shown inline at the end of the transcript, with what the user can do. */
export interface InlineError {
  error: UiError;
  /** What was being sent, so Retry can send it again. */
  prompt: string;
  context: ContextItem[];
  /** The failed answer the server recorded: Retry re-runs it (`switchboard/retry`) instead of re-sending. */
  retryOf: string | null;
  /** The model the message asked for (Retry uses it again). */
  modelId: string;
}

export interface ChatViewState {
  workspaceUri: string | null;
  server: ServerStatus;
  hasApiKey: boolean;
  models: ModelInfo[];
  selected: ModelId;
  usage: UsageReport | null;
  conversationId: string | null;
  title: string | null;
  turns: ViewTurn[];
  pending: PendingAnswer | null;
  inlineError: InlineError | null;
  notice: { message: string; error?: UiError } | null;
  thinkingBudgetTokens: number;
  /** Charges that came after their turn's request ended, by turn id (null: pending). */
  charges: Record<string, number | null>;
}

export type ChatAction =
  | { [K in keyof ChatEvents]: { type: K; data: ChatEvents[K] } }[keyof ChatEvents]
  | { type: 'local/dismissError' }
  /** Clear the error and take back the prompt that failed (it is about to be sent again). */
  | { type: 'local/retractFailed' }
  | { type: 'local/dismissNotice' };

export function initialState(): ChatViewState {
  return {
    workspaceUri: null,
    server: { state: 'starting' },
    hasApiKey: false,
    models: [],
    selected: 'auto',
    usage: null,
    conversationId: null,
    title: null,
    turns: [],
    pending: null,
    inlineError: null,
    notice: null,
    thinkingBudgetTokens: 8000,
    charges: {},
  };
}

export function turnFromInfo(t: TurnInfo, charges: Record<string, number | null> = {}): ViewTurn {
  return withCharge(turnFromStored(t), charges);
}

/** `t` with its charge as known since it was read: pending (null) or the gateway's figure. */
function withCharge(t: ViewTurn, charges: Record<string, number | null>): ViewTurn {
  const credits = charges[t.id];
  if (credits === undefined) return t;
  return credits === null ? { ...t, chargePending: true } : { ...t, credits, chargePending: false };
}

function turnFromStored(t: TurnInfo): ViewTurn {
  return {
    id: t.id,
    role: t.role,
    text: t.text,
    thinking: t.thinking,
    modelId: t.modelId,
    routedModel: t.routedModel,
    routeReason: t.routeReason,
    credits: t.credits,
    status: t.status,
    error: t.error,
    retryOf: t.retryOf,
    context: t.context ?? [],
    rating: t.rating ?? null,
    costUsd: t.costUsd ?? null,
  };
}

function loadConversation(state: ChatViewState, c: ConversationResult | null): ChatViewState {
  if (!c) return { ...state, conversationId: null, title: null, turns: [] };
  const turns = c.turns.map((t) => turnFromInfo(t, state.charges));
  return { ...state, conversationId: c.id, title: c.title, turns };
}

function fromSnapshot(s: ChatSnapshot): ChatViewState {
  const base: ChatViewState = {
    ...initialState(),
    workspaceUri: s.workspaceUri,
    server: s.server,
    hasApiKey: s.hasApiKey,
    models: s.models,
    selected: s.selected,
    usage: s.usage,
    pending: s.pending,
    thinkingBudgetTokens: s.thinkingBudgetTokens,
    charges: s.charges ?? {},
  };
  return loadConversation(base, s.conversation);
}

const isCurrent = (state: ChatViewState, requestId: string) => state.pending?.requestId === requestId;

export function reduce(state: ChatViewState, action: ChatAction): ChatViewState {
  switch (action.type) {
    case 'state/snapshot':
      return fromSnapshot(action.data);
    case 'state/server':
      return { ...state, server: action.data.server, hasApiKey: action.data.hasApiKey };
    case 'state/models':
      return { ...state, models: action.data.models, selected: action.data.selected };
    case 'state/selected':
      return {
        ...state,
        selected: action.data.selected,
        notice: action.data.notice ? { message: action.data.notice } : state.notice,
      };
    case 'state/usage':
      return { ...state, usage: action.data };
    case 'conversation/loaded': {
      // A reload from the server replaces the transcript, except while an answer is streaming into it.
      const next = loadConversation(state, action.data);
      return state.pending && action.data?.id !== state.conversationId ? { ...next, pending: null } : next;
    }
    case 'chat/started':
      return { ...state, pending: action.data, inlineError: null, notice: null };
    case 'chat/route': {
      if (!state.pending || !isCurrent(state, action.data.requestId)) return state;
      return {
        ...state,
        pending: { ...state.pending, route: action.data.route, fallback: state.pending.fallback || action.data.route.fallback },
      };
    }
    case 'chat/text': {
      if (!state.pending || !isCurrent(state, action.data.requestId)) return state;
      return { ...state, pending: { ...state.pending, text: state.pending.text + action.data.text } };
    }
    case 'chat/thinking': {
      if (!state.pending || !isCurrent(state, action.data.requestId)) return state;
      return { ...state, pending: { ...state.pending, thinking: state.pending.thinking + action.data.text } };
    }
    case 'chat/finished': {
      if (!state.pending || !isCurrent(state, action.data.requestId)) return state;
      const p = state.pending;
      const r = action.data.result;
      const turns = [...state.turns];
      if (!p.retryOf) turns.push(userTurn(p));
      turns.push({
        id: r.turnId,
        role: 'assistant',
        text: r.text,
        thinking: r.thinking,
        modelId: r.modelId,
        routedModel: r.routedModel,
        routeReason: r.routeReason,
        credits: r.credits,
        status: 'complete',
        error: null,
        retryOf: p.retryOf,
        context: [],
        fallback: p.fallback,
        rating: null,
        costUsd: r.costUsd ?? null,
      });
      return { ...state, conversationId: r.conversationId, turns, pending: null };
    }
    case 'chat/cancelled': {
      if (!state.pending || !isCurrent(state, action.data.requestId)) return state;
      const p = state.pending;
      const turns = [...state.turns];
      if (!p.retryOf) turns.push(userTurn(p));
      turns.push({
        id: `${p.requestId}-answer`,
        role: 'assistant',
        text: p.text,
        thinking: p.thinking || null,
        modelId: p.route?.modelId ?? p.modelId,
        routedModel: p.route?.routedModel ?? null,
        routeReason: p.route?.routeReason ?? null,
        credits: 0,
        status: 'cancelled',
        error: null,
        retryOf: p.retryOf,
        context: [],
        fallback: p.fallback,
        chargePending: p.route?.turnId ? state.charges[p.route.turnId] === null : false,
      });
      return { ...state, turns, pending: null };
    }
    case 'chat/charge': {
      const charges = { ...state.charges, [action.data.turnId]: action.data.credits };
      return { ...state, charges, turns: state.turns.map((t) => withCharge(t, charges)) };
    }
    case 'chat/failed': {
      if (!state.pending || !isCurrent(state, action.data.requestId)) return state;
      const p = state.pending;
      const { conversation, retryTurnId, error } = action.data;
      const inlineError: InlineError = { error, prompt: p.prompt, context: p.context, retryOf: retryTurnId ?? p.retryOf, modelId: p.modelId };
      if (conversation) {
        // the server recorded the failed exchange: show its transcript
        return { ...loadConversation(state, conversation), pending: null, inlineError };
      }
      const turns = p.retryOf ? state.turns : [...state.turns, userTurn(p)];
      return { ...state, turns, pending: null, inlineError };
    }
    case 'chat/rated': {
      const { turnId, rating } = action.data;
      return { ...state, turns: state.turns.map((t) => (t.id === turnId ? { ...t, rating } : t)) };
    }
    case 'notice':
      return { ...state, notice: action.data };
    case 'local/dismissError':
      return { ...state, inlineError: null };
    case 'local/retractFailed': {
      const last = state.turns.at(-1);
      const orphan = last && last.role === 'user' && last.id.endsWith('-prompt');
      return { ...state, turns: orphan ? state.turns.slice(0, -1) : state.turns, inlineError: null };
    }
    case 'local/dismissNotice':
      return { ...state, notice: null };
    case 'context/added':
    case 'ui/focus':
    case 'ui/history':
      return state; // handled by the view, not state
    default: {
      const never: never = action;
      return never;
    }
  }
}

function userTurn(p: PendingAnswer): ViewTurn {
  return {
    id: `${p.requestId}-prompt`,
    role: 'user',
    text: p.prompt,
    thinking: null,
    modelId: null,
    routedModel: null,
    routeReason: null,
    credits: 0,
    status: 'complete',
    error: null,
    retryOf: null,
    context: p.context,
  };
}

/**
 * The transcript as displayed: the stored turns, then the prompt and answer in flight. A failed answer
 * is left out once it has been retried, or while the inline error card stands for it.
 */
export function displayedTurns(state: ChatViewState): ViewTurn[] {
  const retried = new Set(state.turns.map((t) => t.retryOf).filter((id): id is string => Boolean(id)));
  const hidden = (t: ViewTurn) =>
    t.role === 'assistant' && t.status === 'failed' && (retried.has(t.id) || state.inlineError?.retryOf === t.id || state.pending?.retryOf === t.id);
  const shown = state.turns.filter((t) => !hidden(t));
  const p = state.pending;
  if (!p) return shown;
  const out = [...shown];
  if (!p.retryOf) out.push(userTurn(p));
  out.push({
    id: `${p.requestId}-answer`,
    role: 'assistant',
    text: p.text,
    thinking: p.thinking || null,
    modelId: p.route?.modelId ?? p.modelId,
    routedModel: p.route?.routedModel ?? null,
    routeReason: p.route?.routeReason ?? null,
    credits: 0,
    status: 'streaming',
    error: null,
    retryOf: p.retryOf,
    context: [],
    fallback: p.fallback,
  });
  return out;
}

/** The model the next message goes to, when the server has listed it. */
export function selectedModel(state: Pick<ChatViewState, 'models' | 'selected'>): ModelInfo | undefined {
  return state.models.find((m) => m.id === state.selected);
}

/** A failed or stopped server refuses messages (a starting one queues them). */
export function serverAcceptsMessages(state: Pick<ChatViewState, 'server'>): boolean {
  return state.server.state !== 'failed' && state.server.state !== 'stopped';
}

/** Picker entries, Auto first (then as listed by the server). */
export function orderedModels(models: readonly ModelInfo[]): ModelInfo[] {
  return [...models].sort((a, b) => (a.id === 'auto' ? -1 : b.id === 'auto' ? 1 : 0));
}

/**
 * Whether "Retry with a stronger model" is offered on an answer: only on the latest answer (the server
 * re-answers the conversation's last prompt), not while streaming, and not when it came from the top model.
 */
export function canRetryStronger(turn: ViewTurn, turns: readonly ViewTurn[], models: readonly ModelInfo[]): boolean {
  if (turn.role !== 'assistant' || turn.status === 'streaming' || turn.id.endsWith('-answer')) return false;
  const lastAnswer = [...turns].reverse().find((t) => t.role === 'assistant');
  if (lastAnswer?.id !== turn.id || turns.at(-1)?.role !== 'assistant') return false;
  const answered = turn.routedModel ?? turn.modelId;
  // the models the plan allows (the server picks which is "stronger"; this only hides a dead end)
  const concrete = models.filter((m) => m.id !== 'auto' && m.available);
  if (!concrete.length || !answered) return true;
  const top = Math.max(...concrete.map((m) => m.creditMultiplier));
  const current = models.find((m) => m.id === answered);
  return !current || current.creditMultiplier < top;
}

/** Whether thumbs are offered on an answer: a stored one (not streaming, not a local placeholder). */
export function canRate(turn: ViewTurn): boolean {
  return turn.role === 'assistant' && (turn.status === 'complete' || turn.status === 'cancelled') && !turn.id.endsWith('-answer');
}
