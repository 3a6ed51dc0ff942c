/*
 * Every fixed limit of tokend, in one place, each with the reason for its
 * value. Run-time settings (config.h) may lower some of them, never raise
 * them: buffers are sized from these at start-up.
 */
#ifndef TOKEND_LIMITS_H
#define TOKEND_LIMITS_H

/* ---- Identifiers and record fields ------------------------------------- */

/* SHA-256 output: tokens and client secrets are stored only as this hash. */
#define TK_HASH_LEN 32
/* Random bytes in a token or secret: 256 bits (docs/ARCHITECTURE.md §2). */
#define TK_SECRET_BYTES 32
/* base64url without padding of TK_SECRET_BYTES: ceil(32 * 4 / 3). */
#define TK_SECRET_B64_LEN 43
/* Readable prefix of a token or secret, e.g. "tkd_at_" (always 7 bytes). */
#define TK_TOKEN_PREFIX_LEN 7
/* A token we issue is exactly prefix + base64url(32 bytes). */
#define TK_TOKEN_LEN (TK_TOKEN_PREFIX_LEN + TK_SECRET_B64_LEN)
/* Longest token string accepted from the network before we even hash it.
 * Longer input cannot be ours, so it is answered as unknown. */
#define TK_TOKEN_IN_MAX 512

/* client_id, sid, grant id: ours are short; foreign ones (IdP sids) fit. */
#define TK_ID_MAX 128
/* Subject identifiers: OIDC allows 255 ASCII characters. */
#define TK_SUB_MAX 255
/* Space-separated scope string. */
#define TK_SCOPE_MAX 1024
/* One audience / resource identifier (an absolute URI). */
#define TK_AUD_MAX 512
/* Client display name. */
#define TK_NAME_MAX 128
/* Issuer URL and other URLs we print. */
#define TK_URL_MAX 512
/* What the IdP said of a sign-in, kept on the session (OIDC Core §2):
 * acr, one value (a short name or a URI: Okta's urn:okta:loa:… values are
 * under 40), and amr, its method references space-separated (RFC 8176
 * values are at most 6 characters; an IdP sends a handful). */
#define TK_ACR_MAX 96
#define TK_AMR_MAX 64
/* Free-text reason stored with a terminated session. */
#define TK_REASON_MAX 128
/* A protected resource's identifier as agent-access records and ops keep it
 * (the agent_access key, client id + this, stays within LMDB's 511 bytes). */
#define TK_ACCESS_RESOURCE_MAX 128
/* Largest encoded record of any kind: bounds every msgpack buffer. */
#define TK_RECORD_MAX 8192
/* Largest encoded op (op.h): one embedded record (TK_OP_PUT_NEW) plus the
 * op's own small fields; bounds every buffer an op is encoded into. */
#define TK_OP_WIRE_MAX (TK_RECORD_MAX + 1024)

/* Largest token id (tk_token_rec.tid): 2^48 tokens, far beyond any store; a
 * bitmap page key stays well inside 64 bits. */
#define TK_TOKEN_ID_MAX ((int64_t)1 << 48)
/* Bytes of one revocation bitmap value: an LMDB page (4096) minus its 16-byte
 * header, so a value is exactly one overflow page; 32640 token ids each. */
#define TK_REVOKED_VALUE_BYTES 4080
/* Bitmap values a reader remembers per snapshot (power of two): 1024 x 32640
 * ids = 33 M tokens before two values share a slot; 24 KiB per reader. */
#define TK_REVCACHE_SLOTS 1024
/* Client records a reader remembers per snapshot (power of two): every
 * introspection reads two (the caller, the token's client), and a deployment
 * has few that matter at a time; about 14 KiB per reader. */
#define TK_CLIENTMEMO_SLOTS 32
/* Tokens a worker prefetches together per batch (tk_store_prefetch_tokens):
 * each walk ends by prefetching a 4 KiB leaf, and a batch's leaves (with
 * their grants' and sessions') should still be in L2/L3 when the batch's
 * real reads reach them: 64 x 3 x 4 KiB = 768 KiB. */
#define TK_PREFETCH_MAX 64
/* prefetch = auto walks only while the tokens tree's leaf pages exceed
 * this (about a large last-level cache; ~150 k tokens): below it the pages
 * a lookup touches are mostly cached already. */
#define TK_PREFETCH_AUTO_BYTES (32ull << 20)
/* A tree level's pages are prefetched only when the level is larger than
 * this: a smaller one stays in the last-level cache by use, where a miss
 * costs less than walking to it. A tree with no such level is not walked. */
#define TK_PREFETCH_LEVEL_BYTES (4ull << 20)

/* Latest time (Unix seconds) in a record or a claim we accept:
 * 9999-12-31T23:59:59Z, the last second RFC 3339 can write. */
#define TK_TIME_MAX 253402300799LL

/* ---- Delegation --------------------------------------------------------- */

/* Hard ceiling on the delegation chain walked per introspection; the
 * configured depth (default TK_DEPTH_DEFAULT) may be lower. */
#define TK_DEPTH_MAX     8
#define TK_DEPTH_DEFAULT 4

/* ---- HTTP --------------------------------------------------------------- */

/* Request line (method, target, version). */
#define TK_HTTP_LINE_MAX 8192
/* Header fields per request; proxies add a handful, clients a dozen. */
#define TK_HTTP_HEADERS_MAX 64
/* Everything from the request line to the blank line. */
#define TK_HTTP_HEAD_MAX 16384
/* Request body: our requests are small forms and signed events. */
#define TK_HTTP_BODY_MAX 65536
/* Bytes buffered per connection: one whole request (head + body). */
#define TK_CONN_IN_MAX (TK_HTTP_HEAD_MAX + TK_HTTP_BODY_MAX)
/* Response bytes buffered per connection (pipelined answers included); a
 * connection stops parsing while this cannot hold one more response. */
