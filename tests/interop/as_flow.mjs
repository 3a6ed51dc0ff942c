// One real OAuth client library through tokend's whole authorization-server
// flow (issue 11, AS_CONTRACT.md), for tests/integration/test_as_clients.py:
//
//   RFC 8414 discovery -> RFC 7591 registration of an agent (FIRST) and a
//   sub-agent (SECOND) -> the driver lets FIRST delegate to SECOND (tokenctl)
//   -> authorization URL with PKCE S256, state, resource (RFC 8707) -> the
//   browser (dev login, consent with its CSRF token) -> 303 to the loopback
//   listener -> the library checks state and iss (RFC 9207) and redeems the
//   code with the verifier -> introspection by a resource server, and the
//   token through nginx auth_request -> /auth -> refresh (rotation) -> token
//   exchange (RFC 8693) by SECOND -> the child's introspection shows act ->
//   revoking the parent kills the child -> the rotated-away refresh token is
//   refused (invalid_grant) and takes its family with it.
//
// spec (first stdin line): {"lib": "oauth4webapi" | "openid-client",
//   "issuer", "resource", "scope", "narrow_scope", "nginx_url", "subject",
//   "rs": {id, secret}, "admin": {id, secret}}
// Lines out: {"event":"registered","first","second"} (the driver answers
// {"ok":true} once delegation is set), then {"event":"done", ...} or
// {"event":"failed","step","message"} with exit code 1.
//
// The issuer is plain http on loopback: both libraries refuse that unless
// told to allow insecure requests, which only a test may do.
import * as oauth from "oauth4webapi";
import * as client from "openid-client";
import { Browser, FlowError, ask, check, eq, getVia, identity, loopbackListener, runFlow } from "./as_browser.mjs";

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

// ---- The two libraries behind one interface ------------------------------------------

function oauth4webapiAdapter(spec) {
  const issuer = new URL(spec.issuer);
  const opts = { [oauth.allowInsecureRequests]: true };
  let as;
  const authOf = (c) =>
    c.token_endpoint_auth_method === "none"
      ? oauth.None()
      : c.token_endpoint_auth_method === "client_secret_basic"
        ? oauth.ClientSecretBasic(c.client_secret)
        : oauth.ClientSecretPost(c.client_secret);
  const basic = (cred) => [{ client_id: cred.id }, oauth.ClientSecretBasic(cred.secret)];
  return {
    firstAuth: "none", // the usual agent: a public native client
    secondAuth: "client_secret_basic",
    async discover() {
      as = await oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, { ...opts, algorithm: "oauth2" }),
      );
      return as;
    },
    async register(meta) {
      const resp = await oauth.dynamicClientRegistrationRequest(as, meta, opts);
      check(resp.status === 201, "register", `status ${resp.status} (want 201)`);
      return await oauth.processDynamicClientRegistrationResponse(resp);
    },
    authUrl(c, p) {
      const u = new URL(as.authorization_endpoint);
      u.searchParams.set("response_type", "code");
      u.searchParams.set("client_id", c.client_id);
      for (const [k, v] of Object.entries(p)) u.searchParams.set(k, v);
      return u;
    },
    async redeem(c, callback, { state, verifier, redirectUri, resource }) {
      const params = oauth.validateAuthResponse(as, c, callback, state);
      const resp = await oauth.authorizationCodeGrantRequest(as, c, authOf(c), params, redirectUri, verifier, {
        ...opts,
        additionalParameters: { resource },
      });
      return await oauth.processAuthorizationCodeResponse(as, c, resp);
    },
    async refresh(c, rt) {
      const resp = await oauth.refreshTokenGrantRequest(as, c, authOf(c), rt, opts);
      return await oauth.processRefreshTokenResponse(as, c, resp);
    },
    async exchange(c, params) {
      const resp = await oauth.genericTokenEndpointRequest(as, c, authOf(c), TOKEN_EXCHANGE, params, opts);
      return await oauth.processGenericTokenEndpointResponse(as, c, resp);
    },
    async introspect(token) {
      const [c, auth] = basic(spec.rs);
      const resp = await oauth.introspectionRequest(as, c, auth, token, opts);
      return await oauth.processIntrospectionResponse(as, c, resp);
    },
    // FIRST is public: an operator's admin client revokes (RFC 7009 as tokend's admin role).
    revoker: "admin",
    async revoke(_c, token) {
      const [c, auth] = basic(spec.admin);
      const resp = await oauth.revocationRequest(as, c, auth, token, opts);
      await oauth.processRevocationResponse(resp);
    },
  };
}

