// The user's Auto settings, read where they are sent: with every chat (the server routes by them) and
// with `switchboard/models` (the server states Auto's expected share and cost at them).
import * as vscode from 'vscode';
import type { ChatParams } from './protocol.generated';

export type AutoPreference = NonNullable<ChatParams['autoPreference']>;
/** Auto's models (Haiku 4.5, Sonnet 4.5, Sonnet 4.0): a setting naming all of them sends no allow-list. */
const AUTO_MODEL_COUNT = 3;

/** How readily Auto escalates (`switchboard.auto.preference`); the server ignores it for a chosen model. */
export function autoPreference(): AutoPreference {
  const value = vscode.workspace.getConfiguration('switchboard').get<string>('auto.preference');
  return value === 'economy' || value === 'quality' ? value : 'balanced';
}

/** The models Auto may use (`switchboard.auto.models`); undefined when the setting leaves all three. */
export function autoModels(): ChatParams['autoModels'] {
  const value = vscode.workspace.getConfiguration('switchboard').get<unknown>('auto.models');
  const models = Array.isArray(value) ? value.filter((m): m is string => typeof m === 'string') : [];
  return models.length > 0 && models.length < AUTO_MODEL_COUNT
    ? (models as NonNullable<ChatParams['autoModels']>)
    : undefined;
}

/** The Auto settings as request params (only the allow-list when it narrows anything). */
export function autoParams(): Pick<ChatParams, 'autoPreference' | 'autoModels'> {
  const models = autoModels();
  return { autoPreference: autoPreference(), ...(models ? { autoModels: models } : {}) };
}