#define TK_CONN_OUT_MAX 16384
/* Largest single response (head + body). */
#define TK_RESPONSE_MAX 8192
/* A host name: DNS names are at most 253 bytes without the trailing dot
 * (RFC 1035 §2.3.4); an IPv6 literal in brackets is shorter. */
#define TK_HTTP_HOST_MAX 253
/* One label of a host name (RFC 1035 §2.3.4). */
#define TK_HTTP_HOST_LABEL_MAX 63

/* ---- Form bodies -------------------------------------------------------- */

/* name=value pairs looked at in one form body. */
#define TK_FORM_PAIRS_MAX 64

/* ---- Server ------------------------------------------------------------- */

#define TK_WORKERS_MAX 64
/* Listening addresses every worker serves: the API, the metrics listener,
 * and room for one more kind (each is one multishot accept per worker). */
#define TK_LISTENERS_MAX 4
/* API addresses (listen given several times, e.g. a plain loopback port and
 * a TLS port): the listeners left beside the metrics one. */
#define TK_API_LISTEN_MAX (TK_LISTENERS_MAX - 1)
/* Connections per worker: the table is allocated at start-up. */
#define TK_CONNS_MAX     65536
#define TK_CONNS_DEFAULT 4096
/* Provided receive buffers per worker ring, and their size. */
#define TK_RECV_BUFS     1024
#define TK_RECV_BUF_SIZE 4096
/* Completions harvested per loop turn (one read txn renewal per batch). */
#define TK_CQE_BATCH 256
/* Within a batch, queued submissions (answers, mostly) go to the kernel after
 * every this many completions handled. */
#define TK_SEND_FLUSH 16
/* Timeouts (milliseconds), defaults. */
#define TK_IDLE_TIMEOUT_MS   60000
#define TK_HEADER_TIMEOUT_MS 10000
#define TK_BODY_TIMEOUT_MS   10000
/* How long a graceful shutdown waits for in-flight requests. */
#define TK_DRAIN_TIMEOUT_MS 10000

/* ---- TLS on the listener (src/server/tls.c) ------------------------------ */

/* Ciphertext held per TLS connection between the ring and OpenSSL, one fixed
 * buffer per direction (a BIO pair): incoming holds two receive buffers, so a
 * receive is armed only when one whole buffer fits; outgoing holds one full
 * record (16 KiB plaintext + header, MAC, padding). A peer that sends faster
 * than we decrypt, or reads slower than we answer, waits on these, never
 * grows them. */
#define TK_TLS_NET_IN  (2 * TK_RECV_BUF_SIZE)
#define TK_TLS_NET_OUT 17408
/* Session tickets: lifetime, and how often the ticket key rotates (the
 * previous key still decrypts, so a ticket is good for at most two periods
 * and never past its lifetime). */
#define TK_TLS_TICKET_LIFETIME_S 7200
#define TK_TLS_TICKET_ROTATE_S   3600
/* Client certificates (RFC 8705, src/util/cert.c). A canonical subject DN:
 * far above real DNs (a CN, a few O/OU/C/DC) and small enough to store on a
 * client record. */
#define TK_CERT_DN_MAX 256
/* A canonical subject alternative name with its "dns:"/"uri:"/"ip:"/
 * "email:" prefix: DNS names stop at 253, real URIs and addresses are far
 * shorter; small enough to store on a client record. */
#define TK_CERT_SAN_MAX 256
/* The names of one presented certificate kept for matching: a service
 * certificate names a handful; each costs 32 bytes per TLS connection. */
#define TK_CERT_SANS_MAX 8
/* The DER of a certificate a proxy forwards in a header: real client
 * certificates are 0.5-2 KiB; 8 KiB bounds the decode buffer. */
#define TK_CERT_DER_MAX 8192
/* Proxies whose forwarded client-certificate header is believed
 * (client-cert-proxies): a handful of edge proxies. */
#define TK_CERT_PROXIES_MAX 8
/* The name of that header (client-cert-header). */
#define TK_CERT_HEADER_NAME_MAX 64
/* TLS records decrypted or written per connection per turn (each at most
 * 16 KiB; bounds a loop, the buffers bound the bytes). */
#define TK_TLS_RECORDS_PER_TURN 64

/* ---- Failed client authentication (per worker, src/endpoints/ratelimit.c) -- */

/* Token buckets of failures, keyed by source address (IPv6 /64) and by
 * client id. Each failure takes one token; one comes back per
 * TK_RL_REFILL_MS; an empty bucket answers 429 before any credential is
 * checked. Our secrets are 256-bit, so this limits wasted work and noise
 * more than it protects the secrets. */
#define TK_RL_BURST     20 /* default of --auth-fail-burst (0 turns it off) */
#define TK_RL_BURST_MAX 100000
#define TK_RL_REFILL_MS 1000
/* Table entries per worker (a set-associative cache: TK_RL_WAYS per set,
 * the fullest bucket is evicted); 16 bytes each. */
#define TK_RL_SLOTS 4096
#define TK_RL_WAYS  4

/* ---- Committer ---------------------------------------------------------- */

/* Pending write requests (each up to TK_OPS_PER_REQ ops); full → 503. */
#define TK_COMMIT_QUEUE_MAX     65536
#define TK_COMMIT_QUEUE_DEFAULT 8192
/* Requests applied in one write transaction (one fsync). */
#define TK_COMMIT_BATCH_MAX 4096
/* Ops one request may ask for (e.g. revoke token + revoke its grant). */
#define TK_OPS_PER_REQ 4
/* Map growth: how long the committer waits for every worker to pause (they
 * are woken at once; only a worker that is shutting down takes longer), and
 * how many doublings one batch may ask for. */
