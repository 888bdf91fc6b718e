/* labels.c — branch labels: checks "key=value", keeps sets as "k=v,k=v", matches selectors. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rift/labels.h"

static bool label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

const char *rift_label_check(const char *kv)
{
	const char *eq = strchr(kv, '='), *p;

	if (eq == NULL)
		return "a label is key=value, like pr=123";
	if (eq == kv || eq - kv >= RIFT_LABEL_PART)
		return "a label's key is 1 to 63 characters";
	if (strlen(eq + 1) >= RIFT_LABEL_PART)
		return "a label's value is at most 63 characters";
	if (!((kv[0] >= 'a' && kv[0] <= 'z') || (kv[0] >= 'A' && kv[0] <= 'Z') ||
	      (kv[0] >= '0' && kv[0] <= '9')))
		return "a label's key starts with a letter or a digit";
	for (p = kv; *p != '\0'; p++)
		if (p != eq && !label_char(*p))
			return "labels use only letters, digits, '_', '.' and '-' (and one '=')";
	return NULL;
}

/* The label with key (klen bytes) in labels: where it starts, or NULL. */
static const char *find_key(const char *labels, const char *key, size_t klen)
{
	const char *p = labels;

	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=')
			return p;
		p += n;
		if (*p == ',')
			p++;
	}
	return NULL;
}

int rift_labels_add(char *labels, size_t len, const char *kv)
{
	size_t klen, count = 0, used;
	const char *old, *p;

	if (rift_label_check(kv) != NULL)
		return -EINVAL;
	klen = (size_t)(strchr(kv, '=') - kv);
	old = find_key(labels, kv, klen);
	if (old != NULL) { /* drop the old value: the new one goes at the end */
		char *from = (char *)old, *to = (char *)old + strcspn(old, ",");
		if (*to == ',')
			to++; /* its trailing comma goes too */
		else if (from > labels)
			from--; /* the last label: its leading comma goes */
		memmove(from, to, strlen(to) + 1);
	}
	for (p = labels; *p != '\0'; p++)
		count += *p == ',';
	if (labels[0] != '\0')
		count++;
	used = strlen(labels);
	if (count >= RIFT_LABELS_COUNT || used + (used > 0) + strlen(kv) + 1 > len)
		return -E2BIG;
	snprintf(labels + used, len - used, "%s%s", used > 0 ? "," : "", kv);
	return 0;
}

bool rift_labels_match(const char *labels, const char *selector)
{
	const char *p = selector;

	while (*p != '\0') {
		size_t n = strcspn(p, ","), klen = strcspn(p, "=");
		const char *have;
		if (klen >= n) /* "key" alone: the key with any value */
			klen = n;
		have = find_key(labels, p, klen);
		if (have == NULL)
			return false;
		if (klen < n && (strncmp(have, p, n) != 0 || (have[n] != ',' && have[n] != '\0')))
			return false;
		p += n;
		if (*p == ',')
			p++;
	}
	return true;
}