function openidClientAdapter(spec) {
  const issuer = new URL(spec.issuer);
  const execute = [client.allowInsecureRequests];
  let serverMetadata;
  const configs = new Map(); // client_id -> Configuration
  let rsConfig;
  return {
    firstAuth: "client_secret_post", // a confidential agent
    secondAuth: "none", // a public sub-agent: exchange by client_id
    async discover() {
      // openid-client discovers inside dynamicClientRegistration; this
      // plain discovery is the same RFC 8414 request, for the checks.
      const cfg = await client.discovery(issuer, "unregistered", undefined, client.None(), {
        algorithm: "oauth2",
        execute,
      });
      serverMetadata = cfg.serverMetadata();
      rsConfig = new client.Configuration(serverMetadata, spec.rs.id, spec.rs.secret);
      client.allowInsecureRequests(rsConfig);
      return serverMetadata;
    },
    async register(meta) {
      const cfg = await client.dynamicClientRegistration(issuer, meta, undefined, { algorithm: "oauth2", execute });
      const reg = cfg.clientMetadata();
      configs.set(reg.client_id, cfg);
      return reg;
    },
    authUrl(c, p) {
      return client.buildAuthorizationUrl(configs.get(c.client_id), p);
    },
    async redeem(c, callback, { state, verifier, resource }) {
      return await client.authorizationCodeGrant(
        configs.get(c.client_id),
        callback,
        { pkceCodeVerifier: verifier, expectedState: state },
        { resource },
      );
    },
    async refresh(c, rt) {
      return await client.refreshTokenGrant(configs.get(c.client_id), rt);
    },
    async exchange(c, params) {
      return await client.genericGrantRequest(configs.get(c.client_id), TOKEN_EXCHANGE, params);
    },
    async introspect(token) {
      return await client.tokenIntrospection(rsConfig, token);
    },
    // FIRST is confidential: it revokes its own token (RFC 7009 §2.1).
    revoker: "owner",
    async revoke(c, token) {
      await client.tokenRevocation(configs.get(c.client_id), token);
    },
  };
}

// ---- Checks ------------------------------------------------------------------------------

const scopeSet = (s) => [...new Set(String(s ?? "").split(" ").filter(Boolean))].sort();
const audList = (a) => (Array.isArray(a) ? a : a === undefined ? [] : [a]);

function checkTokens(t, step, { scope, refresh }) {
  check(typeof t.access_token === "string" && t.access_token.length > 0, step, "no access_token");
  eq(String(t.token_type).toLowerCase(), "bearer", step, "token_type");
  check(Number.isInteger(t.expires_in) && t.expires_in > 0, step, `expires_in ${t.expires_in}`);
  if (scope !== undefined) eq(scopeSet(t.scope), scopeSet(scope), step, "scope");
  if (refresh) check(typeof t.refresh_token === "string" && t.refresh_token.length > 0, step, "no refresh_token");
}

function checkActive(j, step, { client_id, sub, resource, scope }) {
  eq(j.active, true, step, "active");
  eq(j.client_id, client_id, step, "client_id");
  eq(j.sub, sub, step, "sub");
  eq(audList(j.aud), [resource], step, "aud (RFC 8707: the resource)");
  if (scope !== undefined) eq(scopeSet(j.scope), scopeSet(scope), step, "scope");
}

