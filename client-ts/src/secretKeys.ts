// SecretStorage keys (no `vscode` import, so code that needs only the names can be unit tested). The refresh
// token's key is per gateway: see refreshTokenKey in shared/account.ts.
export const SECRET_API_KEY = 'switchboard.anthropicApiKey';
export const SECRET_ENTITLEMENT = 'switchboard.entitlementToken';
