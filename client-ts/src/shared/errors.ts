// Turning the server's JSON-RPC errors into something a user can act on (pure: no `vscode`, no DOM).
import {
  ErrorCode,
  type AuthErrorData,
  type CreditsExhaustedData,
  type InvalidParamsData,
  type ModelInfo,
  type PlanForbidsData,
  type PromptTooLargeData,
  type UpstreamErrorData,
} from '../protocol.generated';
import { formatTokens, modelName } from './format';

/** The error data type of each Switchboard error code. */
export interface ErrorDataMap {
  [ErrorCode.INVALID_PARAMS]: InvalidParamsData;
  [ErrorCode.PLAN_FORBIDS_MODEL]: PlanForbidsData;
  [ErrorCode.CREDITS_EXHAUSTED]: CreditsExhaustedData;
  [ErrorCode.UPSTREAM_FAILED]: UpstreamErrorData;
  [ErrorCode.AUTH_REQUIRED]: AuthErrorData;
  [ErrorCode.PROMPT_TOO_LARGE]: PromptTooLargeData;
}

/** Client-side codes for failures that never reached the server. */
export const ClientErrorCode = {
  SERVER_UNAVAILABLE: -1,
  INTERNAL: -2,
} as const;

export interface RpcErrorLike {
  code: number;
  message: string;
  data?: unknown;
}

export type ErrorActionId =
  | 'setApiKey'
  | 'signIn'
  | 'upgrade'
  | 'enableOverage'
  | 'raiseOverageBudget'
  | 'showUsage'
  | 'retry'
  | 'retryWithModel'
  | 'useAuto'
  | 'newChat'
  | 'showLogs'
  | 'restartServer';

export interface ErrorAction {
  id: ErrorActionId;
  label: string;
  /** For retryWithModel. */
  modelId?: string;
}

export type ErrorKind =
  | 'auth'
  | 'plan'
  | 'credits'
  | 'upstream'
  | 'notFound'
  | 'tooLarge'
  | 'invalid'
  | 'cancelled'
  | 'server'
  | 'unknown';

/** An error ready for display: what happened and what the user can do about it. */
export interface UiError {
  code: number;
  kind: ErrorKind;
  title: string;
  message: string;
  actions: ErrorAction[];
}

export function isRpcErrorLike(e: unknown): e is RpcErrorLike {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as { code?: unknown }).code === 'number' &&
    typeof (e as { message?: unknown }).message === 'string'
  );
}

export function toRpcErrorLike(e: unknown): RpcErrorLike {
  if (isRpcErrorLike(e)) return { code: e.code, message: e.message, data: e.data };
  if (e instanceof Error) return { code: ClientErrorCode.INTERNAL, message: e.message };
  return { code: ClientErrorCode.INTERNAL, message: String(e) };
}

export function isCancellation(e: unknown): boolean {
  return isRpcErrorLike(e) && e.code === ErrorCode.REQUEST_CANCELLED;
}

function data<T>(e: RpcErrorLike): Partial<T> {
  return typeof e.data === 'object' && e.data !== null ? (e.data as Partial<T>) : {};
}

/** AUTH_REQUIRED reasons about the gateway session; the others are about the Anthropic API key. */
const SESSION_REASONS: ReadonlySet<string> = new Set(['expired', 'denied', 'no_gateway', 'unreachable', 'session_ended']);

const PLAN_NAMES: Record<string, string> = { free: 'Free', pro: 'Pro', pro_plus: 'Pro+', power: 'Power' };

export function planName(plan: string): string {
  return PLAN_NAMES[plan] ?? plan;
}

