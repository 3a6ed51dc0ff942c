/*
 * Scope strings (RFC 6749 §3.3): space-separated, case-sensitive names. The
 * one question the core asks of them is "is every name in A also in B?";
 * names are compared whole, so "read" is not satisfied by "read:all".
 * Both strings are bounded by TK_SCOPE_MAX, so the quadratic scan is at most
 * a few thousand byte comparisons and needs no allocation.
 */
#include "tokend/core.h"

#include <string.h>

/* The next name in s starting at *pos (runs of spaces skipped); an empty
 * slice at the end. *pos moves past the name. */
static tk_slice next_name(tk_slice s, size_t *pos)
{
    size_t i = *pos;
    while (i < s.len && s.p[i] == ' ') {
        i++;
    }
    size_t start = i;
    while (i < s.len && s.p[i] != ' ') {
        i++;
    }
    *pos = i;
    return (tk_slice){s.p + start, i - start};
}

static bool contains_name(tk_slice set, tk_slice name)
{
    size_t pos = 0;
    while (pos < set.len) { /* bounded: pos advances at least one byte per turn */
        size_t before = pos;
        tk_slice n = next_name(set, &pos);
        if (n.len == name.len && n.len > 0 && memcmp(n.p, name.p, n.len) == 0) {
            return true;
        }
        TK_ASSERT(pos > before);
    }
    return false;
}

bool tk_core_scope_subset(tk_slice sub, tk_slice super)
{
    if (sub.len > TK_SCOPE_MAX || super.len > TK_SCOPE_MAX) {
        return false; /* not ours: refuse rather than scan unbounded input */
    }
    size_t pos = 0;
    while (pos < sub.len) {
        size_t before = pos;
        tk_slice name = next_name(sub, &pos);
        if (name.len > 0 && !contains_name(super, name)) {
            return false;
        }
        TK_ASSERT(pos > before);
    }
    return true;
}

bool tk_core_audience_includes(tk_slice aud, tk_slice resource)
{
    if (resource.len == 0 || aud.len > TK_AUD_MAX) {
        return false;
    }
    return contains_name(aud, resource);
}

enum tk_core_org_verdict tk_core_org_check(const tk_core_org *org, tk_slice resource,
                                           tk_slice scope)
{
    if (org == NULL) {
        return TK_ORG_OK;
    }
    if (org->limit_resources && (resource.len == 0 || resource.len > TK_AUD_MAX ||
                                 org->resources.len > TK_IDP_ORG_RESOURCES_LEN ||
                                 !contains_name(org->resources, resource))) {
        return TK_ORG_RESOURCE;
    }
    if (org->limit_scopes && !tk_core_scope_subset(scope, org->scopes)) {
        return TK_ORG_SCOPE;
    }
    return TK_ORG_OK;
}
