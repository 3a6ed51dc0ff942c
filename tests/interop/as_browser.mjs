// The parts of the authorization-server interop tests (tests/integration/
// test_as_clients.py) that are not a client library: a user's browser over
// plain HTTP, the loopback listener a native client waits on, and the line
// protocol with the Python driver.
//
// The browser follows redirects itself (fetch with redirect: "manual") and
// keeps tokend's cookies by hand: node's fetch has no cookie jar, and a
// real browser accepts a `__Host-` cookie from http://127.0.0.1 (a
// potentially trustworthy origin) although it is `Secure`. Besides the
// session cookie it keeps the pre-login cookie /authorize sets (only the
// browser holding it may sign in for the request). It signs in with
// the development login and approves the consent page, reading the hidden
// `request` and `csrf` inputs the way a form post would send them. Every
// step checks what the contract (AS_CONTRACT.md) says and throws a
// FlowError naming the step otherwise.
import * as http from "node:http";
import * as readline from "node:readline";

export class FlowError extends Error {
  constructor(step, message, detail) {
    super(`${step}: ${message}`);
    this.step = step;
    this.detail = detail;
  }
}

export function check(cond, step, message, detail) {
  if (!cond) throw new FlowError(step, message, detail);
}

export function eq(got, want, step, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new FlowError(step, `${what}: got ${g}, want ${w}`);
}

// ---- Talking to the Python driver ------------------------------------------------

const lines = readline.createInterface({ input: process.stdin });
const pending = [];
const waiting = [];
lines.on("line", (l) => {
  if (waiting.length) waiting.shift()(l);
  else pending.push(l);
});

/** The first stdin line: the JSON spec. */
export async function readSpec() {
  return JSON.parse(await nextLine());
}

export function nextLine() {
  if (pending.length) return Promise.resolve(pending.shift());
  return new Promise((resolve) => waiting.push(resolve));
}

/** Tell the driver something (one JSON line on stdout). */
export function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

/** Emit an event and wait for the driver's answer line (JSON). */
export async function ask(obj) {
  emit(obj);
  const l = await nextLine();
  const ans = JSON.parse(l);
  if (!ans.ok) throw new FlowError(obj.event, `driver refused: ${ans.message ?? l}`);
  return ans;
}

/** Run main(spec); print {"event":"done",…} or {"event":"failed",…}; exit. */
export async function runFlow(main) {
  let code = 0;
  try {
    const spec = await readSpec();
    const out = await main(spec);
    emit({ event: "done", ...out });
  } catch (e) {
    code = 1;
    emit({
      event: "failed",
      step: e?.step ?? null,
      message: String(e?.message ?? e),
      name: e?.name ?? null,
      code: e?.code ?? null,
      error: e?.error ?? null,
      status: e?.status ?? null,
      detail: e?.detail ?? null,
      stack: String(e?.stack ?? ""),
    });
  }
  lines.close();
  process.exit(code);
}

// ---- HTML --------------------------------------------------------------------------

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", "#39": "'", "#x27": "'" };

export function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e) => {
    if (e in ENTITIES) return ENTITIES[e];
    if (e[0] === "#") {
      const n = e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return String.fromCodePoint(n);
    }
    return m;
  });
}

