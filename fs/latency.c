/* latency.c — lock-free latency histograms; buckets from 100 µs to 10 s. */
#include <stdio.h>

#include "rift/latency.h"

const double rift_latency_bounds_s[RIFT_LATENCY_NBUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10,
};

void rift_latency_observe_ns(struct rift_latency *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i;

	for (i = 0; i < RIFT_LATENCY_NBUCKETS && s > rift_latency_bounds_s[i]; i++)
		;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void rift_latency_since(struct rift_latency *h, const struct timespec *start)
{
	struct timespec now;
	int64_t ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (int64_t)(now.tv_sec - start->tv_sec) * 1000000000 + (now.tv_nsec - start->tv_nsec);
	rift_latency_observe_ns(h, ns > 0 ? (uint64_t)ns : 0);
}

int rift_latency_format(const struct rift_latency *h, const char *name, const char *labels,
			char *buf, size_t len, size_t *used)
{
	uint64_t cum = 0, count = 0, b[RIFT_LATENCY_NBUCKETS + 1];
	const char *sep = labels[0] ? "," : "";
	size_t at = *used, i;
	int k;

	/* read the buckets first: count is then at least their sum, so the series stay monotone */
	for (i = 0; i <= RIFT_LATENCY_NBUCKETS; i++) {
		b[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		count += b[i];
	}
	for (i = 0; i <= RIFT_LATENCY_NBUCKETS; i++) {
		char le[32];
		cum += b[i];
		if (i < RIFT_LATENCY_NBUCKETS)
			snprintf(le, sizeof(le), "%g", rift_latency_bounds_s[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		k = snprintf(buf + at, len - at, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels,
			     sep, le, (unsigned long long)cum);
		if (k < 0 || (size_t)k >= len - at)
			return -1;
		at += (size_t)k;
	}
	k = snprintf(buf + at, len - at, "%s_sum%s%s%s %.9f\n%s_count%s%s%s %llu\n", name,
		     labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
		     (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9, name,
		     labels[0] ? "{" : "", labels, labels[0] ? "}" : "", (unsigned long long)count);
	if (k < 0 || (size_t)k >= len - at)
		return -1;
	*used = at + (size_t)k;
	return 0;
}