#define TK_PAUSE_TIMEOUT_MS 2000
#define TK_GROW_TRIES       8

/* ---- Cluster mode (src/cluster, docs/ARCHITECTURE.md §10) ---------------- */

/* One encoded op: a PUT_NEW carries a whole record, the rest are far smaller. */
#define TK_OP_WIRE_MAX (TK_RECORD_MAX + 1024)
/* One op-log entry: version, op count, then a 2-byte length before each op. */
#define TK_COMMIT_WIRE_MAX (2 + TK_OPS_PER_REQ * (2 + TK_OP_WIRE_MAX))
/* Names in the op log (node id, stream): short, and part of every msg id. */
#define TK_CLUSTER_NAME_MAX 32
/* Comma-separated nats:// URLs of cluster-nats, and how many of them. */
#define TK_CLUSTER_URLS_MAX    1024
#define TK_CLUSTER_SERVERS_MAX 16
/* cluster-max-staleness bounds, ms: below 100 a poll cannot keep up. */
#define TK_CLUSTER_STALENESS_MIN     100
#define TK_CLUSTER_STALENESS_MAX     600000
#define TK_CLUSTER_STALENESS_DEFAULT 3000
/* How long a write waits for the stream's ack and its own apply before 503. */
#define TK_CLUSTER_PUBLISH_TIMEOUT_MS 2000
/* The committer retries a failed batch of log entries after this (never drops one). */
#define TK_CLUSTER_RETRY_MS 100
/* cluster-key-file: at least 32 bytes (an HMAC-SHA256 key as long as its
 * output); at most 1 KiB (a key, not a file of anything). */
#define TK_CLUSTER_KEY_MIN 32
#define TK_CLUSTER_KEY_MAX 1024
/* cluster-key-file holds the signing key and the keys still accepted (key
 * rotation): a few keys, one a line, comments allowed. */
#define TK_CLUSTER_KEYS_MAX     4
#define TK_CLUSTER_KEY_FILE_MAX 8192
/* An entry's signed time: Unix ms, at most 15 digits (year 33658). */
#define TK_CLUSTER_TIME_DIGITS_MAX 15
#define TK_CLUSTER_TIME_MAX        999999999999999ull
/* cluster-replay-window, ms: how much older than the stream's timestamp of
 * its message an entry's signed time may be (a replay, or a publisher's clock
 * behind); half of it the other way (a clock ahead). The stream's duplicate
 * window must cover 1.5 times it (tokend creates it with twice). */
#define TK_CLUSTER_REPLAY_WINDOW_MIN     1000
#define TK_CLUSTER_REPLAY_WINDOW_MAX     600000
#define TK_CLUSTER_REPLAY_WINDOW_DEFAULT 60000
/* cluster-nats-user and its password file: NATS credentials, short strings. */
#define TK_CLUSTER_USER_MAX     128
#define TK_CLUSTER_PASSWORD_MAX 256
_Static_assert(TK_OP_WIRE_MAX <= UINT16_MAX, "an op's length fits the entry's 2-byte field");

/* ---- Store -------------------------------------------------------------- */

/* Address space only: the data file grows as records are written. 64 GiB
 * holds well over 100 million tokens. */
#define TK_MAP_SIZE_DEFAULT (1ULL << 36)
#define TK_MAP_SIZE_MAX     (1ULL << 40) /* 1 TiB of address space */
/* Reader slots: one per worker, plus tokenctl processes and slack. */
#define TK_MAX_READERS 126
/* Named DBIs the environment may hold: today's nineteen plus room to grow. */
#define TK_STORE_MAX_DBS 24
/* Bytes touched per step of the start-up prefault: large enough to be
 * cheap, small enough that a stop request is seen within milliseconds. */
#define TK_PREFAULT_CHUNK (64u << 20)
/* The start-up prefault thread's name (at most 15 bytes): it exits when done,
 * which is how a load generator knows the map is warm. */
#define TK_PREFAULT_THREAD "tokend-prefault"

/* ---- tokenctl ------------------------------------------------------------ */

/* Positional arguments and options of one command (the longest, token
 * issue, takes 9 options). */
#define TK_CTL_POS_MAX  4
#define TK_CTL_OPTS_MAX 12
/* One JSON object printed by a command: a record at its limits, escaped. */
#define TK_CTL_JSON_MAX 16384
/* One message line on stderr (longer ones are cut). */
#define TK_CTL_MSG_MAX 1024

/* ---- IdP events (back-channel logout, SSF/CAEP, webhooks) ---------------- */

/* Issuer URL of a trusted IdP (config); longer ones are refused at load. */
#define TK_IDP_ISS_MAX 256
/* Trusted issuers in one IdP config file, keys per issuer, webhook secrets
 * per issuer (two or three during a rotation). */
#define TK_IDP_MAX         32
#define TK_IDP_KEYS_MAX    16
#define TK_IDP_SECRETS_MAX 8
/* The IdP config file itself (JSON) and a JWKS file. */
#define TK_IDP_FILE_MAX (256 * 1024)
/* A compact JWS (logout token, SET): bigger ones are not events we expect. */
#define TK_JWT_MAX 16384
/* Decoded JOSE header and claims of one JWS. */
#define TK_JWT_HEADER_MAX  1024
#define TK_JWT_PAYLOAD_MAX 8192
/* jti / webhook-id: stored in ops and audit records. */
#define TK_EVENT_ID_MAX TK_ID_MAX
/* Sessions one event may change: all are changed in one write txn, so this
 * bounds the work of one op (the rest would need another event). */
