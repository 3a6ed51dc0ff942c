// The MCP TypeScript SDK (v1) on both sides of tokend, for
// tests/integration/test_as_clients.py (issue 11, "Done means"):
//
// Server: an McpServer with one tool (echo) behind StreamableHTTPServerTransport
// (stateless, JSON answers) on http://127.0.0.1:PORT/mcp. Its bearer check asks
// tokend's /introspect with resource-server credentials; a missing, inactive
// or other-audience token gets 401 with
// `WWW-Authenticate: Bearer …resource_metadata="…"` (RFC 9728 §5.1). The
// metadata itself is tokend's: the server passes
// GET /.well-known/oauth-protected-resource/mcp on to tokend with
// X-Forwarded-Host, as an edge proxy would (tokend's resources file declares
// the MCP server).
//
// Client: Client + StreamableHTTPClientTransport with an OAuthClientProvider
// kept in memory. The SDK does everything itself — 401 -> RFC 9728 ->
// RFC 8414 -> RFC 7591 registration (no application_type, a
// http://localhost redirect URI: what the SDK's own examples do) -> PKCE
// authorization URL; redirectToAuthorization plays the user's browser (dev
// login, consent) and captures the code from the 303 to the loopback
// listener; transport.finishAuth(code) redeems it. Then tools/list and a tool
// call succeed. The driver ends the user's tokend session (tokenctl session
// terminate); the next call gets 401, the SDK's refresh is refused
// (invalid_grant), the SDK starts a new authorization, and the browser is
// signed out (sent to /login): the call fails with UnauthorizedError.
//
// One thing is a test artifact: tokend's resource identifiers are https
// (RFC 9728 §1.2) and this MCP server is plain http, so the SDK's check that
// the metadata's resource has the server URL's origin cannot pass; the
// provider's validateResourceURL (the SDK's hook for exactly this) accepts
// the configured identifier and nothing else.
//
// With spec.mode "parallel" the second half is issue 11 §7 instead: the
// access token expires, three tool calls meet it at once and the SDK
// refreshes three times with the same refresh token (see parallelRefresh).
//
// spec (first stdin line): {"issuer", "mcp_port", "resource", "scopes": [...],
//   "subject", "rs": {id, secret}, "mode"?: "parallel", "access_ttl"?,
//   "reuse_window"?}
// Lines out: {"event":"authorized","sid","client_id"} (the driver answers
// {"ok":true} once the session is terminated), then {"event":"done",...}
// or {"event":"failed",...} with exit code 1.
import * as http from "node:http";
import { randomBytes } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { z } from "zod";
import { Browser, FlowError, ask, check, eq, loopbackListener, runFlow } from "./as_browser.mjs";

const WK = "/.well-known/oauth-protected-resource";

// RFC 7662 introspection at tokend as the resource server (client_secret_basic).
async function introspect(spec, token) {
  const auth = "Basic " + Buffer.from(`${encodeURIComponent(spec.rs.id)}:${encodeURIComponent(spec.rs.secret)}`).toString("base64");
  const resp = await fetch(`${spec.issuer}/introspect`, {
    method: "POST",
    headers: { authorization: auth, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token }).toString(),
  });
  if (resp.status !== 200) throw new FlowError("introspect", `tokend answered ${resp.status}`);
  return await resp.json();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- The MCP server --------------------------------------------------------------------

function echoServer() {
  const server = new McpServer({ name: "tokend-interop-echo", version: "1.0.0" });
  server.registerTool(
    "echo",
    { description: "Echo the text back, prefixed with the user it acts for", inputSchema: { text: z.string() } },
    async ({ text }, extra) => ({
      content: [{ type: "text", text: `${extra.authInfo?.extra?.sub ?? "?"}: ${text}` }],
    }),
  );
  return server;
}

