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
// told to allow insecure requests, which only a test may do. With an https
// issuer ("https": true) no such option is given: the test CA is trusted the
// way any Node process trusts a private CA (NODE_EXTRA_CA_CERTS), and "lib":
// "node-https" posts the introspection with Node's own https module
// (verification on, the CA from "ca").
import * as client from "openid-client";
import * as oauth from "oauth4webapi";
import * as https from "node:https";
import * as fs from "node:fs";

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
    execute: spec.https ? [] : [client.allowInsecureRequests],
  });
  if (spec.endpoint === "revoke") {
    await client.tokenRevocation(config, spec.token);
    return null;
  }
  return await client.tokenIntrospection(config, spec.token);
}

async function withOauth4webapi(spec) {
  const issuer = new URL(spec.issuer);
  const opts = spec.https ? {} : { [oauth.allowInsecureRequests]: true };
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

// Node's https: POST /introspect, client_secret_basic, the answer's JSON.
function withNodeHttps(spec) {
  const body = new URLSearchParams({ token: spec.token }).toString();
  const basic = Buffer.from(
    encodeURIComponent(spec.client_id) + ":" + encodeURIComponent(spec.client_secret),
  ).toString("base64");
  const url = new URL(spec.issuer + "/introspect");
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: "POST",
        ca: fs.readFileSync(spec.ca),
        headers: {
          authorization: "Basic " + basic,
          "content-type": "application/x-www-form-urlencoded",
          "content-length": Buffer.byteLength(body),
        },
      },
      (res) => {
        const proto = res.socket.getProtocol();
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200) {
            reject(Object.assign(new Error(text), { status: res.statusCode }));
            return;
          }
          resolve({ ...JSON.parse(text), _tls: proto });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const spec = await readStdin();
let out;
try {
  const run =
    spec.lib === "oauth4webapi"
      ? withOauth4webapi
      : spec.lib === "node-https"
        ? withNodeHttps
        : withOpenidClient;
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