#define TK_IDP_MATCH_MAX 4096
/* Session ids listed by one audit record (all of them are counted). */
#define TK_AUDIT_SIDS_MAX 16
/* Clock leeway for iat/exp/nbf (seconds), default and the most a trust
 * file may set (beyond ten minutes a clock is broken, not skewed). */
#define TK_IDP_LEEWAY_DEFAULT 60
#define TK_IDP_LEEWAY_MAX     600
/* Oldest iat accepted when an event has no exp (SETs; logout tokens of
 * OPs that omit exp): the replay record must outlive every acceptable copy.
 * A trust file may set 1 minute to 30 days (replay records live that long). */
#define TK_IDP_MAX_AGE_DEFAULT 86400
#define TK_IDP_MAX_AGE_MIN     60
#define TK_IDP_MAX_AGE_MAX     (30 * 86400)
/* Key id of an IdP key (JWK "kid", JWS header "kid"). */
#define TK_IDP_KID_MAX 128
/* Decoded Standard Webhooks secret: at least 128 bits, at most 1024. */
#define TK_IDP_SECRET_MIN 16
#define TK_IDP_SECRET_MAX 128
/* SSF bearer credential an issuer's transmitter sends. */
#define TK_IDP_BEARER_MAX 512
/* Sign-in upstream (login = oidc): tokend's client id and secret at an IdP
 * (Entra and Okta ids are under 64; secrets under 128) and the scopes asked. */
#define TK_IDP_CLIENT_ID_MAX     255
#define TK_IDP_CLIENT_SECRET_MAX 255
#define TK_IDP_SCOPES_MAX        255
/* Several organisations (login = oidc with several sign-in IdPs): the
 * login_hint domains that route to one IdP (a DNS name is at most 253
 * characters; a company has a handful of domains), and what its users may
 * grant: resource identifiers (joined with spaces, each at most TK_AUD_MAX)
 * and scope names (joined, at most TK_SCOPE_MAX like any scope). */
#define TK_IDP_DOMAINS_MAX       16
#define TK_IDP_DOMAIN_MAX        253
#define TK_IDP_ORG_RESOURCES_MAX 32
#define TK_IDP_ORG_RESOURCES_LEN 4096
/* An /authorize login_hint (OpenID Connect Core §3.1.2.1: an e-mail address
 * or a user name; RFC 5321 caps a mailbox at 254 octets). */
#define TK_LOGIN_HINT_MAX 256
/* private_key_jwt at an IdP's token endpoint (RFC 7523 §2.2): the client
 * assertion's protected header (alg, kid of at most TK_IDP_KID_MAX, escaped,
 * typ), the whole assertion (an RSA-4096 signature is 683 base64url
 * characters; the claims name a client id and an URL), and how long it is
 * valid (seconds): it is used at once, so a minute covers clock skew. */
#define TK_CLIENT_ASSERTION_HEADER_MAX 1024
#define TK_CLIENT_ASSERTION_MAX        4096
#define TK_CLIENT_ASSERTION_TTL        60
/* Sign-ins waiting for their IdP's answer (state, nonce, PKCE verifier), per
 * process: a browser spends a few seconds at the IdP; more are refused. */
#define TK_OIDC_PENDING_MAX 1024
/* Code redemptions in flight per worker (each a deferred connection). */
#define TK_OIDC_CALLS_MAX 256
/* An ID token's iat may be at most this old (seconds): the code was just
 * redeemed, so the token was just minted. */
#define TK_OIDC_IAT_MAX_AGE 600
/* Discovery documents are fetched again hourly (an IdP's endpoints rarely
 * move), and every minute while one could not be fetched (an IdP down at
 * start must not need a SIGHUP). */
#define TK_OIDC_REFRESH_S    3600
#define TK_OIDC_REDISCOVER_S 60
/* How long discovery may take at start or reload (milliseconds). */
#define TK_OIDC_DISCOVERY_WAIT_MS 15000
/* A JWS signature: RSA-4096 (ECDSA P-384 r||s is 96 bytes). */
#define TK_JWS_SIG_MAX 512
/* The same ECDSA signature as DER (SEQUENCE of two INTEGERs: at most 104
 * bytes for P-384), with room to spare. */
#define TK_ECDSA_DER_MAX 160
/* JWS header "typ" ("logout+jwt", "secevent+jwt", with "application/"). */
#define TK_JWT_TYP_MAX 64
/* RSA keys: at least 2048 bits (NIST SP 800-57); modulus of at most 8192
 * bits, public exponent of at most 16 bytes, as decoded from a JWK. */
#define TK_RSA_BITS_MIN  2048
#define TK_JWK_RSA_N_MAX 1024
#define TK_JWK_RSA_E_MAX 16
/* base64url text of one JWK member (holds TK_JWK_RSA_N_MAX bytes). */
#define TK_JWK_MEMBER_MAX 2048
/* DPoP (RFC 9449). A proof with an EC P-256 JWK is about 600 bytes; one
 * with a 4096-bit RSA key about 1.5 KiB, so 4 KiB refuses nothing real. */
#define TK_DPOP_PROOF_MAX 4096
/* Proof keys whose verification context a thread keeps (dpop.c). */
#define TK_DPOP_KEY_CACHE 64
/* A proof's jti: a random identifier (oauth4webapi sends 43 characters). */
#define TK_DPOP_JTI_MAX 256
/* How old a proof's iat may be (seconds) and how far in the future (clock
 * skew): a proof is a fresh signature, so a minute bounds both the replay
 * window and how long its jti must be remembered. */
