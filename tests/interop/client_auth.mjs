// Real OAuth client libraries against tokend's /introspect and /revoke, for
// tests/integration/test_client_interop.py: openid-client 6 and oauth4webapi
// 3 discover the server (RFC 8414 metadata), then introspect or revoke a
// token with client_secret_post or client_secret_basic, and we print what
// the library surfaced: the result, or the error it threw, as JSON.
//
// spec (stdin): {"issuer", "lib": "openid-client" | "oauth4webapi",
//                "method": "client_secret_post" | "client_secret_basic",
//                "endpoint": "introspect" | "revoke",
//                "client_id", "client_secret", "token"}
// output: {"ok": true, "result"} or
//         {"ok": false, "name", "code", "error", "status", "challenges"}
// The issuer is plain http on loopback: both libraries refuse that unless
// told to allow insecure requests, which only a test may do.
import * as client from "openid-client";
import * as oauth from "oauth4webapi";

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function withOpenidClient(spec) {
  const auth =
    spec.method === "client_secret_basic"
      ? client.ClientSecretBasic(spec.client_secret)
      : client.ClientSecretPost(spec.client_secret);
  const config = await client.discovery(new URL(spec.issuer), spec.client_id, undefined, auth, {
    algorithm: "oauth2",
    execute: [client.allowInsecureRequests],
  });
  if (spec.endpoint === "revoke") {
    await client.tokenRevocation(config, spec.token);
    return null;
  }
  return await client.tokenIntrospection(config, spec.token);
}

async function withOauth4webapi(spec) {
  const issuer = new URL(spec.issuer);
  const opts = { [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { ...opts, algorithm: "oauth2" }),
  );
  const c = { client_id: spec.client_id };
  const auth =
    spec.method === "client_secret_basic"
      ? oauth.ClientSecretBasic(spec.client_secret)
      : oauth.ClientSecretPost(spec.client_secret);
  if (spec.endpoint === "revoke") {
    const resp = await oauth.revocationRequest(as, c, auth, spec.token, opts);
    await oauth.processRevocationResponse(resp);
    return null;
  }
  const resp = await oauth.introspectionRequest(as, c, auth, spec.token, opts);
  return await oauth.processIntrospectionResponse(as, c, resp);
}

const spec = await readStdin();
let out;
try {
  const run = spec.lib === "oauth4webapi" ? withOauth4webapi : withOpenidClient;
  out = { ok: true, result: await run(spec) };
} catch (e) {
  out = {
    ok: false,
    name: e?.name ?? null,
    code: e?.code ?? null,
    error: e?.error ?? null,
    status: e?.status ?? null,
    challenges: Array.isArray(e?.cause) ? e.cause : null,
    message: String(e?.message ?? e),
  };
}
process.stdout.write(JSON.stringify(out) + "\n");
