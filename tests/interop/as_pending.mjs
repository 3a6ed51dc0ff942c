// A registered agent that awaits approval (registration = approval), seen by
// a real client library (oauth4webapi), for tests/integration/
// test_as_clients.py (issue 11 §1 and §7 "a pending client must not leave
// the agent waiting forever on its loopback listener"):
//
//   register (RFC 7591) -> authorize: the user sees the "awaits approval"
//   page and follows its link back to the agent, which receives
//   error=access_denied with a description, state and iss (RFC 9207); the
//   library reports access_denied -> the driver approves the client
//   (tokenctl client approve) -> the same agent authorizes and gets tokens
//   -> a second registration of the same identity (client_name, redirect
//   URIs, software_id) is approved at once -> one with another redirect URI
//   is pending again.
//
// spec (first stdin line): {"issuer", "resource", "scope", "subject"}
// Lines out: {"event":"pending","client_id"} (the driver answers {"ok":true}
// once it approved it), then {"event":"done",...} or {"event":"failed",...}.
import * as oauth from "oauth4webapi";
import { Browser, ask, check, eq, loopbackListener, runFlow } from "./as_browser.mjs";

async function flow(spec) {
  const issuer = new URL(spec.issuer);
  const opts = { [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { ...opts, algorithm: "oauth2" }),
  );
  const listener = await loopbackListener();
  const base = `http://127.0.0.1:${listener.port}`;
  const browser = new Browser(issuer.origin);
  const meta = (path) => ({
    client_name: "interop pending agent",
    redirect_uris: [`${base}${path}`],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "none",
    software_id: "tokend-interop-pending",
  });
  const register = async (m) => {
    const resp = await oauth.dynamicClientRegistrationRequest(as, m, opts);
    check(resp.status === 201, "register", `status ${resp.status} (want 201)`);
    return await oauth.processDynamicClientRegistrationResponse(resp);
  };
  // One authorization attempt: what the browser saw and what the agent got.
  const attempt = async (c, step) => {
    const redirectUri = c.redirect_uris[0];
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const u = new URL(as.authorization_endpoint);
    for (const [k, v] of Object.entries({
      response_type: "code",
      client_id: c.client_id,
      redirect_uri: redirectUri,
      scope: spec.scope,
      resource: spec.resource,
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    })) {
      u.searchParams.set(k, v);
    }
    const b = await browser.authorize(u, { subject: spec.subject, redirectUri, clientId: c.client_id });
    const cb = b.callback;
    eq(cb.searchParams.get("state"), state, step, "state");
    eq(cb.searchParams.get("iss"), spec.issuer, step, "iss (RFC 9207)");
    let params = null;
    let error = null;
    try {
      params = oauth.validateAuthResponse(as, c, cb, state);
    } catch (e) {
      error = e;
    }
    return { b, cb, params, error, verifier, redirectUri };
  };
  const expectPending = (r, step) => {
    check(r.b.sawPending, step, "no awaits-approval page", browser.trail);
    check(!r.cb.searchParams.has("code"), step, `a code for a pending client: ${r.cb.href}`);
    eq(r.cb.searchParams.get("error"), "access_denied", step, "error");
    check(/approv/i.test(r.cb.searchParams.get("error_description") ?? ""), step, `error_description ${r.cb.searchParams.get("error_description")}`);
    check(r.error instanceof oauth.AuthorizationResponseError, step, `the library did not report an error response (${r.error})`);
    eq(r.error.error, "access_denied", step, "the library's error");
  };
  const expectTokens = async (c, r, step) => {
    check(!r.b.sawPending, step, "the awaits-approval page for an approved client");
    check(r.params !== null, step, `the library refused the callback: ${r.error?.message} (${r.cb.href})`);
    const resp = await oauth.authorizationCodeGrantRequest(as, c, oauth.None(), r.params, r.redirectUri, r.verifier, {
      ...opts,
      additionalParameters: { resource: spec.resource },
    });
    const t = await oauth.processAuthorizationCodeResponse(as, c, resp);
    check(t.access_token && t.refresh_token, step, "no access and refresh token");
    return t;
  };

  try {
    const c1 = await register(meta("/callback"));
    expectPending(await attempt(c1, "pending"), "pending");
    eq(listener.calls.length, 1, "pending", "callbacks the agent received");
    await ask({ event: "pending", client_id: c1.client_id });

    const t1 = await expectTokens(c1, await attempt(c1, "approved"), "approved");

    // The same identity again (an agent registering once per MCP server).
    const c2 = await register(meta("/callback"));
    check(c2.client_id !== c1.client_id, "same identity", "the same client_id twice");
    await expectTokens(c2, await attempt(c2, "same identity"), "same identity");

    // Another redirect URI is another identity: pending.
    const c3 = await register(meta("/elsewhere"));
    expectPending(await attempt(c3, "other identity"), "other identity");

    return {
      approved: c1.client_id,
      same_identity: c2.client_id,
      other_identity: c3.client_id,
      access_token: t1.access_token,
      trail: browser.trail,
    };
  } finally {
    await listener.close();
  }
}

await runFlow(flow);