#define TK_DPOP_IAT_PAST   60
#define TK_DPOP_IAT_FUTURE 5
/* The jti replay cache (src/endpoints/dpop.c): generations of
 * TK_DPOP_REPLAY_GEN_SECONDS seconds of arrival time, a jti stored in the
 * generation of its arrival and dropped with it, whole. A proof accepted at
 * t has iat <= t + FUTURE, so it can be replayed until t + FUTURE + PAST at
 * most: GENS generations cover that from the end of t's own (asserted in
 * dpop.c). 8 s generations: 10 tables to look in, 20% more memory than
 * one-second ones. */
#define TK_DPOP_REPLAY_GEN_SECONDS 8
#define TK_DPOP_REPLAY_GENS                                                                        \
    (1 + (TK_DPOP_IAT_PAST + TK_DPOP_IAT_FUTURE + TK_DPOP_REPLAY_GEN_SECONDS) /                    \
             TK_DPOP_REPLAY_GEN_SECONDS)
/* Shards by jti hash, one lock each: a replay may come to any worker, so
 * the cache is process-wide; shards keep workers off each other's lock. */
#define TK_DPOP_REPLAY_SHARDS 16
/* Setting dpop-rate: DPoP proofs per second (averaged over a generation)
 * the cache remembers; beyond it proofs are refused (fail closed). Memory
 * is about 1.4 KiB per proof/s (dpop.c), 28 MiB at the default. */
#define TK_DPOP_RATE_DEFAULT 20000
#define TK_DPOP_RATE_MIN     100
#define TK_DPOP_RATE_MAX     1000000
/* Server nonces (RFC 9449 §8, setting dpop-nonce): a nonce names a slot of
 * this many seconds and is accepted in its slot and the next, so a client
 * refreshes it every one to two minutes. */
#define TK_DPOP_NONCE_SLOT 60
/* base64url of a SHA-256 thumbprint (cnf.jkt). */
#define TK_JKT_B64_LEN 43

/* Standard Webhooks timestamp tolerance (seconds). */
#define TK_WEBHOOK_TOLERANCE 300
/* Expired replay records dropped per event (keeps the seen_jti DBI bounded
 * by the event rate, not by history). */
#define TK_SEEN_PRUNE_MAX 16

/* ---- Metrics listener ---------------------------------------------------- */

/* metrics-token: a bearer credential from the config (long enough for a
 * base64 256-bit secret and then some; compared as SHA-256 hashes). */
#define TK_METRICS_TOKEN_MAX 256

/* ---- JSON config files (jcfg.h) ----------------------------------------- */

/* The "where" label of a message (an issuer URL, cut to 200 bytes, and its
 * quotes fit), and one message before its label. */
#define TK_JCFG_WHERE_MAX 256
#define TK_JCFG_MSG_MAX   384
/* ---- Endpoints (src/endpoints) --------------------------------------------- */

/* Rows of the endpoint table (routes.c): sizes the per-worker request
 * counters and must fit the deferred-request tag (EP_TAG_ROW_BITS). */
#define TK_ROUTES_MAX 32
/* Longest endpoint path appended to the issuer in the RFC 8414 metadata. */
#define TK_ENDPOINT_PATH_MAX 32
/* Deferred completions moved from the committer per drain call (a fixed
 * array in each worker's context). */
#define TK_DRAIN_CHUNK 64
/* The /metrics page: what one fresh connection's out buffer holds. */
#define TK_METRICS_PAGE_MAX (TK_CONN_OUT_MAX - 512)
/* (agent, resource) pairs listed on the /metrics page at most: bounds the
 * series a scraper stores (tokend_agent_pairs counts them all). */
#define TK_METRICS_AGENT_SERIES 32
/* client_secret taken from a form: as long as any token we accept (ours
 * are TK_TOKEN_LEN); longer cannot be ours and fails authentication. */
#define TK_CLIENT_SECRET_IN_MAX TK_TOKEN_IN_MAX
/* Per-connection cache of Basic authentications (auth_cache.c): slots,
 * direct-mapped by connection slot; longer headers or ids are never cached
 * (ours fit with room to spare). */
#define TK_AUTH_CACHE_SLOTS   1024
#define TK_AUTH_CACHE_HDR_MAX 160
#define TK_AUTH_CACHE_ID_MAX  64
/* Distinct (agent, resource) pairs one worker counts between two folds (a
 * fold runs about once a second); more are counted as overflow. */
#define TK_AGENT_AUDIT_ENTRIES 256
/* Open-addressing index over those entries: a power of two, at most half full. */
#define TK_AGENT_AUDIT_SLOTS 512
/* v1 signatures looked at in one webhook-signature header (rotation sends
 * two or three). */
#define TK_WEBHOOK_SIGS_MAX 8
/* ---- Signing keys and signed answers (src/keys, RFC 9701) ----------------- */
/* Keys a manifest keeps (the current one and the newest retired ones):
 * rotations are rare, and each published key costs every verifier a JWKS
 * member. */
#define TK_SIGNING_KEYS_MAX 4
/* The manifest file (keys.json): TK_SIGNING_KEYS_MAX short entries. */
#define TK_KEYS_MANIFEST_MAX 4096
/* One PEM private key file: a P-256 PKCS#8 key is about 240 bytes. */
#define TK_KEYS_PEM_MAX 4096
/* The longest overlap a retired key may stay published (signing-key-overlap
 * and access-ttl are capped by it): a year, as access-ttl. */
#define TK_SIGNING_OVERLAP_MAX (366LL * 86400)
/* A signed introspection payload: the JSON answer plus iss, aud and iat. */
#define TK_SIGNED_PAYLOAD_MAX (TK_RESPONSE_MAX + 2048)
/* The JWS of it: header, base64url payload, signature. */
#define TK_SIGNED_RESPONSE_MAX ((TK_SIGNED_PAYLOAD_MAX * 4 + 2) / 3 + 256)