async function expectInvalidGrant(fn, step) {
  try {
    await fn();
  } catch (e) {
    eq(e?.error ?? null, "invalid_grant", step, `error (${e?.message})`);
    return;
  }
  throw new FlowError(step, "the token endpoint accepted it (want invalid_grant)");
}

// One authorization (PKCE S256, state, resource; the browser plays the user)
// and the code's redemption by the library. Returns {b, tokens}.
async function authorizeAndRedeem(lib, spec, browser, listener, c, redirectUri) {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const authUrl = lib.authUrl(c, {
    redirect_uri: redirectUri,
    scope: spec.scope,
    resource: spec.resource,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
  });
  const heard = listener.calls.length;
  const b = await browser.authorize(authUrl, { subject: spec.subject, redirectUri, clientId: c.client_id });
  check(browser.cookie !== null, "authorize", "no session cookie after sign-in");
  const cb = b.callback;
  eq(listener.calls.slice(heard).map((u) => u.href), [cb.href], "authorize", "what the loopback listener received");
  eq(cb.searchParams.get("state"), state, "authorize", "state in the redirect");
  eq(cb.searchParams.get("iss"), spec.issuer, "authorize", "iss in the redirect (RFC 9207)");
  check(cb.searchParams.get("code"), "authorize", `no code in the redirect ${cb.href}`);
  check(!cb.searchParams.has("error"), "authorize", `error in the redirect ${cb.href}`);
  const tokens = await lib.redeem(c, cb, { state, verifier, redirectUri, resource: spec.resource });
  checkTokens(tokens, "code", { scope: spec.scope, refresh: true });
  return { b, tokens };
}

// spec.mode "strict-replay" (refresh-reuse-window 0): a refresh token
// presented again right after its rotation — the same second — is a replay:
// invalid_grant, and the family dies. A second authorization by the same
// signed-in user is covered by the grant: no consent page.
async function strictReplay(lib, spec) {
  const listener = await loopbackListener();
  try {
    await lib.discover();
    const redirectUri = `http://127.0.0.1:${listener.port}/callback`;
    const c = await lib.register({
      client_name: `interop ${spec.lib} strict`,
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: lib.firstAuth,
      application_type: "native",
    });
    const browser = new Browser(new URL(spec.issuer).origin);
    const first = await authorizeAndRedeem(lib, spec, browser, listener, c, redirectUri);
    check(first.b.sawConsent, "authorize", "no consent page the first time");
    const again = await authorizeAndRedeem(lib, spec, browser, listener, c, redirectUri);
    check(!again.b.sawLogin && !again.b.sawConsent, "covered", `login ${again.b.sawLogin}, consent ${again.b.sawConsent} for a covered request`, browser.trail);
    const r1 = again.tokens.refresh_token;
    // tokend counts whole seconds (same clock): start just past a second's
    // beginning so that the rotation and the replay share it.
    await new Promise((r) => setTimeout(r, 1020 - (Date.now() % 1000)));
    const t2 = await lib.refresh(c, r1);
    const rotatedAt = Date.now();
    await expectInvalidGrant(() => lib.refresh(c, r1), `immediate replay (${Date.now() - rotatedAt} ms after the rotation)`);
    await expectInvalidGrant(() => lib.refresh(c, t2.refresh_token), "the family after the replay");
    for (const [name, t] of [["first access token", first.tokens.access_token], ["refreshed access token", t2.access_token]]) {
      eq((await lib.introspect(t)).active, false, "family", name);
    }
    return { client_id: c.client_id, tokens: [first.tokens.access_token, again.tokens.access_token, t2.access_token] };
  } finally {
    await listener.close();
  }
}

// ---- The flow -------------------------------------------------------------------------------

