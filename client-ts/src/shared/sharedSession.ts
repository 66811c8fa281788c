// Several VS Code windows share one stored Switchboard Cloud session, but each runs its own language server.
// Every refresh rotates the refresh token and a spent one revokes the whole family, so when another window
// stores a newer token, this window's server must use it for its next refresh. This follows the stored
// secret and says when to hand the server such a token (kept free of `vscode` so it can be unit tested).

export interface SecretEvents {
  get(key: string): PromiseLike<string | undefined>;
  onDidChange(listener: (event: { key: string }) => unknown): { dispose(): unknown };
}

/** How many of this window's recent tokens to remember: its secret writes are queued, so the value read
 * after a change may be an earlier one of its own, which must not be handed back (it is spent). */
const REMEMBERED = 16;

export class SharedSessionFollower {
  /** Tokens this window's server handed over or was given: its own, never to send back. */
  private readonly own: string[] = [];
  private readonly subscription: { dispose(): unknown };

  constructor(
    private readonly secrets: SecretEvents,
    private readonly key: string,
    private readonly adopt: (refreshToken: string) => void,
  ) {
    this.subscription = secrets.onDidChange((event) => {
      if (event.key === this.key) void this.changed();
    });
  }

  /** Call before storing a token this window's server handed over (null: the session ended). */
  handedOver(refreshToken: string | null): void {
    if (refreshToken) this.remember(refreshToken);
  }

  private remember(refreshToken: string): void {
    this.own.push(refreshToken);
    if (this.own.length > REMEMBERED) this.own.shift();
  }

  private async changed(): Promise<void> {
    const stored = await this.secrets.get(this.key);
    // Deleted (signed out or ended elsewhere: the family is revoked anyway) or our own write: nothing to do.
    if (!stored || this.own.includes(stored)) return;
    this.remember(stored);
    this.adopt(stored);
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
