// What an error's action button asks the extension to do (pure, unit-tested).
import type { ErrorAction } from '../../src/shared/errors';
import type { ChatRequests } from '../../src/shared/webviewProtocol';
import type { InlineError } from './state';

/** Retrying takes the failed message back out of the transcript: it is about to be sent again. */
export function retractsFailedMessage(action: ErrorAction): boolean {
  return action.id === 'retry' || action.id === 'retryWithModel';
}

/** `failed` is the inline error the button belongs to (none for the banner, welcome card or notice). */
export function actionRunParams(action: ErrorAction, failed?: InlineError): ChatRequests['action/run']['params'] {
  // Retry re-runs a recorded failed answer on the model first asked for; a suggested model overrides it.
  const modelId = action.modelId ?? (action.id === 'retry' && failed?.retryOf ? failed.modelId : undefined);
  return { action: action.id, modelId, prompt: failed?.prompt, context: failed?.context, retryOf: failed?.retryOf };
}