async function flow(spec) {
  const lib = spec.lib === "openid-client" ? openidClientAdapter(spec) : oauth4webapiAdapter(spec);
  if (spec.mode === "strict-replay") return await strictReplay(lib, spec);
  const issuer = spec.issuer;
  const out = { lib: spec.lib };

  // RFC 8414 discovery through the library.
  const md = await lib.discover();
  for (const k of ["authorization_endpoint", "token_endpoint", "registration_endpoint", "introspection_endpoint"]) {
    check(typeof md[k] === "string", "discovery", `metadata without ${k}`, md);
  }
  eq(md.issuer, issuer, "discovery", "issuer");
  eq(md.code_challenge_methods_supported, ["S256"], "discovery", "code_challenge_methods_supported");
  eq(md.response_types_supported, ["code"], "discovery", "response_types_supported");
  eq(md.authorization_response_iss_parameter_supported, true, "discovery", "authorization_response_iss_parameter_supported");
  for (const g of ["authorization_code", "refresh_token", TOKEN_EXCHANGE]) {
    check((md.grant_types_supported ?? []).includes(g), "discovery", `grant_types_supported without ${g}`);
  }
  check((md.token_endpoint_auth_methods_supported ?? []).includes("none"), "discovery", "no 'none' auth method");

  // RFC 7591: the agent and its sub-agent, each with a loopback redirect URI.
  const listener = await loopbackListener();
  try {
    const redirectUri = `http://127.0.0.1:${listener.port}/callback`;
    const metaOf = (name, auth, grants) => ({
      client_name: `interop ${spec.lib} ${name}`,
      redirect_uris: [redirectUri],
      grant_types: grants,
      response_types: ["code"],
      token_endpoint_auth_method: auth,
      application_type: "native",
    });
    const regs = [];
    for (const [name, auth, grants] of [
      ["agent", lib.firstAuth, ["authorization_code", "refresh_token"]],
      ["sub-agent", lib.secondAuth, ["authorization_code", TOKEN_EXCHANGE]],
    ]) {
      const meta = metaOf(name, auth, grants);
      const reg = await lib.register(meta);
      const step = `register ${name}`;
      check(typeof reg.client_id === "string" && reg.client_id, step, "no client_id", reg);
      eq(reg.redirect_uris, meta.redirect_uris, step, "redirect_uris echoed");
      eq(reg.token_endpoint_auth_method, auth, step, "token_endpoint_auth_method echoed");
      eq([...(reg.grant_types ?? [])].sort(), [...grants].sort(), step, "grant_types echoed");
      eq(reg.client_name, meta.client_name, step, "client_name echoed");
      if (auth === "none") check(reg.client_secret === undefined, step, "a public client got a client_secret");
      else check(typeof reg.client_secret === "string" && reg.client_secret, step, "a confidential client without client_secret");
      regs.push(reg);
    }
    const [first, second] = regs;
    out.first = first.client_id;
    out.second = second.client_id;
    await ask({ event: "registered", first: first.client_id, second: second.client_id });

    // Authorization request: PKCE S256, state, resource; the user in the
    // browser; the library validates the callback (state, iss) and redeems.
    const browser = new Browser(new URL(issuer).origin);
    const { b, tokens: t1 } = await authorizeAndRedeem(lib, spec, browser, listener, first, redirectUri);
    check(b.sawLogin && b.sawConsent, "authorize", `login ${b.sawLogin}, consent ${b.sawConsent}`, browser.trail);

    // Introspection by the resource server, and the token through nginx.
    const who = { client_id: first.client_id, sub: spec.subject, resource: spec.resource };
    const i1 = await lib.introspect(t1.access_token);
    checkActive(i1, "introspect", { ...who, scope: spec.scope });
    check(/^tks_/.test(i1.sid ?? ""), "introspect", `sid ${i1.sid}`);
    out.sid = i1.sid;
    out.may_act = i1.may_act ?? null;
    if (i1.may_act !== undefined) {
      check(JSON.stringify(i1.may_act).includes(second.client_id), "introspect", "may_act without the sub-agent", i1.may_act);
    }
    const page = `${spec.nginx_url}/page`;
    const g1 = await getVia(page, t1.access_token);
    eq(g1.status, 200, "nginx", `GET /page with the token (${g1.text.slice(0, 200)})`);
    const id1 = identity(g1.json);
    eq([id1["x-auth-subject"], id1["x-auth-client"], id1["x-auth-session"]], [spec.subject, first.client_id, i1.sid], "nginx", "identity headers");
    const g0 = await getVia(page);
    eq(g0.status, 401, "nginx", "GET /page without a token");
    check(/resource_metadata="[^"]+"/.test(g0.www ?? ""), "nginx", `challenge without resource_metadata: ${g0.www}`);

    // Refresh: rotation.
    const t2 = await lib.refresh(first, t1.refresh_token);
    const rotatedAt = Date.now();
    checkTokens(t2, "refresh", { refresh: true });
    check(t2.refresh_token !== t1.refresh_token, "refresh", "the refresh token was not rotated");
    check(t2.access_token !== t1.access_token, "refresh", "the same access token again");
    checkActive(await lib.introspect(t2.access_token), "refresh", { ...who, scope: spec.scope });

    // RFC 8693: SECOND exchanges FIRST's token for a narrower child.
    const tx = await lib.exchange(second, {
      subject_token: t2.access_token,
      subject_token_type: ACCESS_TOKEN_TYPE,
      scope: spec.narrow_scope,
      resource: spec.resource,
    });
    checkTokens(tx, "exchange", { scope: spec.narrow_scope });
    eq(tx.issued_token_type, ACCESS_TOKEN_TYPE, "exchange", "issued_token_type");
    const ic = await lib.introspect(tx.access_token);
    checkActive(ic, "child", { client_id: second.client_id, sub: spec.subject, resource: spec.resource, scope: spec.narrow_scope });
    eq(ic.act?.sub, second.client_id, "child", "act.sub (the caller outermost)");
    check(ic.exp <= (await lib.introspect(t2.access_token)).exp, "child", "the child outlives its parent");
    const gc = await getVia(page, tx.access_token);
    eq(gc.status, 200, "nginx child", `GET /page with the child (${gc.text.slice(0, 200)})`);
    const idc = identity(gc.json);
    eq(idc["x-auth-client"], second.client_id, "nginx child", "X-Auth-Client");
    check((idc["x-auth-actor"] ?? "").split(" ").includes(second.client_id), "nginx child", `X-Auth-Actor ${idc["x-auth-actor"]}`);

    // Revoking the parent kills the child (the cascade).
    await lib.revoke(first, t2.access_token);
    eq((await lib.introspect(t2.access_token)).active, false, "revoke", "the parent after revocation");
    eq((await lib.introspect(tx.access_token)).active, false, "revoke", "the child after the parent's revocation");
    eq((await getVia(page, tx.access_token)).status, 401, "revoke", "the child through nginx");

    // The rotated-away refresh token is refused and revokes its family:
    // the current one dies with it (the suite runs refresh-reuse-window 0).
    // More than a second after the rotation, so that only the window
    // decides; the same-second replay is the "strict-replay" mode.
    await new Promise((r) => setTimeout(r, Math.max(0, 1100 - (Date.now() - rotatedAt))));
    await expectInvalidGrant(() => lib.refresh(first, t1.refresh_token), "replay");
    await expectInvalidGrant(() => lib.refresh(first, t2.refresh_token), "replay family");

    out.revoker = lib.revoker;
    out.tokens = {
      t1: t1.access_token,
      r1: t1.refresh_token,
      t2: t2.access_token,
      r2: t2.refresh_token,
      child: tx.access_token,
    };
    out.trail = browser.trail;
    return out;
  } finally {
    await listener.close();
  }
}

await runFlow(flow);