async function startMcpServer(spec) {
  const origin = `http://127.0.0.1:${spec.mcp_port}`;
  const prmUrl = `${origin}${WK}/mcp`;
  const stats = { unauthorized: [], served: [], introspections: 0 };

  const deny = (res, error) => {
    const params = error ? [`error="${error}"`] : [];
    params.push(`resource_metadata="${prmUrl}"`);
    res.writeHead(401, { "www-authenticate": `Bearer ${params.join(", ")}`, "content-type": "application/json" });
    res.end(JSON.stringify({ error: error ?? "unauthorized" }));
  };

  // The bearer check: tokend's introspection (RFC 7662) as a resource server.
  const verify = async (token) => {
    stats.introspections++;
    const j = await introspect(spec, token);
    const aud = Array.isArray(j.aud) ? j.aud : [j.aud];
    if (j.active !== true || !aud.includes(spec.resource) || !(j.exp > Date.now() / 1000)) return null;
    return {
      token,
      clientId: j.client_id,
      scopes: String(j.scope ?? "").split(" ").filter(Boolean),
      expiresAt: j.exp,
      resource: new URL(spec.resource),
      extra: { sub: j.sub, sid: j.sid },
    };
  };

  const handle = async (req, res) => {
    const path = new URL(req.url, origin).pathname;
    if (req.method === "GET" && path === `${WK}/mcp`) {
      // tokend serves the RFC 9728 document; this server is its proxy.
      const up = await fetch(`${spec.issuer}${WK}/mcp`, { headers: { "x-forwarded-host": req.headers.host ?? "" } });
      res.writeHead(up.status, { "content-type": up.headers.get("content-type") ?? "application/json" });
      res.end(Buffer.from(await up.arrayBuffer()));
      return;
    }
    if (path !== "/mcp") {
      res.writeHead(404).end();
      return;
    }
    const m = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? "");
    if (!m) {
      stats.unauthorized.push("missing");
      deny(res, null);
      return;
    }
    const authInfo = await verify(m[1]);
    if (authInfo === null) {
      stats.unauthorized.push("invalid_token");
      deny(res, "invalid_token");
      return;
    }
    if (req.method !== "POST") {
      // Stateless server: no standalone SSE stream, no session to delete.
      res.writeHead(405, { allow: "POST" }).end();
      return;
    }
    stats.served.push(authInfo.clientId);
    req.auth = authInfo;
    const server = echoServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on("close", () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };

  const httpServer = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(e?.message ?? e));
    });
  });
  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(spec.mcp_port, "127.0.0.1", resolve);
  });
  const close = () => {
    httpServer.closeAllConnections();
    return new Promise((r) => httpServer.close(r));
  };
  return { url: new URL(`${origin}/mcp`), prmUrl, stats, close };
}

// ---- The client's OAuthClientProvider ------------------------------------------------------