function attrs(tag) {
  const out = {};
  const re = /([A-Za-z_:][-A-Za-z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  const body = tag.replace(/^<[A-Za-z]+/, "").replace(/\/?>$/, "");
  let m;
  while ((m = re.exec(body)) !== null) {
    out[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return out;
}

/** The forms of a page: [{action, method, inputs: [{name,type,value,id}], buttons}]. */
export function forms(html) {
  const out = [];
  const re = /<form\b[^>]*>([\s\S]*?)<\/form>/gi;
  let m;
  while ((m = re.exec(html)) !== null) {
    const f = attrs(m[0].match(/^<form\b[^>]*>/i)[0]);
    const inputs = [...m[1].matchAll(/<input\b[^>]*>/gi)].map((t) => attrs(t[0]));
    const buttons = [...m[1].matchAll(/<button\b[^>]*>/gi)].map((t) => attrs(t[0]));
    out.push({ action: f.action ?? "", method: (f.method ?? "get").toLowerCase(), inputs, buttons });
  }
  return out;
}

function hidden(form, name, step) {
  const i = form.inputs.find((x) => x.name === name && (x.type ?? "").toLowerCase() === "hidden");
  check(i && i.value, step, `the form has no hidden input "${name}" with a value`, form);
  return i.value;
}

// ---- The browser ---------------------------------------------------------------------

const COOKIE = "__Host-tokend-session";
const MAX_HOPS = 12;

export class Browser {
  constructor(origin) {
    this.origin = origin; // tokend's origin: the only one that gets the cookie
    this.cookie = null; // value of __Host-tokend-session
    this.cookieAttrs = null;
    this.others = new Map(); // tokend's other __Host- cookies (the pre-login one)
    this.trail = []; // "METHOD url -> status location"
  }

  signedOut() {
    this.cookie = null;
  }

  async request(url, init = {}) {
    const u = new URL(url);
    const headers = new Headers(init.headers ?? {});
    const pairs = [];
    if (this.cookie !== null) pairs.push(`${COOKIE}=${this.cookie}`);
    for (const [k, v] of this.others) pairs.push(`${k}=${v}`);
    if (pairs.length > 0 && u.origin === this.origin) {
      headers.set("cookie", pairs.join("; "));
    }
    const resp = await fetch(u, { ...init, headers, redirect: "manual" });
    this.trail.push(`${init.method ?? "GET"} ${u.pathname} -> ${resp.status} ${resp.headers.get("location") ?? ""}`);
    if (u.origin === this.origin) this.takeCookies(resp);
    return resp;
  }

  takeCookies(resp) {
    for (const sc of resp.headers.getSetCookie()) {
      const [pair, ...rest] = sc.split(";");
      const eqAt = pair.indexOf("=");
      const name = pair.slice(0, eqAt).trim();
      if (!name.startsWith("__Host-")) continue;
      const a = {};
      for (const r of rest) {
        const [k, ...v] = r.split("=");
        a[k.trim().toLowerCase()] = v.join("=").trim();
      }
      // What a browser requires of a __Host- cookie, and what the contract adds.
      const step = "cookie";
      check("secure" in a, step, `${name} without Secure: ${sc}`);
      check(a.path === "/", step, `${name} without Path=/: ${sc}`);
      check(!("domain" in a), step, `${name} with a Domain: ${sc}`);
      check("httponly" in a, step, `${name} without HttpOnly: ${sc}`);
      check((a.samesite ?? "").toLowerCase() === "lax", step, `${name} not SameSite=Lax: ${sc}`);
      const value = pair.slice(eqAt + 1).trim();
      const expired = a["max-age"] !== undefined && Number(a["max-age"]) <= 0;
      if (name !== COOKIE) {
        if (expired || value === "") this.others.delete(name);
        else this.others.set(name, value);
        continue;
      }
      this.cookie = expired || value === "" ? null : value;
      this.cookieAttrs = a;
    }
  }

  /** The headers every tokend HTML page carries (contract: consent page). */
  static checkPageHeaders(resp, step) {
    const csp = resp.headers.get("content-security-policy") ?? "";
    check(/frame-ancestors 'none'/.test(csp), step, `CSP without frame-ancestors 'none': "${csp}"`);
    check(/form-action 'self'/.test(csp), step, `CSP without form-action 'self': "${csp}"`);
    check(!/script-src[^;]*'unsafe-inline'/.test(csp), step, `CSP allows inline script: "${csp}"`);
    eq((resp.headers.get("x-frame-options") ?? "").toUpperCase(), "DENY", step, "X-Frame-Options");
    eq(resp.headers.get("referrer-policy"), "no-referrer", step, "Referrer-Policy");
    check(/no-store/.test(resp.headers.get("cache-control") ?? ""), step, "Cache-Control without no-store");
    check(/^text\/html/.test(resp.headers.get("content-type") ?? ""), step, "not text/html");
  }

  /**
   * Play the user from the authorization URL to the client's redirect URI:
   * sign in (dev login) as subject when asked, approve the consent page.
   * Returns {callback: URL the browser was sent to, sawLogin, sawConsent,
   * consentHtml, sawPending}. A page with the contract's
   * `<a id="return">` (the agent awaits approval) is followed like a click. The redirect to the client is a 303 (contract); the
   * browser then GETs it, which is what the loopback listener receives.
   * stopAtLogin: return {login: URL} at the first /login instead of
   * signing in (a browser whose session ended is asked to sign in again).
   */
  async authorize(authUrl, { subject, redirectUri, clientId, stopAtLogin = false, decision = "approve" }) {
    let url = new URL(authUrl);
    let method = "GET";
    let body;
    const seen = { sawLogin: false, sawConsent: false, consentHtml: null, sawPending: false };
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      if (url.href.startsWith(redirectUri)) {
        // The client's redirect URI: deliver it as a browser would (a
        // browser tries every address of localhost; node may try one).
        await fetch(url, { redirect: "manual" })
          .catch(() => {
            const v4 = new URL(url);
            if (v4.hostname !== "localhost") throw new FlowError("browser", `cannot reach ${url.href}`);
            v4.hostname = "127.0.0.1";
            return fetch(v4, { redirect: "manual" });
          })
          .then((r) => r.arrayBuffer());
        return { callback: url, ...seen };
      }
      check(url.origin === this.origin, "browser", `sent to a foreign origin ${url.href}`, this.trail);
      const init = { method };
      if (body !== undefined) {
        init.body = body;
        init.headers = { "content-type": "application/x-www-form-urlencoded" };
      }
      const resp = await this.request(url, init);
      const step = `${method} ${url.pathname}`;
      if (resp.status >= 300 && resp.status < 400) {
        await resp.arrayBuffer();
        eq(resp.status, 303, step, `redirect status (trail ${this.trail.join(" | ")})`);
        const loc = resp.headers.get("location");
        check(loc, step, "redirect without Location");
        url = new URL(loc, url);
        method = "GET";
        body = undefined;
        continue;
      }
      const html = await resp.text();
      check(resp.status === 200, step, `status ${resp.status}: ${html.slice(0, 400)}`, this.trail);
      Browser.checkPageHeaders(resp, step);
      if (url.pathname === "/login") {
        seen.sawLogin = true;
        if (stopAtLogin) return { login: url, ...seen };
        const f = forms(html).find((x) => x.method === "post" && x.action.replace(/\?.*$/, "") === "/login");
        check(f, step, "no <form method=post action=/login>", html.slice(0, 400));
        check(f.inputs.some((i) => i.name === "subject"), step, "no subject input");
        const p = new URLSearchParams();
        p.set("request", hidden(f, "request", step));
        p.set("csrf", hidden(f, "csrf", step));
        p.set("subject", subject);
        url = new URL(f.action, url);
        method = "POST";
        body = p.toString();
        continue;
      }
      if (url.pathname === "/consent") {
        seen.sawConsent = true;
        seen.consentHtml = html;
        if (clientId) check(html.includes(clientId), step, `the consent page does not show client_id ${clientId}`);
        const f = forms(html).find((x) => x.method === "post" && x.action.replace(/\?.*$/, "") === "/consent");
        check(f, step, "no <form method=post action=/consent>", html.slice(0, 400));
        const btn = [...f.buttons, ...f.inputs].find((b) => b.name === "decision" && b.value === decision);
        check(btn, step, `no decision=${decision} button`);
        const p = new URLSearchParams();
        p.set("request", hidden(f, "request", step));
        p.set("csrf", hidden(f, "csrf", step));
        p.set("decision", decision);
        url = new URL(f.action, url);
        method = "POST";
        body = p.toString();
        continue;
      }
      const back = [...html.matchAll(/<a\b[^>]*>/gi)].map((t) => attrs(t[0])).find((a) => a.id === "return");
      if (back && !seen.sawPending) {
        // The agent awaits approval (contract): the user follows the page's
        // link back to the agent, which carries error=access_denied.
        seen.sawPending = true;
        seen.pendingHtml = html;
        check(back.href, step, "the return link has no href");
        url = new URL(back.href, url);
        check(url.href.startsWith(redirectUri), step, `the return link leaves for ${url.href}`);
        method = "GET";
        body = undefined;
        continue;
      }
      throw new FlowError(step, `unexpected page ${url.href}: ${html.slice(0, 400)}`, this.trail);
    }
    throw new FlowError("browser", `more than ${MAX_HOPS} hops`, this.trail);
  }
}

// ---- The loopback redirect listener (RFC 8252 §7.3) ---------------------------------

/** An HTTP listener on 127.0.0.1; .port; .calls: every URL it received. */
export async function loopbackListener(host = "127.0.0.1") {
  const calls = [];
  const server = http.createServer((req, res) => {
    calls.push(new URL(req.url, `http://${req.headers.host}`));
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("You may close this window.\n");
  });
  await new Promise((resolve) => server.listen(0, host, resolve));
  return {
    port: server.address().port,
    calls,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** GET through a proxy on the loopback with a Bearer token (or none). */
export async function getVia(url, token) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const resp = await fetch(url, { headers, redirect: "manual" });
  const text = await resp.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // nginx's own error pages are HTML
  }
  return { status: resp.status, www: resp.headers.get("www-authenticate"), json, text };
}

/** The X-Auth-* headers the upstream echo app saw (proxies.Upstream). */
export function identity(echo) {
  const out = {};
  for (const [k, v] of echo?.headers ?? []) if (k.startsWith("x-auth-")) out[k] = v;
  return out;
}
