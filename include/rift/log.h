/* log.h — riftd's one logger: levels, timestamps, a component prefix; checks the level first. */
#ifndef RIFT_LOG_H
#define RIFT_LOG_H

enum rift_log_level {
	RIFT_LOG_ERROR = 0,
	RIFT_LOG_WARN = 1,
	RIFT_LOG_INFO = 2,
	RIFT_LOG_DEBUG = 3,
};

/* The most verbose level written; RIFT_LOG_INFO unless RIFT_LOG_LEVEL=error|warn|info|debug. */
extern enum rift_log_level rift_log_threshold;

/* Reads RIFT_LOG_LEVEL from the environment; unknown values keep the default. */
void rift_log_init(void);

/*
 * Writes one line to stderr: "2026-11-28T08:00:00.123Z riftd LEVEL component: message".
 * One write(2) per line, so lines from threads never interleave. Never log secrets.
 */
void rift_log_write(enum rift_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The arguments are not evaluated when the level is off. */
#define RIFT_LOG(level, component, ...)                                                            \
	do {                                                                                       \
		if ((level) <= rift_log_threshold)                                                 \
			rift_log_write((level), (component), __VA_ARGS__);                         \
	} while (0)

#define LOG_ERROR(component, ...) RIFT_LOG(RIFT_LOG_ERROR, component, __VA_ARGS__)
#define LOG_WARN(component, ...)  RIFT_LOG(RIFT_LOG_WARN, component, __VA_ARGS__)
#define LOG_INFO(component, ...)  RIFT_LOG(RIFT_LOG_INFO, component, __VA_ARGS__)
#define LOG_DEBUG(component, ...) RIFT_LOG(RIFT_LOG_DEBUG, component, __VA_ARGS__)

#endif
