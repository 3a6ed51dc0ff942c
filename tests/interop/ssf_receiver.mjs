// An SSF push receiver (RFC 8935) written with npm `jose`, for
// tests/integration/test_ssf_transmitter.py: every SET tokend pushes is
// verified against tokend's /jwks.json (ES256 only, typ secevent+jwt, iss,
// aud) and, when it verifies, appended to a JSON-lines log and answered 202.
// Anything else is logged as a rejection and answered 400 (RFC 8935 §2.3).
//
// usage: node ssf_receiver.mjs PORT PORT_FILE LOG JWKS_URL ISSUER AUDIENCE BEARER
//   PORT 0 = ephemeral (the port is written to PORT_FILE once listening).
import fs from "node:fs";
import http from "node:http";
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from "jose";

const [port, portFile, log, jwksUrl, issuer, audience, bearer] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(jwksUrl), { cooldownDuration: 0 });

function record(entry) {
  fs.appendFileSync(log, JSON.stringify(entry) + "\n");
}

function answer(res, status, body) {
  res.writeHead(status, body ? { "Content-Type": "application/json" } : {});
  res.end(body ? JSON.stringify(body) : "");
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    const body = Buffer.concat(chunks).toString("utf8");
    if (req.method !== "POST" || req.url !== "/events") {
      return answer(res, 404);
    }
    if (req.headers["authorization"] !== "Bearer " + bearer) {
      record({ rejected: "authentication_failed", auth: req.headers["authorization"] ?? null });
      return answer(res, 401, { err: "authentication_failed" });
    }
    if (req.headers["content-type"] !== "application/secevent+jwt") {
      record({ rejected: "content-type", got: req.headers["content-type"] ?? null });
      return answer(res, 400, { err: "invalid_request" });
    }
    try {
      const { payload, protectedHeader } = await jwtVerify(body, jwks, {
        issuer,
        audience,
        typ: "secevent+jwt",
        algorithms: ["ES256"],
      });
      record({ header: protectedHeader, payload, raw: body });
      return answer(res, 202);
    } catch (e) {
      let header = null;
      try {
        header = decodeProtectedHeader(body);
      } catch {}
      record({ rejected: String(e.code || e.message), header });
      return answer(res, 400, { err: "invalid_key", description: String(e.message) });
    }
  });
});

server.listen(Number(port), "127.0.0.1", () => {
  const tmp = portFile + ".tmp";
  fs.writeFileSync(tmp, server.address().port + "\n");
  fs.renameSync(tmp, portFile);
});