/* ---- Authorization server (src/oauth) ------------------------------------ */

/* A registration document (RFC 7591): every member we keep at its limit is
 * about 7 KiB; the rest is room for members we ignore (logo_uri, contacts). */
#define TK_OAUTH_REGISTER_BODY_MAX 16384
/* Redirect URIs per client: an agent registers one or two loopback ones. */
#define TK_OAUTH_REDIRECTS_MAX 8
/* One redirect URI, and client_uri: the longest URL we print. */
#define TK_OAUTH_URI_MAX TK_URL_MAX
/* software_id (often a UUID) and software_version, as registered. */
#define TK_OAUTH_SOFTWARE_MAX 128
/* state is echoed in the redirect; clients send ~43 random characters. */
#define TK_OAUTH_STATE_MAX 512
/* Keyword parameters (response_type, grant_type, code_challenge_method,
 * prompt, *_token_type): the longest value we accept is 51 characters. */
#define TK_OAUTH_WORD_MAX 64
/* RFC 7636 §4.1: a code_verifier has 43 to 128 characters. */
#define TK_OAUTH_VERIFIER_MIN 43
#define TK_OAUTH_VERIFIER_MAX 128
/* RFC 7636 §4.2: an S256 code_challenge is base64url(SHA-256), 43 chars. */
#define TK_OAUTH_CHALLENGE_LEN 43
/* A Cookie header we scan: browsers keep each cookie under 4 KiB. */
#define TK_OAUTH_COOKIE_HEADER_MAX 8192
/* Our browser-session cookie value: base64url of 32 random bytes. */
#define TK_OAUTH_COOKIE_VALUE_LEN TK_SECRET_B64_LEN
/* A Set-Cookie value we build: name, value and fixed attributes. */
#define TK_OAUTH_SET_COOKIE_MAX 160
/* A client record's redirect URIs, space-separated: every URI at its limit. */
#define TK_CLIENT_REDIRECTS_MAX (TK_OAUTH_REDIRECTS_MAX * (TK_OAUTH_URI_MAX + 1))
/* A client's delegate_to list: space-separated client ids, or "*". */
#define TK_DELEGATE_MAX 512
/* Deferred AS answers a worker holds while their commit runs; full → 503
 * (256 x 8 KiB = 2 MiB per worker, allocated at the first deferred answer). */
#define TK_AS_PENDING_SLOTS 256
/* One deferred AS answer: headers (a redirect, a Set-Cookie) and a body (a
 * token or registration JSON). */
#define TK_AS_PENDING_MAX 8192
/* A deferred AS answer whose connection went away is reclaimed after this
 * long (seconds; no commit takes it). */
#define TK_AS_PENDING_STALE 120
/* Client ID Metadata Documents (src/oauth/cimd.c, src/endpoints/cimd.c). */
/* A client_id URL: the longest URL we keep (it lives in the client record). */
#define TK_CIMD_URL_MAX TK_URL_MAX
/* A fetched document: real ones are well under 2 KiB; the cap aborts the transfer. */
#define TK_CIMD_DOC_MAX 5120
/* The store key of such a client: "tkm_" + base64url(SHA-256(URL)). */
#define TK_CIMD_KEY_LEN (4 + TK_SECRET_B64_LEN)
/* Document fetches in flight per worker (each a deferred connection). */
#define TK_CIMD_CALLS_MAX 64
/* A fetch's whole-transfer timeout (ms): a browser is waiting. */
#define TK_CIMD_TIMEOUT_MS 5000
/* How long a fetched document is trusted (seconds): Cache-Control max-age
 * within [cimd-cache-min, cimd-cache-max]; defaults and the ceiling. */
#define TK_CIMD_CACHE_MIN_DEFAULT 300
#define TK_CIMD_CACHE_MAX_DEFAULT 86400
#define TK_CIMD_CACHE_CEILING     (30 * 86400)
/* cimd-private-hosts, cimd-approve-hosts: space-separated host names. */
#define TK_CIMD_HOSTS_MAX 1024

/* Registrations per source address per minute before 429 (default). */
#define TK_REGISTER_BURST_DEFAULT 20
/* Stored /authorize requests (~1.2 KB each, kept authorize-ttl) per source
 * address per minute before 429: a person signs in a few times a minute at
 * most, an agent retrying a flow a few more (default). */
#define TK_AUTHORIZE_BURST_DEFAULT 60
/* Stored /authorize requests per authorize-ttl from all addresses before 503
 * (default ~24 MB of records per window; max ~1.2 GB), and the seconds of
 * history the count keeps (authorize-ttl's maximum). */
#define TK_AUTHORIZE_PENDING_DEFAULT 20000
#define TK_AUTHORIZE_PENDING_MAX     1000000
#define TK_AUTHORIZE_TTL_MAX         3600
/* Lifetimes (seconds): authorization codes (default, max), pending
 * authorization requests, and the refresh-token reuse window. */
#define TK_CODE_TTL_DEFAULT      60
#define TK_CODE_TTL_MAX          600
#define TK_AUTHORIZE_TTL_DEFAULT 600
#define TK_REFRESH_REUSE_DEFAULT 5
#define TK_REFRESH_REUSE_MAX     300
/* An HTML page tokend renders (login, consent, errors). */
#define TK_PAGE_MAX 6144

/* ---- Outbound HTTP (src/outbound) ----------------------------------------- */

/* Requests queued, transferring or completed but not yet taken: each holds
 * a slot (URL, request body, response buffers). Fetches are rare (keys,
 * discovery, code redemption), so a small pool suffices; full = error now. */
