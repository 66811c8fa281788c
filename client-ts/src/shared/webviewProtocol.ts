// The messages between the extension host and the chat / usage webviews, declared once (like
// Continue's core/protocol): both sides compile against these maps, so a renamed field or a missing
// handler is a type error. Pure types + tiny helpers: no `vscode`, no DOM.
import type {
  ChatResult,
  ContextItem,
  ConversationResult,
  ConversationSummary,
  ModelEstimate,
  ModelId,
  ModelInfo,
  RouteReport,
  UsageReport,
} from '../protocol.generated';
import type { ErrorActionId, UiError } from './errors';

export type ServerStatus =
  | { state: 'starting'; detail?: string }
  | { state: 'running' }
  | { state: 'failed'; message: string }
  | { state: 'stopped' };

/** A piece of context attached to the next message, as shown in a chip. */
export interface ContextChip {
  id: string;
  kind: 'selection' | 'file';
  /** "extension.ts:12-30" or "extension.ts". */
  label: string;
  item: ContextItem;
}

/** An answer that is still streaming. */
export interface PendingAnswer {
  requestId: string;
  /** The prompt sent ('' for a retry, which re-answers an existing turn). */
  prompt: string;
  context: ContextItem[];
  /** The turn being retried, for a retry. */
  retryOf: string | null;
  /** The model asked for (the selection at send time, or the retry's model). */
  modelId: string;
  route: RouteReport | null;
  /** True once Auto fell back to another model. */
  fallback: boolean;
  text: string;
  thinking: string;
}

export interface ChatSnapshot {
  workspaceUri: string | null;
  server: ServerStatus;
  /** Whether an API key is stored (the key itself never reaches a webview). */
  hasApiKey: boolean;
  models: ModelInfo[];
  selected: ModelId;
  usage: UsageReport | null;
  conversation: ConversationResult | null;
  pending: PendingAnswer | null;
  thinkingBudgetTokens: number;
  /**
   * Charges known since the conversation was read, by turn id: a stopped signed-in turn's charge comes
   * later (`switchboard/turnCharged`); null while it is pending.
   */
  charges?: Record<string, number | null>;
}

/** The estimate for the selected model, with the conversation's context-window use. */
export interface EstimateView {
  estimate: ModelEstimate;
  /** Estimates of every model (for the picker's hover). */
  all: ModelEstimate[];
}

/** Requests from the chat webview to the extension: method → params and result. */
export interface ChatRequests {
  init: { params: Record<string, never>; result: ChatSnapshot };
  'chat/send': { params: { prompt: string; context: ContextItem[]; thinking: boolean; modelId?: string }; result: void };
  'chat/stop': { params: Record<string, never>; result: void };
  'chat/retry': { params: { turnId: string; modelId?: string }; result: void };
  'chat/new': { params: Record<string, never>; result: void };
  /** Thumbs up or down on a stored answer of the open conversation; null clears it. */
  'chat/rate': { params: { turnId: string; rating: 'up' | 'down' | null }; result: void };
  'model/select': { params: { modelId: string }; result: void };
  estimate: { params: { prompt: string; context: ContextItem[] }; result: EstimateView | null };
  'history/list': { params: Record<string, never>; result: ConversationSummary[] };
  'history/open': { params: { conversationId: string }; result: void };
  'history/delete': { params: { conversationId: string }; result: ConversationSummary[] };
  'context/add': { params: { kind: 'selection' | 'file' }; result: ContextChip | null };
  'code/copy': { params: { code: string }; result: void };
  'code/insert': { params: { code: string }; result: boolean };
  'action/run': {
    params: { action: ErrorActionId; modelId?: string; prompt?: string; context?: ContextItem[]; retryOf?: string | null };
    result: void;
  };
}

/** Events from the extension to the chat webview: event → data. */
export interface ChatEvents {
  'state/snapshot': ChatSnapshot;
  'state/server': { server: ServerStatus; hasApiKey: boolean };
  'state/models': { models: ModelInfo[]; selected: ModelId };
  'state/selected': { selected: ModelId; notice: string | null };
  'state/usage': UsageReport;
  'conversation/loaded': ConversationResult | null;
  'chat/started': PendingAnswer;
  'chat/route': { requestId: string; route: RouteReport };
  'chat/text': { requestId: string; text: string };
  'chat/thinking': { requestId: string; text: string };
  'chat/finished': { requestId: string; result: ChatResult };
  /**
   * The answer failed. When the server recorded the failed exchange, `conversation` is its reloaded
   * transcript and `retryTurnId` the failed answer, which Retry re-runs with `switchboard/retry`.
   */
  'chat/failed': { requestId: string; error: UiError; conversation: ConversationResult | null; retryTurnId: string | null };
  'chat/cancelled': { requestId: string };
  /**
   * A turn's charge, known after its request ended (a stopped signed-in turn: `switchboard/turnCharged`);
   * `credits: null` while it is pending.
   */
  'chat/charge': { turnId: string; credits: number | null };
  /** The server stored a rating (`switchboard/feedback`). */
  'chat/rated': { turnId: string; rating: 'up' | 'down' | null };
  /** A transient message (or an error not tied to a message, e.g. from selecting a model). */
  notice: { message: string; error?: UiError };
  'context/added': ContextChip;
  'ui/focus': Record<string, never>;
  'ui/history': Record<string, never>;
}

/** Requests from the usage webview. */
export interface UsageRequests {
  init: { params: Record<string, never>; result: { usage: UsageReport | null; models: ModelInfo[] } };
  'overage/set': { params: { enabled: boolean }; result: void };
  'model/select': { params: Record<string, never>; result: void };
  /** Sign in or out, or open the gateway's account or upgrade page (the extension holds the URLs' checks). */
  'account/run': { params: { action: AccountAction }; result: void };
}

export type AccountAction = 'signIn' | 'signOut' | 'manageAccount' | 'upgrade';

export interface UsageEvents {
  'state/usage': UsageReport;
  'state/models': { models: ModelInfo[]; selected: ModelId };
}

// --- envelopes --------------------------------------------------------------------------------------

/** A map of request method → params and result (interfaces qualify; no index signature needed). */
export type RequestMap<R> = { [K in keyof R]: { params: unknown; result: unknown } };

export interface RequestEnvelope<R extends RequestMap<R>, K extends keyof R & string = keyof R & string> {
  kind: 'request';
  id: number;
  method: K;
  params: R[K]['params'];
}

export interface ResponseEnvelope {
  kind: 'response';
  id: number;
  result?: unknown;
  error?: { message: string };
}

export interface EventEnvelope<E, K extends keyof E & string = keyof E & string> {
  kind: 'event';
  event: K;
  data: E[K];
}

export type ToWebview<E> = ResponseEnvelope | { [K in keyof E & string]: EventEnvelope<E, K> }[keyof E & string];

export function isRequestEnvelope(msg: unknown): msg is { kind: 'request'; id: number; method: string; params: unknown } {
  return (
    typeof msg === 'object' &&
    msg !== null &&
    (msg as { kind?: unknown }).kind === 'request' &&
    typeof (msg as { id?: unknown }).id === 'number' &&
    typeof (msg as { method?: unknown }).method === 'string'
  );
}
