// Third-party signers for tokend's interop test: reads a JSON spec on stdin,
// makes fresh keys with the npm `jose` library, signs logout tokens and SETs
// with them (RS256 and ES256), signs webhooks with the npm `standardwebhooks`
// package, and prints {jwks, logout, sets, webhooks} as JSON on stdout.
//
// spec: {"issuer", "audience",
//        "logout":   [{"alg", "claims"}],            iat, exp, jti added
//        "sets":     [{"alg", "claims"}],            iat, jti added
//        "webhooks": [{"secret", "id", "payload"}]}  timestamp = now
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { Webhook } from "standardwebhooks";
import { randomUUID } from "node:crypto";

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function makeKeys() {
  const keys = {};
  for (const [alg, kid] of [["RS256", "jose-rs256"], ["ES256", "jose-es256"]]) {
    const { publicKey, privateKey } = await generateKeyPair(alg, { modulusLength: 2048 });
    const jwk = await exportJWK(publicKey);
    keys[alg] = { kid, privateKey, jwk: { ...jwk, kid, alg, use: "sig" } };
  }
  return keys;
}

function sign(keys, spec, item, typ, withExp) {
  const k = keys[item.alg];
  let jwt = new SignJWT(item.claims)
    .setProtectedHeader({ alg: item.alg, kid: k.kid, typ })
    .setIssuer(spec.issuer)
    .setAudience(spec.audience)
    .setIssuedAt()
    .setJti(randomUUID());
  if (withExp) jwt = jwt.setExpirationTime("2m");
  return jwt.sign(k.privateKey);
}

const spec = await readStdin();
const keys = await makeKeys();
const out = {
  jwks: { keys: Object.values(keys).map((k) => k.jwk) },
  logout: [],
  sets: [],
  webhooks: [],
};
for (const item of spec.logout ?? []) out.logout.push(await sign(keys, spec, item, "logout+jwt", true));
for (const item of spec.sets ?? []) out.sets.push(await sign(keys, spec, item, "secevent+jwt", false));
for (const w of spec.webhooks ?? []) {
  const body = JSON.stringify(w.payload);
  const now = new Date();
  const signature = new Webhook(w.secret).sign(w.id, now, body);
  out.webhooks.push({
    body,
    headers: {
      "webhook-id": w.id,
      "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
      "webhook-signature": signature,
    },
  });
}
process.stdout.write(JSON.stringify(out));