#define TK_OUTBOUND_QUEUE_MAX     1024
#define TK_OUTBOUND_QUEUE_DEFAULT 64
/* Transfers running at once on the outbound thread; the rest wait queued. */
#define TK_OUTBOUND_TRANSFERS_MAX     64
#define TK_OUTBOUND_TRANSFERS_DEFAULT 8
/* Response body cap: a JWKS, a discovery or a client metadata document is a
 * few KiB; anything past the cap is aborted as too big. */
#define TK_OUTBOUND_BODY_MAX     (4 * 1024 * 1024)
#define TK_OUTBOUND_BODY_DEFAULT (256 * 1024)
/* Response header bytes kept (Cache-Control, Content-Type, Location…). */
#define TK_OUTBOUND_HEADERS_MAX 16384
/* A request body we send: a token request with a PKCE verifier and a
 * private_key_jwt assertion is about 2 KiB. */
#define TK_OUTBOUND_REQ_BODY_MAX 8192
/* An Authorization header value we send (client_secret_basic). */
#define TK_OUTBOUND_AUTH_MAX 1024
/* Timeouts in milliseconds: connect (TCP + TLS) and the whole transfer. */
#define TK_OUTBOUND_CONNECT_MS_DEFAULT 5000
#define TK_OUTBOUND_TIMEOUT_MS_DEFAULT 10000
#define TK_OUTBOUND_TIMEOUT_MS_MAX     120000
/* Redirects followed when a request asks for them at all. */
#define TK_OUTBOUND_REDIRECTS_MAX 3
/* The outbound thread wakes at least this often (stop, timers). */
#define TK_OUTBOUND_POLL_MS 1000

/* ---- Fetched IdP keys (jwks_uri) ------------------------------------------ */

/* Refresh bounds (seconds): a JWKS's Cache-Control max-age is clamped into
 * [min, max]; without one the min applies (the IdP promised nothing, and a
 * refresh is how a withdrawn key leaves). */
#define TK_JWKS_REFRESH_MIN_DEFAULT 300
#define TK_JWKS_REFRESH_MAX_DEFAULT 86400
#define TK_JWKS_REFRESH_CEILING     (7 * 86400)
/* An unknown kid causes at most one fetch per issuer per this many seconds,
 * so a flood of bogus kids cannot make tokend hammer the IdP. */
#define TK_JWKS_KID_INTERVAL_DEFAULT 60
#define TK_JWKS_KID_INTERVAL_MAX     3600

_Static_assert(TK_TOKEN_LEN < TK_TOKEN_IN_MAX, "our own tokens must be accepted");
_Static_assert(TK_HTTP_LINE_MAX <= TK_HTTP_HEAD_MAX, "the request line is part of the head");
_Static_assert(TK_RESPONSE_MAX <= TK_CONN_OUT_MAX, "one response must fit the out buffer");
_Static_assert(TK_SIGNED_RESPONSE_MAX + 512 <= TK_CONN_OUT_MAX, "a signed answer fits too");
_Static_assert(TK_URL_MAX + 6 * TK_ID_MAX + 128 <= TK_SIGNED_PAYLOAD_MAX - TK_RESPONSE_MAX,
               "iss, an escaped aud and iat fit around the answer");
_Static_assert(TK_SUB_MAX + TK_SCOPE_MAX + TK_AUD_MAX + 4 * TK_ID_MAX + 128 <= TK_RECORD_MAX,
               "a token record with every field at its limit must encode");
_Static_assert(TK_DEPTH_DEFAULT <= TK_DEPTH_MAX, "default depth within the ceiling");
_Static_assert(TK_COMMIT_BATCH_MAX <= TK_COMMIT_QUEUE_MAX, "a batch drains part of the queue");
_Static_assert(TK_WORKERS_MAX + 16 <= TK_MAX_READERS, "every worker needs a reader slot");
_Static_assert(TK_CONNS_DEFAULT <= TK_CONNS_MAX, "default within the ceiling");
_Static_assert(TK_TLS_NET_IN >= TK_RECV_BUF_SIZE, "a receive is armed only when it fits whole");
_Static_assert(TK_TLS_TICKET_ROTATE_S <= TK_TLS_TICKET_LIFETIME_S, "a key outlives a period");
_Static_assert(TK_RL_SLOTS % TK_RL_WAYS == 0 && (TK_RL_SLOTS & (TK_RL_SLOTS - 1)) == 0,
               "rate-limit table: a power of two made of whole sets");
_Static_assert(1 + TK_ID_MAX + TK_ACCESS_RESOURCE_MAX <= 511, "agent_access keys fit LMDB keys");
_Static_assert(TK_IDP_ISS_MAX <= TK_URL_MAX, "an IdP issuer fits a session's issuer field");
_Static_assert(TK_JWT_MAX <= TK_HTTP_BODY_MAX, "an event fits a request body");
_Static_assert(TK_JWT_HEADER_MAX + TK_JWT_PAYLOAD_MAX < TK_JWT_MAX, "segments within the JWS");
_Static_assert(TK_JWS_SIG_MAX * 4 / 3 + 2 < TK_JWT_MAX, "a signature fits the JWS");
_Static_assert((TK_JWK_RSA_N_MAX * 4 + 2) / 3 <= TK_JWK_MEMBER_MAX, "a modulus fits a JWK member");
_Static_assert(TK_RSA_BITS_MIN / 8 <= TK_JWK_RSA_N_MAX, "the smallest RSA key decodes");
_Static_assert(TK_IDP_LEEWAY_DEFAULT <= TK_IDP_LEEWAY_MAX, "default within the ceiling");
_Static_assert(TK_IDP_MAX_AGE_MIN <= TK_IDP_MAX_AGE_DEFAULT &&
                   TK_IDP_MAX_AGE_DEFAULT <= TK_IDP_MAX_AGE_MAX,
               "default within the bounds");
