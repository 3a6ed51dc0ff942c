// "The company IdP" for tests/integration/test_oidc_login.py: the certified
// Node OpenID provider (npm oidc-provider) on a loopback port, with one
// client registered for tokend (its /login/callback as redirect URI and its
// /backchannel-logout as back-channel logout URI, sid required) and the
// provider's own development interactions (login and consent forms), which
// the test drives over HTTP.
//
// Usage: node idp.mjs PORT TOKEND_BASE CLIENT_SECRET [EMAIL_DOMAIN [USERS]]
// EMAIL_DOMAIN (default example.test) makes each user's email
// USER@EMAIL_DOMAIN; USERS (comma-separated) are the only accounts this IdP
// knows (default: any name signs in; another name gets the provider's error
// page and never comes back to tokend). tests/integration/test_oidc_orgs.py
// starts two, "home" and "partner", each with its own users.
// Prints "ready <issuer>" on stdout once listening.
import Provider from 'oidc-provider';

const [port, tokend, secret, domain = 'example.test', users = ''] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const known = users === '' ? null : new Set(users.split(','));

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'tokend',
    client_secret: secret,
    redirect_uris: [`${tokend}/login/callback`],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    backchannel_logout_uri: `${tokend}/backchannel-logout`,
    backchannel_logout_session_required: true,
  }],
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  cookies: { keys: ['tokend-test-cookie-key-not-secret'] },
  claims: { openid: ['sub'], email: ['email'] },
  findAccount: async (ctx, id) => (known !== null && !known.has(id) ? undefined : {
    accountId: id,
    claims: async () => ({ sub: id, email: `${id}@${domain}` }),
  }),
  // A stock oidc-provider refuses to post logout tokens to loopback or
  // private addresses (its SSRF guard, a dispatcher it passes to fetch). The
  // test's tokend is on loopback: drop the guard here, in the test only. A
  // production IdP needs to reach tokend on a routable address.
  fetch: (url, options) => {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
});
provider.proxy = false;
provider.on('backchannel.error', (ctx, err) => console.error('backchannel.error', err));
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = provider.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
