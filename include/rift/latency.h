/* latency.h — lock-free latency histograms for /metrics (store writes, syncs, server starts). */
#ifndef RIFT_LATENCY_H
#define RIFT_LATENCY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RIFT_LATENCY_NBUCKETS 16

/* Upper bounds (seconds) of the buckets; the last, implicit bucket is +Inf. */
extern const double rift_latency_bounds_s[RIFT_LATENCY_NBUCKETS];

/* Zero-initialised is empty. Any thread may observe while another reads. */
struct rift_latency {
	_Atomic uint64_t bucket[RIFT_LATENCY_NBUCKETS + 1]; /* not cumulative */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
};

/* Counts one event that began at start (CLOCK_MONOTONIC) and ended now. */
void rift_latency_since(struct rift_latency *h, const struct timespec *start);

/* Counts one event that took ns nanoseconds. */
void rift_latency_observe_ns(struct rift_latency *h, uint64_t ns);

/*
 * Appends the Prometheus text of h as histogram `name` (with extra labels, "" for none, e.g.
 * "kind=\"write\"") to buf at *used, len bytes in all. The caller writes # HELP and # TYPE.
 * Returns -1 (and leaves *used where it was) when it does not fit.
 */
int rift_latency_format(const struct rift_latency *h, const char *name, const char *labels,
			char *buf, size_t len, size_t *used);

#endif