_Static_assert((TK_AGENT_AUDIT_SLOTS & (TK_AGENT_AUDIT_SLOTS - 1)) == 0, "a power of two");
_Static_assert(TK_AGENT_AUDIT_ENTRIES * 2 <= TK_AGENT_AUDIT_SLOTS, "audit index at most half full");
_Static_assert(TK_AUTH_CACHE_ID_MAX <= 255 && TK_AUTH_CACHE_HDR_MAX <= 65535, "lengths fit");
_Static_assert(TK_AUTH_CACHE_ID_MAX <= TK_ID_MAX, "a cached id fits the worker's buffer");

_Static_assert(TK_OAUTH_REDIRECTS_MAX *(TK_OAUTH_URI_MAX + 3) + TK_SCOPE_MAX + 2 * TK_NAME_MAX +
                       2 * TK_OAUTH_SOFTWARE_MAX + TK_OAUTH_URI_MAX + TK_ID_MAX + TK_TOKEN_LEN +
                       640 <=
                   TK_RESPONSE_MAX - 1024,
               "a registration answer with every member at its limit fits one response");
_Static_assert(TK_OUTBOUND_QUEUE_DEFAULT <= TK_OUTBOUND_QUEUE_MAX &&
                   TK_OUTBOUND_TRANSFERS_DEFAULT <= TK_OUTBOUND_TRANSFERS_MAX &&
                   TK_OUTBOUND_BODY_DEFAULT <= TK_OUTBOUND_BODY_MAX,
               "outbound defaults within their ceilings");
_Static_assert(TK_OUTBOUND_CONNECT_MS_DEFAULT <= TK_OUTBOUND_TIMEOUT_MS_DEFAULT &&
                   TK_OUTBOUND_TIMEOUT_MS_DEFAULT <= TK_OUTBOUND_TIMEOUT_MS_MAX,
               "connecting is part of the transfer");
_Static_assert(TK_JWKS_REFRESH_MIN_DEFAULT <= TK_JWKS_REFRESH_MAX_DEFAULT &&
                   TK_JWKS_REFRESH_MAX_DEFAULT <= TK_JWKS_REFRESH_CEILING,
               "refresh bounds ordered");
_Static_assert(TK_OAUTH_URI_MAX <= TK_AUD_MAX, "a redirect URI fits where a resource fits");
_Static_assert(TK_OAUTH_COOKIE_VALUE_LEN + 100 <= TK_OAUTH_SET_COOKIE_MAX, "Set-Cookie fits");
_Static_assert(TK_CIMD_KEY_LEN <= TK_ID_MAX, "a metadata client's key is an ordinary client id");
_Static_assert(TK_CIMD_DOC_MAX <= TK_OAUTH_REGISTER_BODY_MAX, "a document is a registration");
_Static_assert(TK_CIMD_CACHE_MIN_DEFAULT <= TK_CIMD_CACHE_MAX_DEFAULT &&
                   TK_CIMD_CACHE_MAX_DEFAULT <= TK_CIMD_CACHE_CEILING,
               "cache bounds ordered");

/* ---- SSF transmitter (push of SETs to edge caches, RFC 8935) -------------- */

/* Receivers registered at once: each is scanned in the write txn of every
 * change that makes an event, so the set stays small. */
#define TK_SSF_RECEIVERS_MAX 16
/* A receiver id: [A-Za-z0-9._-], short (a /metrics label and a key prefix). */
#define TK_SSF_ID_MAX 64
/* A receiver's bearer credential (sent as Authorization: Bearer …). */
#define TK_SSF_BEARER_MAX 512
/* Events queued per receiver: the default and the ceiling (a receiver down
 * for an hour at 25 revocations a second fits the default). */
#define TK_SSF_QUEUE_DEFAULT 100000
#define TK_SSF_QUEUE_MAX     10000000
/* Retry back-off bounds (milliseconds): the default first and last wait,
 * and the ceiling a setting may ask for. */
#define TK_SSF_RETRY_MIN_DEFAULT 1000
#define TK_SSF_RETRY_MAX_DEFAULT 300000
#define TK_SSF_RETRY_CEILING     3600000
/* How often the pusher looks at the queues when nothing woke it (tokenctl
 * changes are seen this late at most). */
#define TK_SSF_POLL_MS_DEFAULT 100
#define TK_SSF_POLL_MS_MAX     10000
/* One SET: the claims (subject, reason, ids) and its JWS (base64url + 1/3). */
#define TK_SSF_PAYLOAD_MAX 3072
#define TK_SSF_JWS_MAX     4608
_Static_assert(TK_SSF_QUEUE_DEFAULT <= TK_SSF_QUEUE_MAX, "default within the ceiling");
_Static_assert(TK_SSF_RETRY_MIN_DEFAULT <= TK_SSF_RETRY_MAX_DEFAULT &&
                   TK_SSF_RETRY_MAX_DEFAULT <= TK_SSF_RETRY_CEILING,
               "back-off bounds ordered");
_Static_assert(TK_SSF_ID_MAX <= TK_ID_MAX, "a receiver id fits an op id");
_Static_assert(3 * TK_URL_MAX + TK_SUB_MAX + 3 * TK_ID_MAX + TK_REASON_MAX + 512 <=
                   TK_SSF_PAYLOAD_MAX,
               "a SET's claims fit at their limits");
_Static_assert(TK_SSF_JWS_MAX <= TK_OUTBOUND_REQ_BODY_MAX, "a SET fits an outbound body");

#endif
