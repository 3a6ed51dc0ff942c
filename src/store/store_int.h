/*
 * Private to src/store: how apply.c reaches the op semantics that live in
 * their own files.
 */
#ifndef TOKEND_STORE_INT_H
#define TOKEND_STORE_INT_H

#include "tokend/store.h"

/* TK_OP_IDP_EVENT (record.h): replay check, replay record, the matching
 * sessions' state, one audit record; all in txn. Same contract as
 * tk_store_apply (op already validated). */
int tk_store_apply_idp(tk_txn *txn, const tk_op *op, bool *changed);

#endif
