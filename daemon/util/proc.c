// SPDX-License-Identifier: GPL-2.0-or-later
#include "proc.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../bpf/anser_abi.h"

char *anser_proc_name(unsigned pid)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%u/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	const char *base = strrchr(buf, '/');
	return strndup(base ? base + 1 : buf, ANSER_PNAME_LEN - 1);
}

char *anser_proc_cgroup(unsigned pid)
{
	char path[64], line[4096];
	char *out = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
	f = fopen(path, "re");
	while (f && !out && fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			out = strdup(line + 3);
		}
	if (f)
		fclose(f);
	return out;
}