function listOr(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

/** What to show for an error from the server (or from reaching it). */
export function describeError(error: unknown, models: readonly Pick<ModelInfo, 'id' | 'name'>[] = []): UiError {
  const e = toRpcErrorLike(error);
  const base = { code: e.code, message: e.message };
  switch (e.code) {
    case ErrorCode.AUTH_REQUIRED: {
      const d = data<AuthErrorData>(e);
      if (d.reason && SESSION_REASONS.has(d.reason)) {
        // The Switchboard Cloud session, not the API key: signing in again is the way out.
        return {
          ...base,
          kind: 'auth',
          title: 'Sign in to Switchboard Cloud again',
          message: e.message || 'Your Switchboard Cloud session ended.',
          actions: [{ id: 'signIn', label: 'Sign in' }],
        };
      }
      if (d.reason === 'missing_key' && d.gatewayUrl) {
        // A gateway is configured but not signed in to: signing in is the other way (and the first offered).
        return {
          ...base,
          kind: 'auth',
          title: 'Sign in or set an API key',
          message: `Sign in to Switchboard Cloud (${d.gatewayUrl}), or set your Anthropic API key, to start chatting.`,
          actions: [
            { id: 'signIn', label: 'Sign in' },
            { id: 'setApiKey', label: 'Set API key' },
          ],
        };
      }
      const rejected = d.reason === 'rejected_key';
      return {
        ...base,
        kind: 'auth',
        title: rejected ? 'Anthropic rejected the API key' : 'An Anthropic API key is needed',
        message: rejected
          ? 'The stored API key was refused. Set a valid key to keep chatting.'
          : 'Set your Anthropic API key to start chatting. It is kept in VS Code’s secret storage.',
        actions: [{ id: 'setApiKey', label: rejected ? 'Update API key' : 'Set API key' }],
      };
    }
    case ErrorCode.PLAN_FORBIDS_MODEL: {
      const d = data<PlanForbidsData>(e);
      const allowed = (d.allowedPlans ?? []).map(planName);
      const name = modelName(d.modelId, models);
      return {
        ...base,
        kind: 'plan',
        title: `${name} isn’t included in your plan`,
        message: e.message || (allowed.length ? `${name} needs ${listOr(allowed)}.` : `${name} isn’t available on your plan.`),
        actions: [
          { id: 'upgrade', label: allowed.length ? `Upgrade to ${allowed[0]}` : 'Upgrade' },
          { id: 'useAuto', label: 'Use Auto instead' },
        ],
      };
    }
    case ErrorCode.CREDITS_EXHAUSTED: {
      const d = data<CreditsExhaustedData>(e);
      if ((d.remainingCredits ?? 0) > 0) {
        // Credits remain, just not this answer's worst case: a cheaper model is the way out.
        const haiku = 'claude-haiku-4.5';
        return {
          ...base,
          kind: 'credits',
          title: 'Not enough credits left for this answer',
          message: e.message || 'This answer could cost more than the credits you have left. Pick a cheaper model.',
          actions: [
            { id: 'retryWithModel', label: `Try ${modelName(haiku, models)}`, modelId: haiku },
            { id: 'showUsage', label: 'Show usage' },
          ],
        };
      }
      if (d.overageEnabled) {
        // Overage is on already: its budget is what ran out, so turning it on is no way out.
        return {
          ...base,
          kind: 'credits',
          title: 'You’ve reached your overage budget',
          message: e.message || 'Raise the overage budget to keep going, or wait for the monthly reset.',
          actions: [
            { id: 'raiseOverageBudget', label: 'Raise the overage budget' },
            { id: 'showUsage', label: 'Show usage' },
          ],
        };
      }
      const actions: ErrorAction[] = d.overageAvailable
        ? [{ id: 'enableOverage', label: 'Enable overage' }]
        : [{ id: 'upgrade', label: 'Upgrade your plan' }];
      actions.push({ id: 'showUsage', label: 'Show usage' });
      return {
        ...base,
        kind: 'credits',
        title: 'You’re out of credits for this month',
        message:
          e.message ||
          (d.overageAvailable
            ? 'Turn on overage to keep going at pay-as-you-go rates, or wait for the monthly reset.'
            : 'Upgrade for more credits, or wait for the monthly reset.'),
        actions,
      };
    }
    case ErrorCode.UPSTREAM_FAILED: {
      const d = data<UpstreamErrorData>(e);
      const actions: ErrorAction[] = [];
      if (d.retryable !== false) actions.push({ id: 'retry', label: 'Retry' });
      if (d.suggestedModel) {
        actions.push({ id: 'retryWithModel', label: `Try ${modelName(d.suggestedModel, models)}`, modelId: d.suggestedModel });
      }
      if (!actions.length) actions.push({ id: 'showLogs', label: 'Show logs' });
      return {
        ...base,
        kind: 'upstream',
        title: d.status ? `Anthropic API error (${d.status})` : 'The Anthropic API request failed',
        message: e.message,
        actions,
      };
    }
    case ErrorCode.CONVERSATION_NOT_FOUND:
      return {
        ...base,
        kind: 'notFound',
        title: 'This conversation no longer exists',
        message: e.message,
        actions: [{ id: 'newChat', label: 'Start a new chat' }],
      };
    case ErrorCode.PROMPT_TOO_LARGE: {
      const d = data<PromptTooLargeData>(e);
      const detail =
        d.inputTokens && d.contextWindow
          ? ` (${formatTokens(d.inputTokens)} tokens; ${modelName(d.modelId, models)} takes ${formatTokens(d.contextWindow)})`
          : '';
      return {
        ...base,
        kind: 'tooLarge',
        title: 'The message doesn’t fit in the model’s context window',
        message: `${e.message}${detail}. Remove some context or start a new chat.`,
        actions: [{ id: 'newChat', label: 'Start a new chat' }],
      };
    }
    case ErrorCode.INVALID_PARAMS: {
      const d = data<InvalidParamsData>(e);
      const unknownModel = Boolean(d.modelId) && /unknown model/i.test(e.message);
      return {
        ...base,
        kind: 'invalid',
        title: unknownModel ? `Unknown model “${d.modelId}”` : 'The server refused the request',
        message: [e.message, ...(d.errors ?? [])].filter(Boolean).join(' '),
        actions: unknownModel ? [{ id: 'useAuto', label: 'Use Auto' }] : d.modelId ? [] : [{ id: 'showLogs', label: 'Show logs' }],
      };
    }
    case ErrorCode.REQUEST_CANCELLED:
      return { ...base, kind: 'cancelled', title: 'Stopped', message: e.message || 'The request was cancelled.', actions: [] };
    case ClientErrorCode.SERVER_UNAVAILABLE:
      return {
        ...base,
        kind: 'server',
        title: 'The Switchboard server isn’t running',
        message: e.message,
        actions: [
          { id: 'restartServer', label: 'Restart server' },
          { id: 'showLogs', label: 'Show logs' },
        ],
      };
    default:
      return {
        ...base,
        kind: 'unknown',
        title: 'Something went wrong',
        message: e.message,
        actions: [
          { id: 'retry', label: 'Retry' },
          { id: 'showLogs', label: 'Show logs' },
        ],
      };
  }
}
