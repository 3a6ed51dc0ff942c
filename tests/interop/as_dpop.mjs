// DPoP (RFC 9449) end to end, for tests/integration/test_dpop.py: oauth4webapi
// registers a public agent, the browser (dev login, consent) authorizes it,
// the library redeems the code with a DPoP proof (its DPoP(client, keyPair)
// handle) and gets a DPoP-bound token (token_type DPoP), then calls the app
// behind nginx auth_request -> tokend /auth with oauth.protectedResourceRequest
// and a fresh proof: 200. Then each refusal, with proofs made here by
// WebCrypto (ES256 signs r || s, as JWS wants): the token as a plain Bearer,
// another key's proof, a replayed proof, a proof for another URL, for another
// method, with a wrong ath, with an old iat — each 401 with a DPoP challenge
// naming the error. A hand-made good proof passes first, so every refusal is
// the one property changed. The refresh token (public client: bound too)
// refreshes with the same key and is refused with another key's proof.
//
// With "nonce": true (tokend --dpop-nonce 1) the library meets use_dpop_nonce
// at the token endpoint and at the resource (through nginx, which passes the
// DPoP-Nonce header on), retries with the nonce it cached, and succeeds; a
// hand-made proof without the nonce gets 401 use_dpop_nonce, with it 200.
//
// spec: {"issuer", "resource", "scope", "nginx_url", "subject", "nonce"}
import * as oauth from "oauth4webapi";
import { Browser, FlowError, check, eq, loopbackListener, runFlow } from "./as_browser.mjs";
import { webcrypto as crypto } from "node:crypto";

const b64u = (buf) => Buffer.from(buf).toString("base64url");
const enc = (o) => b64u(Buffer.from(JSON.stringify(o)));

async function proof(keyPair, { htm, htu, iat, ath, jti, jwkOf, nonce }) {
  const jwk = await crypto.subtle.exportKey("jwk", (jwkOf ?? keyPair).publicKey);
  const header = { typ: "dpop+jwt", alg: "ES256", jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } };
  const claims = { jti: jti ?? b64u(crypto.getRandomValues(new Uint8Array(24))), htm, htu, iat: iat ?? Math.floor(Date.now() / 1000) };
  if (ath !== undefined) claims.ath = ath;
  if (nonce !== undefined) claims.nonce = nonce;
  const input = `${enc(header)}.${enc(claims)}`;
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keyPair.privateKey, Buffer.from(input));
  return `${input}.${b64u(sig)}`;
}

async function athOf(token) {
  return b64u(await crypto.subtle.digest("SHA-256", Buffer.from(token)));
}

async function call(url, method, auth, dpop) {
  const headers = { authorization: auth };
  if (dpop !== undefined) headers.dpop = dpop;
  const resp = await fetch(url, { method, headers, redirect: "manual" });
  await resp.text();
  return { status: resp.status, www: resp.headers.get("www-authenticate") ?? "", nonce: resp.headers.get("dpop-nonce") };
}

function refused(r, step, error) {
  eq(r.status, 401, step, "status");
  check(r.www.startsWith("DPoP ") && r.www.includes(`error="${error}"`) && r.www.includes('algs="ES256"'), step,
    `WWW-Authenticate ${JSON.stringify(r.www)} (want DPoP error="${error}", algs)`);
}

