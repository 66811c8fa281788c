// When to ask the server what the draft would cost: debounced while the user types, and only the
// answer to the latest question counts. Estimates are best effort: a failed one is dropped.
import type { EstimateView } from '../../src/shared/webviewProtocol';
import type { ChatViewState } from './state';

export const ESTIMATE_DELAY_MS = 300;

export class EstimateScheduler {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private latest = 0;

  constructor(
    private readonly ask: () => Promise<EstimateView | null>,
    private readonly onEstimate: (estimate: EstimateView | null) => void,
    private readonly delayMs = ESTIMATE_DELAY_MS,
  ) {}

  schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.askNow(), this.delayMs);
  }

  private async askNow(): Promise<void> {
    const seq = ++this.latest;
    try {
      const estimate = await this.ask();
      if (seq === this.latest) this.onEstimate(estimate);
    } catch {
      // best effort: the previous estimate stays
    }
  }
}

/** The conversation changed in a way that changes what the next message costs. */
export function estimateIsStale(before: ChatViewState, after: ChatViewState): boolean {
  return before.conversationId !== after.conversationId || before.selected !== after.selected || before.turns.length !== after.turns.length;
}
