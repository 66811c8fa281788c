// Several VS Code windows share one stored Switchboard Cloud session, but each runs its own language server.
// Every refresh rotates the refresh token and a spent one revokes the whole family, so when another window
// stores a newer token, this window's server must use it for its next refresh; when another window deletes
// it (Sign Out there, or the session ended there), this window is signed out too. This follows the stored
// secret and says when to do either (kept free of `vscode` so it can be unit tested).

export interface SecretEvents {
  get(key: string): PromiseLike<string | undefined>;
  onDidChange(listener: (event: { key: string }) => unknown): { dispose(): unknown };
}

export interface SharedSessionHandlers {
  /** Another window stored a newer token of the session: hand it to this window's server. */
  adopt(refreshToken: string): void;
  /** Another window deleted the stored token: the session is over there, so sign out here too. */
  ended(): void;
}

/** How many of this window's recent tokens to remember: its secret writes are queued, so the value read
 * after a change may be an earlier one of its own, which must not be handed back (it is spent). */
const REMEMBERED = 16;

export class SharedSessionFollower {
  /** Tokens this window's server handed over or was given: its own, never to send back. */
  private readonly own: string[] = [];
  /** This window deleted the secret and has not seen the deletion since: not another window's sign-out. */
  private ownDeletion = false;
  private readonly subscription: { dispose(): unknown };

  /** `key()`: the secret's current key (it is per gateway, and the gateway can change); undefined: none. */
  constructor(
    private readonly secrets: SecretEvents,
    private readonly key: () => string | undefined,
    private readonly handlers: SharedSessionHandlers,
  ) {
    this.subscription = secrets.onDidChange((event) => {
      const key = this.key();
      if (key !== undefined && event.key === key) void this.changed(key);
    });
  }

  /** Call before storing (or, for null, deleting) a token on behalf of this window's server. */
  handedOver(refreshToken: string | null): void {
    if (refreshToken) {
      this.ownDeletion = false;
      this.remember(refreshToken);
    } else {
      this.ownDeletion = true;
    }
  }

  /** Whether `refreshToken` is one this window's server handed over or was given (this session's). */
  isOwn(refreshToken: string): boolean {
    return this.own.includes(refreshToken);
  }

  private remember(refreshToken: string): void {
    this.own.push(refreshToken);
    if (this.own.length > REMEMBERED) this.own.shift();
  }

  private async changed(key: string): Promise<void> {
    const stored = await this.secrets.get(key);
    if (!stored) {
      // Our own deletion (the session ended here, or we signed out): nothing more to do.
      if (this.ownDeletion) {
        this.ownDeletion = false;
        return;
      }
      this.handlers.ended();
      return;
    }
    // Our own write: nothing to do.
    if (this.own.includes(stored)) return;
    this.remember(stored);
    this.handlers.adopt(stored);
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