class MemoryProvider {
  constructor(redirectUri, resource, onRedirect) {
    this._redirectUri = redirectUri;
    this._resource = resource;
    this.onRedirect = onRedirect;
    this.authUrls = [];
    this.invalidated = [];
    this.states = [];
  }
  get redirectUrl() {
    return this._redirectUri;
  }
  get clientMetadata() {
    return {
      client_name: "interop MCP SDK agent",
      redirect_uris: [this._redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    const s = randomBytes(16).toString("base64url");
    this.states.push(s);
    return s;
  }
  clientInformation() {
    return this._client;
  }
  saveClientInformation(info) {
    this._client = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(t) {
    this._tokens = t;
  }
  async redirectToAuthorization(url) {
    this.authUrls.push(new URL(url));
    await this.onRedirect(new URL(url));
  }
  saveCodeVerifier(v) {
    this._verifier = v;
  }
  codeVerifier() {
    check(this._verifier, "mcp", "the SDK asked for a code verifier it never saved");
    return this._verifier;
  }
  invalidateCredentials(scope) {
    this.invalidated.push(scope);
    if (scope === "all" || scope === "tokens") this._tokens = undefined;
    if (scope === "all" || scope === "client") this._client = undefined;
    if (scope === "all" || scope === "verifier") this._verifier = undefined;
  }
  // See the header: http server, https identifier. Only the configured one.
  validateResourceURL(_serverUrl, resource) {
    eq(resource, this._resource, "mcp resource", "the protected resource metadata's resource");
    return new URL(resource);
  }
}

// ---- The flow ---------------------------------------------------------------------------------

async function flow(spec) {
  const issuer = spec.issuer;
  const mcp = await startMcpServer(spec);
  const listener = await loopbackListener();
  const out = {};
  try {
    // tokend's RFC 9728 document through the MCP server, as the SDK will read it.
    const prm = await (await fetch(mcp.prmUrl)).json();
    eq(prm.resource, spec.resource, "metadata", "resource");
    eq(prm.authorization_servers, [issuer], "metadata", "authorization_servers");
    eq(prm.scopes_supported, spec.scopes, "metadata", "scopes_supported");

    // Every request the SDK makes, with the token endpoint's answers.
    const tokenCalls = [];
    const tracedFetch = async (url, init) => {
      const resp = await fetch(url, init);
      if (new URL(String(url)).pathname === "/token") {
        const body = new URLSearchParams(String(init?.body ?? ""));
        let error = null;
        if (resp.status !== 200) error = (await resp.clone().json().catch(() => ({}))).error ?? null;
        tokenCalls.push({ grant_type: body.get("grant_type"), status: resp.status, error, presented: body.get("refresh_token") });
      }
      return resp;
    };

    const redirectUri = `http://localhost:${listener.port}/callback`;
    const browser = new Browser(new URL(issuer).origin);
    let code = null;
    const provider = new MemoryProvider(redirectUri, spec.resource, async (url) => {
      const b = await browser.authorize(url, { subject: spec.subject, redirectUri });
      check(b.sawLogin && b.sawConsent, "mcp authorize", `login ${b.sawLogin}, consent ${b.sawConsent}`, browser.trail);
      eq(b.callback.searchParams.get("state"), provider.states.at(-1), "mcp authorize", "state");
      eq(b.callback.searchParams.get("iss"), issuer, "mcp authorize", "iss (RFC 9207)");
      code = b.callback.searchParams.get("code");
      check(code, "mcp authorize", `no code in ${b.callback.href}`);
    });
    const newTransport = () => new StreamableHTTPClientTransport(mcp.url, { authProvider: provider, fetch: tracedFetch });

    // First contact: 401 -> the SDK's whole authorization, then UnauthorizedError.
    let transport = newTransport();
    let client = new Client({ name: "tokend-interop", version: "1.0.0" });
    try {
      await client.connect(transport);
      throw new FlowError("mcp connect", "connected without authorization");
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
    }
    eq(mcp.stats.unauthorized, ["missing"], "mcp connect", "the MCP server's 401s");
    check(code, "mcp connect", "the SDK never sent the user to authorize");
    const authUrl = provider.authUrls[0];
    eq(authUrl.searchParams.get("code_challenge_method"), "S256", "mcp authorize", "code_challenge_method");
    eq(authUrl.searchParams.get("resource"), spec.resource, "mcp authorize", "resource");
    const reg = provider.clientInformation();
    check(reg?.client_id, "mcp register", "the SDK saved no client_id");
    eq(reg.redirect_uris, [redirectUri], "mcp register", "redirect_uris echoed");
    eq(reg.token_endpoint_auth_method, "none", "mcp register", "token_endpoint_auth_method");
    out.client_id = reg.client_id;

    await transport.finishAuth(code);
    const tokens = provider.tokens();
    check(tokens?.access_token && tokens?.refresh_token, "mcp token", "no access and refresh token", tokens);
    eq(tokenCalls.map((c) => [c.grant_type, c.status]), [["authorization_code", 200]], "mcp token", "token endpoint calls");
    eq([...String(tokens.scope ?? "").split(" ")].sort(), [...spec.scopes].sort(), "mcp token", "scope");
    await client.close().catch(() => {});

    // Authorized: a fresh transport carries the token.
    transport = newTransport();
    client = new Client({ name: "tokend-interop", version: "1.0.0" });
    await client.connect(transport);
    const tools = await client.listTools();
    eq(tools.tools.map((t) => t.name), ["echo"], "mcp tools/list", "tools");
    const r = await client.callTool({ name: "echo", arguments: { text: "hello" } });
    eq(r.content?.[0]?.text, `${spec.subject}: hello`, "mcp tools/call", "echo answer");
    eq([...new Set(mcp.stats.served)], [reg.client_id], "mcp tools/call", "clients the server served");

    const ij = await introspect(spec, tokens.access_token);
    eq([ij.active, ij.client_id, ij.sub, ij.aud], [true, reg.client_id, spec.subject, spec.resource], "mcp introspect", "active, client_id, sub, aud");
    out.sid = ij.sid;
    out.tokens = { access: tokens.access_token, refresh: tokens.refresh_token };

    if (spec.mode === "parallel") {
      out.parallel = await parallelRefresh(spec, { client, provider, tokenCalls, mcp });
      await client.close().catch(() => {});
      out.trail = browser.trail;
      return out;
    }

    // The driver ends the user's session.
    await ask({ event: "authorized", sid: ij.sid, client_id: reg.client_id });

    // Next call: 401 -> refresh refused -> a new authorization, and the
    // browser is signed out: tokend sends it to /login.
    let sentToLogin = false;
    provider.onRedirect = async (url) => {
      const b = await browser.authorize(url, { subject: spec.subject, redirectUri, stopAtLogin: true });
      check(b.login, "mcp after terminate", "the browser was not asked to sign in again", browser.trail);
      sentToLogin = true;
    };
    const before401 = mcp.stats.unauthorized.length;
    const callsBefore = tokenCalls.length;
    let failure = null;
    try {
      await client.listTools();
    } catch (e) {
      failure = e;
    }
    check(failure !== null, "mcp after terminate", "tools/list succeeded after the session ended");
    eq(
      tokenCalls.slice(callsBefore).map((c) => [c.grant_type, c.status, c.error]),
      [["refresh_token", 400, "invalid_grant"]],
      "mcp after terminate",
      "token endpoint calls (the SDK's refresh)",
    );
    check(
      failure instanceof UnauthorizedError || /unauthori/i.test(String(failure?.message)),
      "mcp after terminate",
      `failed otherwise than unauthorized: ${failure?.message}`,
    );
    eq(mcp.stats.unauthorized.slice(before401), ["invalid_token"], "mcp after terminate", "the MCP server's 401s");
    check(provider.invalidated.includes("tokens"), "mcp after terminate", `the SDK kept its tokens (${provider.invalidated})`);
    check(sentToLogin, "mcp after terminate", "the SDK did not start a new authorization");
    await client.close().catch(() => {});
    out.trail = browser.trail;
    return out;
  } finally {
    await listener.close();
    await mcp.close();
  }
}

// Issue 11 §7: the SDK does not serialise refreshes. Three tool calls that
// meet an expired access token at once each get 401 and each refresh, most
// of them with the same refresh token: within refresh-reuse-window tokend
// must answer every one (a sibling pair), so all three calls succeed and
// the agent stays signed in. After the window, the rotated-away token is a
// replay: invalid_grant, and its family (the tokens in use) dies with it.
async function parallelRefresh(spec, { client, provider, tokenCalls, mcp }) {
  const step = "mcp parallel";
  const first = provider.tokens();
  // Whether the SDK's three refreshes overlap depends on scheduling: on a
  // loaded machine they may run one after another (each then presents the
  // previous one's fresh token, and nothing is tested). Try the storm again
  // (a new expiry each time), at most three times.
  let results, refreshes, presented, reused, summary;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const cur = provider.tokens();
    const deadline = Date.now() + (spec.access_ttl + 10) * 1000;
    while ((await introspect(spec, cur.access_token)).active) {
      check(Date.now() < deadline, step, `the access token is still active after ${spec.access_ttl + 10} s`);
      await sleep(200);
    }
    const callsBefore = tokenCalls.length;
    results = await Promise.allSettled(
      [1, 2, 3].map((i) => client.callTool({ name: "echo", arguments: { text: `call ${i}` } })),
    );
    refreshes = tokenCalls.slice(callsBefore);
    presented = refreshes.map((c) => c.presented);
    reused = presented.length - new Set(presented).size;
    summary = refreshes.map((c) => [c.grant_type, c.status, c.error, presented.indexOf(c.presented)]);
    if (reused >= 1 || refreshes.some((c) => c.status !== 200)) {
      break;
    }
  }
  eq(refreshes.filter((c) => c.status !== 200).map((c) => c.error), [], step, `refused refreshes ${JSON.stringify(summary)}`);
  results.forEach((r, i) => {
    check(r.status === "fulfilled", step, `call ${i + 1} failed: ${r.reason?.message} (refreshes ${JSON.stringify(summary)})`);
    eq(r.value.content?.[0]?.text, `${spec.subject}: call ${i + 1}`, step, `call ${i + 1} answer`);
  });
  check(refreshes.length >= 1 && refreshes.every((c) => c.grant_type === "refresh_token"), step, `token calls ${JSON.stringify(summary)}`);
  check(reused >= 1, step, `the SDK presented no refresh token twice (${JSON.stringify(summary)}): nothing was tested`);
  eq(provider.invalidated, [], step, "credentials the SDK threw away");
  // Still signed in: the tokens the SDK kept work.
  const after = await client.callTool({ name: "echo", arguments: { text: "after" } });
  eq(after.content?.[0]?.text, `${spec.subject}: after`, step, "a call after the storm");
  const kept = provider.tokens();
  eq((await introspect(spec, kept.access_token)).active, true, step, "the kept access token");
  // After the window the first refresh token is a replay: refused, and its
  // family with it (the access token in use is no longer active).
  await sleep((spec.reuse_window + 1) * 1000);
  const resp = await fetch(`${spec.issuer}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: first.refresh_token, client_id: provider.clientInformation().client_id }).toString(),
  });
  const j = await resp.json().catch(() => ({}));
  eq([resp.status, j.error], [400, "invalid_grant"], step, "replay after the window");
  eq((await introspect(spec, kept.access_token)).active, false, step, "the family after the replay");
  return { refreshes: summary, reused, unauthorized: mcp.stats.unauthorized.length };
}

await runFlow(flow);
