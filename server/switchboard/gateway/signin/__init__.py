"""Sign-in: the OAuth 2.0 device authorization grant (RFC 8628), rotating refresh tokens, revocation
(RFC 7009), server metadata (RFC 8414), the /device and /account pages, and the rate limits guarding them."""
