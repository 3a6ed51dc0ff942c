// RFC 9701 signed introspection answers checked by third-party code, for
// tests/integration/test_signed_interop.py: npm `jose` verifies given JWTs
// against tokend's /jwks.json (and recomputes every kid as an RFC 7638
// thumbprint), and oauth4webapi 3 discovers tokend, asks for a signed answer
// (Accept: application/token-introspection+jwt), processes it with
// processIntrospectionResponse (typ, alg from the metadata, iss, aud, iat)
// and verifies its signature with validateApplicationLevelSignature.
//
// spec (stdin): {"issuer", "client_id", "client_secret", "token" (or null),
//                "jwts": [compact JWTs to verify with jose]}
// output: {"jwks": [kids], "thumbprints_ok": bool,
//          "jose": [{"ok": true, "kid", "payload"} | {"ok": false, "code", "error"}],
//          "oauth4webapi": {"ok": true, "result", "kid"} | {"ok": false, ...} | null}
// The issuer is plain http on loopback: oauth4webapi refuses that unless
// told to allow insecure requests, which only a test may do.
import * as jose from "jose";
import * as oauth from "oauth4webapi";

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function failure(e) {
  return { ok: false, name: e.name, code: e.code ?? null, error: String(e.message ?? e) };
}

async function withJose(spec, jwks) {
  const keySet = jose.createLocalJWKSet(jwks);
  const out = [];
  for (const jwt of spec.jwts) {
    try {
      const { payload, protectedHeader } = await jose.jwtVerify(jwt, keySet, {
        issuer: spec.issuer,
        audience: spec.client_id,
        typ: "token-introspection+jwt",
        algorithms: ["ES256"],
      });
      out.push({ ok: true, kid: protectedHeader.kid, payload });
    } catch (e) {
      out.push(failure(e));
    }
  }
  return out;
}

async function withOauth4webapi(spec) {
  const insecure = { [oauth.allowInsecureRequests]: true };
  const issuer = new URL(spec.issuer);
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }),
  );
  const client = { client_id: spec.client_id };
  const auth = oauth.ClientSecretBasic(spec.client_secret);
  try {
    const response = await oauth.introspectionRequest(as, client, auth, spec.token, {
      requestJwtResponse: true,
      ...insecure,
    });
    const ctype = response.headers.get("content-type");
    const text = await response.clone().text();
    const result = await oauth.processIntrospectionResponse(as, client, response);
    await oauth.validateApplicationLevelSignature(as, response, insecure);
    const kid = jose.decodeProtectedHeader(text).kid;
    return { ok: true, result, kid, content_type: ctype };
  } catch (e) {
    return failure(e);
  }
}

const spec = await readStdin();
const res = await fetch(new URL("/jwks.json", spec.issuer));
const jwks = await res.json();
let thumbprintsOk = jwks.keys.length > 0;
for (const k of jwks.keys) {
  thumbprintsOk = thumbprintsOk && (await jose.calculateJwkThumbprint(k, "sha256")) === k.kid;
}
const out = {
  jwks: jwks.keys.map((k) => k.kid),
  thumbprints_ok: thumbprintsOk,
  jose: await withJose(spec, jwks),
  oauth4webapi: spec.token ? await withOauth4webapi(spec) : null,
};
process.stdout.write(JSON.stringify(out) + "\n");