runFlow(async (spec) => {
  // In nonce mode the first try must meet use_dpop_nonce, the retry pass.
  const withNonce = async (step, fn) => {
    if (!spec.nonce) return await fn();
    try {
      await fn();
    } catch (e) {
      check(oauth.isDPoPNonceError(e), step, `want use_dpop_nonce, got ${e?.message}`);
      return await fn();
    }
    throw new FlowError(step, "no server nonce was demanded");
  };
  const issuer = new URL(spec.issuer);
  const opts = { [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...opts, algorithm: "oauth2" }));
  check((as.dpop_signing_alg_values_supported ?? []).includes("ES256"), "metadata", "dpop_signing_alg_values_supported");
  const listener = await loopbackListener();
  const redirectUri = `http://127.0.0.1:${listener.port}/cb`;
  try {
    const resp = await oauth.dynamicClientRegistrationRequest(as, {
      client_name: "dpop agent", redirect_uris: [redirectUri], token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
    }, opts);
    const c = await oauth.processDynamicClientRegistrationResponse(resp);
    const keyPair = await oauth.generateKeyPair("ES256", { extractable: true });
    const other = await oauth.generateKeyPair("ES256", { extractable: true });
    const dpop = oauth.DPoP(c, keyPair);

    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const u = new URL(as.authorization_endpoint);
    for (const [k, v] of Object.entries({
      response_type: "code", client_id: c.client_id, redirect_uri: redirectUri, scope: spec.scope,
      resource: spec.resource, state, code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    })) u.searchParams.set(k, v);
    const browser = new Browser(issuer.origin);
    const b = await browser.authorize(u, { subject: spec.subject, redirectUri, clientId: c.client_id });
    const params = oauth.validateAuthResponse(as, c, b.callback, state);
    const grant = async () => oauth.authorizationCodeGrantRequest(as, c, oauth.None(), params, redirectUri, verifier, {
      ...opts, DPoP: dpop, additionalParameters: { resource: spec.resource },
    });
    const tokens = await withNonce("token", async () => oauth.processAuthorizationCodeResponse(as, c, await grant()));
    eq(String(tokens.token_type).toLowerCase(), "dpop", "token", "token_type");
    const at = tokens.access_token;

    // Accepted: the library's own proof (htm, htu, ath, a fresh jti).
    const url = `${spec.nginx_url}/docs/1?page=2`;
    const ok = await withNonce("library call", () =>
      oauth.protectedResourceRequest(at, "GET", new URL(url), new Headers(), null, { ...opts, DPoP: dpop }));
    eq(ok.status, 200, "library call", "status");

    const ath = await athOf(at);
    const now = () => Math.floor(Date.now() / 1000);
    if (spec.nonce) {
      const bare = await call(url, "GET", `DPoP ${at}`, await proof(keyPair, { htm: "GET", htu: url, ath }));
      refused(bare, "proof without nonce", "use_dpop_nonce");
      check(typeof bare.nonce === "string" && bare.nonce.length > 0, "proof without nonce", "no DPoP-Nonce header through nginx");
      const withIt = await call(url, "GET", `DPoP ${at}`, await proof(keyPair, { htm: "GET", htu: url, ath, nonce: bare.nonce }));
      eq(withIt.status, 200, "proof with the nonce", "status");
      return { access_token: at, nonce: true };
    }
    const good = await proof(keyPair, { htm: "GET", htu: url, ath });
    eq((await call(url, "GET", `DPoP ${at}`, good)).status, 200, "hand-made proof", "status");

    refused(await call(url, "GET", `Bearer ${at}`), "plain bearer", "invalid_token");
    refused(await call(url, "GET", `DPoP ${at}`), "no proof", "invalid_dpop_proof");
    refused(await call(url, "GET", `DPoP ${at}`, await proof(other, { htm: "GET", htu: url, ath })), "another key", "invalid_dpop_proof");
    refused(await call(url, "GET", `DPoP ${at}`, good), "replayed proof", "invalid_dpop_proof");
    refused(await call(url, "GET", `DPoP ${at}`, await proof(keyPair, { htm: "GET", htu: `${spec.nginx_url}/other`, ath })), "another URL", "invalid_dpop_proof");
    refused(await call(url, "GET", `DPoP ${at}`, await proof(keyPair, { htm: "POST", htu: url, ath })), "another method", "invalid_dpop_proof");
    refused(await call(url, "GET", `DPoP ${at}`, await proof(keyPair, { htm: "GET", htu: url, ath: await athOf("x") })), "wrong ath", "invalid_dpop_proof");
    refused(await call(url, "GET", `DPoP ${at}`, await proof(keyPair, { htm: "GET", htu: url, ath, iat: now() - 600 })), "old iat", "invalid_dpop_proof");
    // A proof signed by one key carrying another's jwk.
    refused(await call(url, "GET", `DPoP ${at}`, await proof(keyPair, { htm: "GET", htu: url, ath, jwkOf: other })), "jwk not the signer", "invalid_dpop_proof");

    // The refresh token is bound (public client): another key is refused, ours works.
    const badRefresh = await oauth.refreshTokenGrantRequest(as, c, oauth.None(), tokens.refresh_token, { ...opts, DPoP: oauth.DPoP(c, other) });
    eq(badRefresh.status, 400, "refresh with another key", "status");
    eq((await badRefresh.json()).error, "invalid_dpop_proof", "refresh with another key", "error");
    const refreshed = await oauth.processRefreshTokenResponse(as, c,
      await oauth.refreshTokenGrantRequest(as, c, oauth.None(), tokens.refresh_token, { ...opts, DPoP: dpop }));
    eq(String(refreshed.token_type).toLowerCase(), "dpop", "refresh", "token_type");

    // At the token endpoint too, a proof is good once: the same proof again is refused.
    const tokenUrl = as.token_endpoint;
    const tp = await proof(keyPair, { htm: "POST", htu: tokenUrl });
    const post = (rt) => fetch(tokenUrl, {
      method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", dpop: tp },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: rt, client_id: c.client_id }),
    });
    const first = await post(refreshed.refresh_token);
    eq(first.status, 200, "hand-made token proof", "status");
    const again = await (await post((await first.json()).refresh_token)).json();
    eq(again.error, "invalid_dpop_proof", "replayed token proof", "error");
    const jwk = await crypto.subtle.exportKey("jwk", keyPair.publicKey);
    const canon = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
    const jkt = b64u(await crypto.subtle.digest("SHA-256", Buffer.from(canon)));
    return { access_token: at, refreshed: refreshed.access_token, jkt, client: c.client_id };
  } finally {
    await listener.close();
  }
});
