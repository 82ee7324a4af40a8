# SPDX-License-Identifier: GPL-2.0-or-later
"""unbound configs for the tests and benchmarks (TESTING.md's recipe): in
the foreground, no chroot or privilege drop, no root key, no control
socket, answering test. names itself. `body` holds the server options
that make the instance what it is (interfaces, zones, forwarding)."""

HEAD = """server:
    username: ""
    chroot: ""
    pidfile: ""
    directory: "%(dir)s"
    do-daemonize: no
    use-syslog: no
    logfile: "%(log)s"
    module-config: "iterator"
    access-control: 0.0.0.0/0 allow
    local-zone: "test." nodefault
"""

TAIL = """remote-control:
    control-enable: no
"""


def config(directory, body, log=""):
    """A whole unbound.conf: the common head, body (which may end with
    other sections such as forward-zone:), the control section."""
    return HEAD % {"dir": directory, "log": log} + body + TAIL
