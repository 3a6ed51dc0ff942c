// A real browser for tests/integration/test_as_browser.py: Debian's chromium
// driven by playwright-core, steered by the Python test one command at a time.
//
// Protocol: one JSON object per line on stdin, one JSON answer per line on
// stdout ({"ok":true,...} or {"ok":false,"error":"..."}). The test asserts;
// this script only acts and reports what the browser saw. Commands:
//   {"op":"goto","url":U}                 navigate; answer the final response
//   {"op":"fill","selector":S,"value":V}  type into a field
//   {"op":"click","selector":S}           click and wait for the navigation it starts
//   {"op":"eval","expr":E}                evaluate an expression in the page (JSON result)
//   {"op":"frames"}                       every frame: url, and whether its document has a body text / #approve
//   {"op":"viewport","width":W,"height":H}
//   {"op":"screenshot","path":P,"full":B}
//   {"op":"events"}                       dialogs, console messages and page errors seen so far (then cleared)
//   {"op":"newpage"} / {"op":"usepage","index":I}  tabs of the same browser profile
//   {"op":"close"}
// A "response" answer carries the final URL, the status and all headers of the
// main document (after redirects), and the redirect chain with each hop's
// status and Location, so the test sees every 303 the browser followed.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const NAV_TIMEOUT = 15000;

const profile = mkdtempSync(join(tmpdir(), 'tokend-chromium-'));
const events = { dialogs: [], console: [], pageerrors: [] };
let ctx;
let pages = [];
let page;

function watch(p) {
  p.on('dialog', async (d) => {
    events.dialogs.push({ type: d.type(), message: d.message() });
    await d.dismiss().catch(() => {});
  });
  p.on('console', (m) => events.console.push({ type: m.type(), text: m.text() }));
  p.on('pageerror', (e) => events.pageerrors.push(String(e)));
  p.setDefaultTimeout(NAV_TIMEOUT);
  p.setDefaultNavigationTimeout(NAV_TIMEOUT);
  return p;
}

async function describe(resp) {
  if (!resp) return { url: page.url(), status: null, headers: {}, chain: [] };
  const chain = [];
  let req = resp.request().redirectedFrom();
  while (req) {
    const r = await req.response();
    chain.unshift({ url: req.url(), status: r ? r.status() : null,
      location: r ? (await r.allHeaders()).location || null : null });
    req = req.redirectedFrom();
  }
  return { url: page.url(), status: resp.status(), headers: await resp.allHeaders(), chain };
}

const ops = {
  async goto(c) {
    return describe(await page.goto(c.url, { waitUntil: 'load' }));
  },
  async fill(c) {
    await page.fill(c.selector, c.value);
    return {};
  },
  async click(c) {
    const [resp] = await Promise.all([
      page.waitForNavigation({ waitUntil: 'load' }),
      page.click(c.selector),
    ]);
    return describe(resp);
  },
  async eval(c) {
    return { value: await page.evaluate(c.expr) };
  },
  async frames() {
    const out = [];
    for (const f of page.frames()) {
      let text = null;
      let approve = false;
      try {
        text = await f.evaluate(() => (document.body ? document.body.innerText : ''));
        approve = await f.evaluate(() => document.querySelector('#approve') !== null);
      } catch (e) {
        text = null; // an error page the test cannot read counts as blank
      }
      out.push({ url: f.url(), main: f === page.mainFrame(), text, approve });
    }
    return { frames: out };
  },
  async viewport(c) {
    await page.setViewportSize({ width: c.width, height: c.height });
    return {};
  },
  async screenshot(c) {
    await page.screenshot({ path: c.path, fullPage: !!c.full });
    return {};
  },
  async events() {
    const out = { dialogs: events.dialogs.splice(0), console: events.console.splice(0),
      pageerrors: events.pageerrors.splice(0) };
    return out;
  },
  async newpage() {
    page = watch(await ctx.newPage());
    pages.push(page);
    return { index: pages.length - 1 };
  },
  async usepage(c) {
    page = pages[c.index];
    await page.bringToFront();
    return {};
  },
};

async function main() {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: EXE, headless: true, args: ARGS, viewport: { width: 1024, height: 768 },
  });
  pages = ctx.pages().length ? [ctx.pages()[0]] : [await ctx.newPage()];
  page = watch(pages[0]);
  process.stdout.write(JSON.stringify({ ok: true, ready: true, version: ctx.browser()
    ? ctx.browser().version() : null }) + '\n');
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let c;
    try {
      c = JSON.parse(line);
    } catch (e) {
      process.stdout.write(JSON.stringify({ ok: false, error: 'bad JSON: ' + e }) + '\n');
      continue;
    }
    if (c.op === 'close') break;
    let ans;
    try {
      if (!ops[c.op]) throw new Error('unknown op ' + c.op);
      ans = { ok: true, ...(await ops[c.op](c)) };
    } catch (e) {
      ans = { ok: false, error: String(e && e.message ? e.message : e), url: page.url() };
    }
    process.stdout.write(JSON.stringify(ans) + '\n');
  }
}

let rc = 0;
try {
  await main();
} catch (e) {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  rc = 1;
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(rc); // stdin may still be open: do not wait for it
