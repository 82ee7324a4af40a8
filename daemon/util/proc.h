/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Facts about a running process, read from /proc. */
#ifndef ANSER_PROC_H
#define ANSER_PROC_H

/* The basename of its argv[0] (what pname() matches; the hooks read the
 * same), at most 63 bytes; NULL when it is gone. Caller frees. */
char *anser_proc_name(unsigned pid);
/* Its cgroup v2 path ("/user.slice/..."), or NULL. Caller frees. */
char *anser_proc_cgroup(unsigned pid);

#endif
