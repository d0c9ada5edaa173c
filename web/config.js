// Where the SPA finds the API. Empty: the same origin (the local runner serves both).
// For a static deployment (S3), set the HTTP API's URL, e.g.
//   window.LOCKSTEP_API = "https://abc123.execute-api.eu-west-1.amazonaws.com";
// and deploy the stack with SpaOrigin set to the site's origin (CORS).
window.LOCKSTEP_API = "";

// How the SPA gets the bearer token feature X needs. Unset: the local runner's dev sign-in
// (POST /local/auth/sign-in, a user name, no password; local only). In AWS, set a function that
// returns the signed-in user's access token from your OIDC client (for the stack's Cognito
// Hosted UI, see docs/deploy.md, "Authentication"), e.g. with oidc-client-ts:
//   window.LOCKSTEP_AUTH = {
//     user: async () => (await userManager.getUser())?.profile?.preferred_username ?? null,
//     token: async () => (await userManager.getUser())?.access_token ?? null,
//     signIn: () => userManager.signinRedirect(),
//     signOut: () => userManager.signoutRedirect(),
//   };
window.LOCKSTEP_AUTH = null;
