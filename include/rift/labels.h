/* labels.h — branch labels (pr=123, job=lint): syntax, canonical form, selector matching. */
#ifndef RIFT_LABELS_H
#define RIFT_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#define RIFT_LABELS_MAX   256 /* bytes of a branch's label set "k=v,k=v", NUL included */
#define RIFT_LABELS_COUNT 16  /* labels per branch */
#define RIFT_LABEL_PART   64  /* bytes of a key or a value, NUL included */

/*
 * Checks one "key=value": key 1-63 of [A-Za-z0-9_.-] starting with a letter or digit, value
 * 0-63 of [A-Za-z0-9_.-] (what CI systems put in them: PR numbers, job and pipeline ids,
 * project names). Commas and '=' in values would make the stored form ambiguous. NULL when
 * valid, else why not, for a person.
 */
const char *rift_label_check(const char *kv);

/*
 * Adds "key=value" to the canonical set in labels (capacity len; "k=v,k=v"), replacing the
 * value of a key already there. 0; -EINVAL (see rift_label_check), -E2BIG when the set would
 * exceed RIFT_LABELS_COUNT labels or len bytes.
 */
int rift_labels_add(char *labels, size_t len, const char *kv) __attribute__((warn_unused_result));

/* Whether labels ("k=v,k=v") holds every label of selector (same form; "" matches all). */
bool rift_labels_match(const char *labels, const char *selector);

#endif
