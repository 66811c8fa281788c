// The webview side of the typed extension <-> webview protocol (src/shared/webviewProtocol.ts).
import type { RequestMap, ResponseEnvelope } from '../../src/shared/webviewProtocol';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

type Handler<T> = (data: T) => void;

export class Messenger<R extends RequestMap<R>, E> {
  private readonly api: VsCodeApi = acquireVsCodeApi();
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly handlers = new Map<keyof E, Set<Handler<never>>>();
  private readonly anyHandlers = new Set<(event: keyof E, data: unknown) => void>();

  constructor() {
    window.addEventListener('message', (e: MessageEvent) => this.receive(e.data));
  }

  request<K extends keyof R & string>(method: K, params: R[K]['params']): Promise<R[K]['result']> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.api.postMessage({ kind: 'request', id, method, params });
    });
  }

  on<K extends keyof E>(event: K, handler: Handler<E[K]>): void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler as Handler<never>);
  }

  onAny(handler: (event: keyof E, data: unknown) => void): void {
    this.anyHandlers.add(handler);
  }

  getState<S>(): S | undefined {
    return this.api.getState() as S | undefined;
  }

  setState<S>(state: S): void {
    this.api.setState(state);
  }

  private receive(msg: unknown): void {
    if (typeof msg !== 'object' || msg === null) return;
    const m = msg as { kind?: string };
    if (m.kind === 'response') {
      const r = msg as ResponseEnvelope;
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.error) p.reject(new Error(r.error.message));
      else p.resolve(r.result);
    } else if (m.kind === 'event') {
      const { event, data } = msg as { event: keyof E; data: unknown };
      for (const h of this.anyHandlers) h(event, data);
      for (const h of this.handlers.get(event) ?? []) (h as Handler<unknown>)(data);
    }
  }
}
