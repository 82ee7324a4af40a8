// SPDX-License-Identifier: GPL-2.0-or-later
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static _Atomic int log_level = ANSER_LOG_INFO;

void anser_log_set_level(enum anser_log_level level)
{
	log_level = level;
}

enum anser_log_level anser_log_get_level(void)
{
	return (enum anser_log_level)log_level;
}

int anser_log_parse_level(const char *s)
{
	static const struct {
		const char *name;
		enum anser_log_level level;
	} names[] = {
		{ "error", ANSER_LOG_ERROR },  { "warning", ANSER_LOG_WARNING },
		{ "warn", ANSER_LOG_WARNING }, { "notice", ANSER_LOG_NOTICE },
		{ "info", ANSER_LOG_INFO },    { "debug", ANSER_LOG_DEBUG },
		{ "trace", ANSER_LOG_DEBUG },
	};
	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return names[i].level;
	return -EINVAL;
}

static void vlog(enum anser_log_level level, int err, const char *fmt, va_list ap)
{
	char fmtbuf[1024];
	char line[2048];
	const char *f = fmt;

	if (err != 0 && strstr(fmt, "%m")) {
		/* Replace %m ourselves: err is not necessarily errno. */
		const char *msg = strerror(err < 0 ? -err : err);
		size_t o = 0;
		for (const char *p = fmt; *p && o + 1 < sizeof(fmtbuf); p++) {
			if (p[0] == '%' && p[1] == 'm') {
				for (const char *m = msg; *m && o + 2 < sizeof(fmtbuf); m++) {
					if (*m == '%')
						fmtbuf[o++] = '%';
					fmtbuf[o++] = *m;
				}
				p++;
			} else if (p[0] == '%' && p[1] == '%') {
				fmtbuf[o++] = *p++;
				if (o + 1 < sizeof(fmtbuf))
					fmtbuf[o++] = *p;
			} else {
				fmtbuf[o++] = *p;
			}
		}
		fmtbuf[o] = '\0';
		f = fmtbuf;
	}
	/* f is the caller's checked format, or a copy of it with %m expanded. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(line, sizeof(line), f, ap);
#pragma GCC diagnostic pop
	/* <N> prefix is understood by journald's stderr stream (SyslogLevelPrefix). */
	fprintf(stderr, "<%d>%s\n", (int)level, line);
}

int anser_log_errno(enum anser_log_level level, int err, const char *fmt, ...)
{
	int saved = errno;
	if ((int)level <= log_level) {
		va_list ap;
		va_start(ap, fmt);
		vlog(level, err, fmt, ap);
		va_end(ap);
	}
	errno = saved;
	return err == 0 ? -EIO : (err < 0 ? err : -err);
}

void anser_log(enum anser_log_level level, const char *fmt, ...)
{
	int saved = errno;
	if ((int)level <= log_level) {
		va_list ap;
		va_start(ap, fmt);
		vlog(level, saved, fmt, ap);
		va_end(ap);
	}
	errno = saved;
}
