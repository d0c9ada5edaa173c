// Where the SPA finds the API. Empty: the same origin (the local runner serves both).
// For a static deployment (S3), set the HTTP API's URL, e.g.
//   window.LOCKSTEP_API = "https://abc123.execute-api.eu-west-1.amazonaws.com";
// and deploy the stack with SpaOrigin set to the site's origin (CORS).
window.LOCKSTEP_API = "";
