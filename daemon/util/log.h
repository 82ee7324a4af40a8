/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Leveled logging to stderr (journald picks it up under systemd).
 * The *_errno variants append ": <strerror>" and return -abs(err), so a
 * failure path can be `return log_error_errno(r, "Failed to bind: %m")`. */
#ifndef ANSER_LOG_H
#define ANSER_LOG_H

#include <errno.h>
#include <stdarg.h>

enum anser_log_level {
	ANSER_LOG_ERROR = 3,
	ANSER_LOG_WARNING = 4,
	ANSER_LOG_NOTICE = 5,
	ANSER_LOG_INFO = 6,
	ANSER_LOG_DEBUG = 7,
};

void anser_log_set_level(enum anser_log_level level);
/* "error", "warning"/"warn", "notice", "info", "debug", "trace"; -EINVAL otherwise */
int anser_log_parse_level(const char *s);
enum anser_log_level anser_log_get_level(void);
/* %m in fmt is replaced by strerror(err) (err may be negative). */
int anser_log_errno(enum anser_log_level level, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void anser_log(enum anser_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...)		  anser_log(ANSER_LOG_ERROR, __VA_ARGS__)
#define log_warning(...)	  anser_log(ANSER_LOG_WARNING, __VA_ARGS__)
#define log_notice(...)		  anser_log(ANSER_LOG_NOTICE, __VA_ARGS__)
#define log_info(...)		  anser_log(ANSER_LOG_INFO, __VA_ARGS__)
#define log_debug(...)		  anser_log(ANSER_LOG_DEBUG, __VA_ARGS__)
#define log_error_errno(e, ...)	  anser_log_errno(ANSER_LOG_ERROR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) anser_log_errno(ANSER_LOG_WARNING, (e), __VA_ARGS__)
#define log_debug_errno(e, ...)	  anser_log_errno(ANSER_LOG_DEBUG, (e), __VA_ARGS__)

#endif
