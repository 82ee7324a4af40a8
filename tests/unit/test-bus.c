// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bus: introspection XML vs the vtable, the sd-event GSource guard, and the
 * object served on a private dbus-daemon (properties, PropertiesChanged,
 * polkit verdicts with no polkitd and with a fake one).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <polkit/polkit.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "anser-build.h"
#include "daemon/bus/bus-errors.h"
#include "daemon/bus/bus.h"
#include "daemon/util/log.h"
#include "daemon/util/sd-event-glib.h"

#define _cleanup_(f) __attribute__((cleanup(f)))

/* ---- sd_event_prepare() interposed: the test counts calls on an ARMED loop.
 * The static library's reference binds to this definition at link time. */

static unsigned prepare_calls;
static unsigned prepare_calls_while_armed;

int sd_event_prepare(sd_event *e)
{
	static int (*real_prepare)(sd_event *);

	if (!real_prepare)
		real_prepare = (int (*)(sd_event *))dlsym(RTLD_NEXT, "sd_event_prepare");
	g_assert_nonnull(real_prepare);
	prepare_calls++;
	if (sd_event_get_state(e) == SD_EVENT_ARMED)
		prepare_calls_while_armed++;
	return real_prepare(e);
}

/* ---- main loop helpers */

static gboolean on_timeout(gpointer userdata)
{
	*(bool *)userdata = true;
	return G_SOURCE_REMOVE;
}

static void run_until(GMainContext *ctx, const bool *done)
{
	bool timed_out = false;
	GSource *t = g_timeout_source_new_seconds(10);

	g_source_set_callback(t, on_timeout, &timed_out, NULL);
	g_source_attach(t, ctx);
	while (!*done && !timed_out)
		g_main_context_iteration(ctx, TRUE);
	g_source_destroy(t);
	g_source_unref(t);
	g_assert_false(timed_out);
}

/* ---- introspection */

static void test_introspect(void)
{
	g_autofree char *expected = NULL;
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;
	char *generated = NULL;
	size_t size = 0;
	FILE *f;

	f = open_memstream(&generated, &size);
	g_assert_nonnull(f);
	g_assert_cmpint(anser_bus_introspect(f), ==, 0);
	fclose(f);

	g_assert_nonnull(strstr(generated, "<interface name=\"org.anser.Anser1.Manager\">"));
	g_assert_nonnull(strstr(generated, "<method name=\"ListConnections\">"));
	g_assert_nonnull(strstr(generated, "<arg type=\"aa{sv}\" name=\"connections\""));
	g_assert_nonnull(strstr(generated, "<method name=\"Reload\">"));
	g_assert_nonnull(strstr(generated, "<property name=\"State\" type=\"s\" access=\"read\">"));
	g_assert_null(strstr(generated, "org.freedesktop.DBus.Peer"));

	path = g_test_build_filename(G_TEST_DIST, "..", "..", "dbus",
				     "org.anser.Anser1.Manager.xml", NULL);
	g_file_get_contents(path, &expected, NULL, &error);
	g_assert_no_error(error);
	if (strcmp(expected, generated) != 0) {
		g_autofree char *out =
			g_test_build_filename(G_TEST_BUILT, "org.anser.Anser1.Manager.xml", NULL);

		g_file_set_contents(out, generated, -1, NULL);
		g_test_message("%s is stale: the vtable now produces %s (copy it over)", path, out);
		g_test_fail();
	}
	free(generated);
}

/* ---- the GSource guard: prepare() must never re-prepare an ARMED sd_event */

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	char c;

	g_assert_cmpint(read(fd, &c, 1), ==, 1);
	(*(int *)userdata)++;
	return 0;
}

static int on_time(sd_event_source *s, uint64_t usec, void *userdata)
{
	(*(int *)userdata)++;
	return 0;
}

static void test_glib_guard_armed(void)
{
	_cleanup_(sd_event_unrefp) sd_event *e = NULL;
	_cleanup_(sd_event_source_unrefp) sd_event_source *io = NULL;
	_cleanup_(sd_event_source_unrefp) sd_event_source *timer = NULL;
	GMainContext *ctx = g_main_context_new();
	GSource *src;
	int fds[2], io_fired = 0, timer_fired = 0;
	bool done = false;

	g_assert_cmpint(sd_event_new(&e), >=, 0);
	g_assert_cmpint(pipe2(fds, O_CLOEXEC | O_NONBLOCK), ==, 0);
	g_assert_cmpint(sd_event_add_io(e, &io, fds[0], EPOLLIN, on_io, &io_fired), >=, 0);
	src = anser_sd_event_attach_glib(e, ctx);
	g_assert_nonnull(src);

	/* The glue's calls go through the interposed function (else the test
	 * below proves nothing). */
	prepare_calls = prepare_calls_while_armed = 0;
	g_main_context_iteration(ctx, FALSE);
	g_assert_cmpuint(prepare_calls, >, 0);

	/* GLib skipped check() (another thread touched the context while we
	 * polled, or a higher-priority source won): the loop is left ARMED. */
	if (sd_event_get_state(e) != SD_EVENT_ARMED)
		g_assert_cmpint(sd_event_prepare(e), ==, 0);
	g_assert_cmpint(sd_event_get_state(e), ==, SD_EVENT_ARMED);
	prepare_calls_while_armed = 0;

	/* Now the next iteration: prepare() must leave the ARMED loop alone and
	 * the event must still be delivered through poll -> check -> dispatch. */
	g_assert_cmpint(write(fds[1], "x", 1), ==, 1);
	for (int i = 0; i < 10 && io_fired == 0; i++)
		g_main_context_iteration(ctx, TRUE);
	g_assert_cmpint(io_fired, ==, 1);
	g_assert_cmpuint(prepare_calls_while_armed, ==, 0);

	/* Timers live inside the same epoll fd: no GLib timeout needed. */
	g_assert_cmpint(sd_event_add_time_relative(e, &timer, CLOCK_MONOTONIC, 20 * 1000, 0,
						   on_time, &timer_fired),
			>=, 0);
	while (!timer_fired && !done) {
		GSource *t = g_timeout_source_new_seconds(5);

		g_source_set_callback(t, on_timeout, &done, NULL);
		g_source_attach(t, ctx);
		g_main_context_iteration(ctx, TRUE);
		g_source_destroy(t);
		g_source_unref(t);
	}
	g_assert_cmpint(timer_fired, ==, 1);
	g_assert_cmpuint(prepare_calls_while_armed, ==, 0);

	g_source_destroy(src);
	g_source_unref(src);
	io = sd_event_source_unref(io);
	close(fds[0]);
	close(fds[1]);
	g_main_context_unref(ctx);
}

/* ---- a private system bus */

static struct {
	bool available;
	char *dir;
	char *address;
	GPid daemon;
	sd_event *event; /* the test's own clients, on the default GLib context */
	GSource *source;
	sd_bus *client;
	struct anser_bus *bus;
	GDBusConnection *gdbus_system; /* the one polkit-gobject will use */
} T;

struct fake_daemon {
	const char *state;
	int reload_calls, list_calls;
	int reload_result;
	const char *reload_message;
};

static struct fake_daemon fake = { .state = "running" };

static const char *fake_get_state(void *ud)
{
	return ((struct fake_daemon *)ud)->state;
}

static int fake_reload(void *ud, char **message)
{
	struct fake_daemon *f = ud;

	f->reload_calls++;
	if (f->reload_result < 0 && f->reload_message)
		*message = strdup(f->reload_message);
	return f->reload_result;
}

static int fake_list_connections(void *ud, int (*emit)(void *eud, const struct anser_conn_info *c),
				 void *eud)
{
	struct fake_daemon *f = ud;
	struct anser_conn_info one = { 0 }, two = { 0 }, *c;
	int r;
	struct sockaddr_in *s4;
	struct sockaddr_in6 *s6;

	f->list_calls++;

	c = &one;
	c->cookie = 4242;
	c->pid = 1234;
	strcpy(c->pname, "curl");
	strcpy(c->proto, "tcp");
	s4 = (struct sockaddr_in *)&c->src;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(50000);
	inet_pton(AF_INET, "10.0.0.2", &s4->sin_addr);
	s4 = (struct sockaddr_in *)&c->dst;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(443);
	inet_pton(AF_INET, "1.2.3.4", &s4->sin_addr);
	strcpy(c->outbound, "proxy");
	strcpy(c->node, "node-a");
	strcpy(c->rule, "rule 3");
	strcpy(c->domain, "example.test");
	c->bytes_up = 100;
	c->bytes_down = 1ULL << 33;

	c = &two;
	c->pid = 7;
	memcpy(c->pname, "bad\xff", 5); /* not UTF-8: must not break the reply */
	strcpy(c->proto, "udp");
	s6 = (struct sockaddr_in6 *)&c->src;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(5353);
	s6->sin6_addr = in6addr_loopback;
	s6 = (struct sockaddr_in6 *)&c->dst;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(53);
	s6->sin6_addr = in6addr_loopback;
	strcpy(c->outbound, "direct");
	strcpy(c->rule, "fallback");
	r = emit(eud, &one);
	if (r >= 0)
		r = emit(eud, &two);
	return r;
}

/* Interfaces, PrimaryConnection and Network as netmon would report them */
static struct anser_netif fake_ifs[] = {
	{ "wlan0", 3, ANSER_IF_WAN },
	{ "tun0", 9, ANSER_IF_WAN },
};
static struct anser_netstate fake_net = {
	.ifs = fake_ifs,
	.n_ifs = 2,
	.primary = { "Home", "0f1e2d3c-0000-4000-8000-000000000001", "wifi", "HomeWifi", "wlan0",
		     true, NULL },
	.nm_running = true,
};

static const struct anser_netstate *fake_get_netstate(void *ud)
{
	return &fake_net;
}

static const struct anser_bus_ops fake_ops = {
	.get_state = fake_get_state,
	.reload = fake_reload,
	.list_connections = fake_list_connections,
	.get_netstate = fake_get_netstate,
};

static char *read_address(int fd)
{
	GString *s = g_string_new(NULL);
	char c;

	while (read(fd, &c, 1) == 1 && c != '\n')
		g_string_append_c(s, c);
	if (s->len == 0) {
		g_string_free(s, TRUE);
		return NULL;
	}
	return g_string_free(s, FALSE);
}

/* The bus dies with the test, even when an assertion aborts it. */
static void child_die_with_parent(gpointer userdata)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static bool private_bus_start(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *conf = NULL;
	g_autofree char *conf_path = NULL;
	g_autofree char *dbus_daemon = g_find_program_in_path("dbus-daemon");
	int out = -1;

	if (!dbus_daemon)
		return false;
	T.dir = g_dir_make_tmp("anser-test-bus-XXXXXX", &error);
	g_assert_no_error(error);

	/* This test checks the bus module, not the project's bus policy: a
	 * mandatory allow-all context (a default-only one makes replies fail). */
	conf = g_strdup_printf("<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus "
			       "Configuration 1.0//EN\"\n"
			       " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
			       "<busconfig>\n"
			       "  <type>system</type>\n"
			       "  <listen>unix:path=%s/system_bus_socket</listen>\n"
			       "  <auth>EXTERNAL</auth>\n"
			       "  <policy context=\"mandatory\">\n"
			       "    <allow user=\"*\"/>\n"
			       "    <allow own=\"*\"/>\n"
			       "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
			       "    <allow receive_sender=\"*\"/>\n"
			       "  </policy>\n"
			       "</busconfig>\n",
			       T.dir);
	conf_path = g_build_filename(T.dir, "bus.conf", NULL);
	g_file_set_contents(conf_path, conf, -1, &error);
	g_assert_no_error(error);

	{
		g_autofree char *conf_arg = g_strdup_printf("--config-file=%s", conf_path);
		const char *argv[] = { dbus_daemon, conf_arg, "--nofork", "--print-address=1",
				       NULL };

		if (!g_spawn_async_with_pipes(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
					      child_die_with_parent, NULL, &T.daemon, NULL, &out,
					      NULL, &error)) {
			g_printerr("# cannot start dbus-daemon: %s\n", error->message);
			return false;
		}
	}
	T.address = read_address(out);
	close(out);
	if (!T.address) {
		g_printerr("# dbus-daemon printed no address\n");
		return false;
	}
	/* polkit-gobject (GDBus) finds "the system bus" through this. */
	g_setenv("DBUS_SYSTEM_BUS_ADDRESS", T.address, TRUE);
	return true;
}

static void private_bus_stop(void)
{
	if (T.bus)
		anser_bus_free(T.bus);
	T.client = sd_bus_flush_close_unref(T.client);
	if (T.source) {
		g_source_destroy(T.source);
		g_source_unref(T.source);
	}
	T.event = sd_event_unref(T.event);
	g_clear_object(&T.gdbus_system);
	if (T.daemon) {
		kill(T.daemon, SIGTERM);
		waitpid(T.daemon, NULL, 0);
		g_spawn_close_pid(T.daemon);
	}
	if (T.dir) {
		g_autofree char *sock = g_build_filename(T.dir, "system_bus_socket", NULL);
		g_autofree char *conf = g_build_filename(T.dir, "bus.conf", NULL);

		g_unlink(sock);
		g_unlink(conf);
		g_rmdir(T.dir);
	}
	g_free(T.dir);
	g_free(T.address);
}

static int connect_client(sd_bus **ret)
{
	_cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
	int r;

	r = sd_bus_new(&bus);
	if (r >= 0)
		r = sd_bus_set_address(bus, T.address);
	if (r >= 0)
		r = sd_bus_set_bus_client(bus, 1);
	if (r >= 0)
		r = sd_bus_start(bus);
	if (r >= 0)
		r = sd_bus_attach_event(bus, T.event, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0)
		return r;
	*ret = bus;
	bus = NULL;
	return 0;
}

/* Every bus test needs the daemon side served; set it up on first use. */
static bool bus_fixture(void)
{
	if (!T.available) {
		g_test_skip("dbus-daemon is not available");
		return false;
	}
	if (T.bus)
		return true;
	/* GDBus raises SIGTERM when "the system bus" goes away: not this one.
	 * Holding the singleton also makes polkit-gobject use this connection. */
	T.gdbus_system = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, NULL);
	g_assert_nonnull(T.gdbus_system);
	g_dbus_connection_set_exit_on_close(T.gdbus_system, FALSE);
	g_assert_cmpint(sd_event_new(&T.event), >=, 0);
	T.source = anser_sd_event_attach_glib(T.event, NULL);
	g_assert_cmpint(connect_client(&T.client), >=, 0);
	g_assert_cmpint(anser_bus_new(T.address, &fake_ops, &fake, &T.bus), ==, 0);
	return true;
}

struct pending_reply {
	bool done;
	sd_bus_message *reply;
};

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct pending_reply *p = userdata;

	p->reply = sd_bus_message_ref(m);
	p->done = true;
	return 0;
}

/* Calls a method on anserd (served by this same loop) and waits for it. */
static sd_bus_message *call(const char *interface, const char *member, bool interactive,
			    const char *arg1, const char *arg2)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
	struct pending_reply p = { 0 };

	g_assert_cmpint(sd_bus_message_new_method_call(T.client, &m, ANSER_BUS_NAME, ANSER_BUS_PATH,
						       interface, member),
			>=, 0);
	if (arg1)
		g_assert_cmpint(sd_bus_message_append(m, "s", arg1), >=, 0);
	if (arg2)
		g_assert_cmpint(sd_bus_message_append(m, "s", arg2), >=, 0);
	g_assert_cmpint(sd_bus_message_set_allow_interactive_authorization(m, interactive), >=, 0);
	g_assert_cmpint(sd_bus_call_async(T.client, NULL, m, on_reply, &p, 0), >=, 0);
	run_until(NULL, &p.done);
	return p.reply;
}

static char *get_property(const char *name)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	const char *value;

	reply = call("org.freedesktop.DBus.Properties", "Get", false, ANSER_BUS_INTERFACE, name);
	g_assert_null(sd_bus_message_get_error(reply));
	g_assert_cmpint(sd_bus_message_read(reply, "v", "s", &value), >=, 0);
	return g_strdup(value);
}

static void assert_error(sd_bus_message *reply, const char *name, int errnum)
{
	const sd_bus_error *e = sd_bus_message_get_error(reply);

	g_assert_nonnull(e);
	g_assert_cmpstr(e->name, ==, name);
	if (errnum)
		g_assert_cmpint(sd_bus_error_get_errno(e), ==, errnum);
}

static void test_properties(void)
{
	g_autofree char *version = NULL;
	g_autofree char *state = NULL;
	struct anser_bus *second = NULL;

	if (!bus_fixture())
		return;
	version = get_property("Version");
	g_assert_cmpstr(version, ==, ANSER_VERSION);
	fake.state = "running";
	state = get_property("State");
	g_assert_cmpstr(state, ==, "running");

	/* A second daemon must not steal or share the name. */
	g_assert_cmpint(anser_bus_new(T.address, &fake_ops, &fake, &second), ==, -EEXIST);
	g_assert_null(second);
}

struct changed {
	bool done;
	char *state;
};

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct changed *c = userdata;
	const char *interface, *key, *value;

	g_assert_cmpint(sd_bus_message_read(m, "s", &interface), >=, 0);
	if (strcmp(interface, ANSER_BUS_INTERFACE) != 0)
		return 0;
	g_assert_cmpint(sd_bus_message_enter_container(m, 'a', "{sv}"), >, 0);
	while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
		g_assert_cmpint(sd_bus_message_read(m, "s", &key), >=, 0);
		if (strcmp(key, "State") == 0) {
			g_assert_cmpint(sd_bus_message_read(m, "v", "s", &value), >=, 0);
			c->state = g_strdup(value);
		} else {
			g_assert_cmpint(sd_bus_message_skip(m, "v"), >=, 0);
		}
		g_assert_cmpint(sd_bus_message_exit_container(m), >=, 0);
	}
	c->done = true;
	return 0;
}

static void test_state_changed(void)
{
	_cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
	struct changed c = { 0 };

	if (!bus_fixture())
		return;
	g_assert_cmpint(sd_bus_match_signal(T.client, &slot, ANSER_BUS_NAME, ANSER_BUS_PATH,
					    "org.freedesktop.DBus.Properties", "PropertiesChanged",
					    on_properties_changed, &c),
			>=, 0);
	fake.state = "reloading";
	anser_bus_state_changed(T.bus);
	run_until(NULL, &c.done);
	g_assert_cmpstr(c.state, ==, "reloading");
	g_free(c.state);
	fake.state = "running";
}

static void test_no_polkitd_denies(void)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

	if (!bus_fixture())
		return;
	fake.reload_calls = fake.list_calls = 0;

	reply = call(ANSER_BUS_INTERFACE, "ListConnections", false, NULL, NULL);
	assert_error(reply, ANSER_BUS_ERROR_NOT_AUTHORIZED, EACCES);
	sd_bus_message_unref(reply);
	reply = call(ANSER_BUS_INTERFACE, "Reload", true, NULL, NULL);
	assert_error(reply, ANSER_BUS_ERROR_NOT_AUTHORIZED, EACCES);

	g_assert_cmpint(fake.reload_calls, ==, 0);
	g_assert_cmpint(fake.list_calls, ==, 0);
}

/* ---- a fake polkitd: owns org.freedesktop.PolicyKit1 on the private bus */

enum fake_verdict { VERDICT_ALLOW, VERDICT_CHALLENGE, VERDICT_DENY };

struct fake_polkit {
	sd_bus *bus;
	enum fake_verdict verdict;
	int checks;
	char *subject_kind, *subject_name, *action_id;
	uint32_t flags;
};

static void fake_polkit_forget(struct fake_polkit *p)
{
	g_clear_pointer(&p->subject_kind, g_free);
	g_clear_pointer(&p->subject_name, g_free);
	g_clear_pointer(&p->action_id, g_free);
}

static int fake_check_authorization(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct fake_polkit *p = userdata;
	const char *kind, *key, *action, *cancel_id;

	fake_polkit_forget(p);
	g_assert_cmpint(sd_bus_message_enter_container(m, 'r', "sa{sv}"), >, 0);
	g_assert_cmpint(sd_bus_message_read(m, "s", &kind), >=, 0);
	p->subject_kind = g_strdup(kind);
	g_assert_cmpint(sd_bus_message_enter_container(m, 'a', "{sv}"), >, 0);
	while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
		g_assert_cmpint(sd_bus_message_read(m, "s", &key), >=, 0);
		if (strcmp(key, "name") == 0) {
			const char *name;

			g_assert_cmpint(sd_bus_message_read(m, "v", "s", &name), >=, 0);
			p->subject_name = g_strdup(name);
		} else {
			g_assert_cmpint(sd_bus_message_skip(m, "v"), >=, 0);
		}
		g_assert_cmpint(sd_bus_message_exit_container(m), >=, 0);
	}
	g_assert_cmpint(sd_bus_message_exit_container(m), >=, 0);
	g_assert_cmpint(sd_bus_message_exit_container(m), >=, 0);
	g_assert_cmpint(sd_bus_message_read(m, "s", &action), >=, 0);
	p->action_id = g_strdup(action);
	g_assert_cmpint(sd_bus_message_skip(m, "a{ss}"), >=, 0);
	g_assert_cmpint(sd_bus_message_read(m, "us", &p->flags, &cancel_id), >=, 0);
	p->checks++;

	return sd_bus_reply_method_return(m, "(bba{ss})", p->verdict == VERDICT_ALLOW,
					  p->verdict == VERDICT_CHALLENGE, 0);
}

static int fake_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable fake_polkit_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("CheckAuthorization", "(sa{sv})sa{ss}us", "(bba{ss})",
		      fake_check_authorization, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("CancelCheckAuthorization", "s", "", fake_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

/* polkit-gobject routes calls to the name owner it last saw: wait until it
 * has seen the change, or a call may still go to the previous fake. */
static void wait_for_polkit_owner(const char *expected)
{
	/* held for the whole run: polkit-gobject keeps only a weak singleton,
	 * and making it anew while a fake in this process owns the name
	 * blocks on a call only this (blocked) main loop could answer */
	static PolkitAuthority *authority;
	if (!authority)
		authority = polkit_authority_get_sync(NULL, NULL);
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	g_assert_nonnull(authority);
	for (;;) {
		g_autofree char *owner = polkit_authority_get_owner(authority);

		if (g_strcmp0(owner, expected) == 0)
			break;
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
}

static void fake_polkit_start(struct fake_polkit *p, enum fake_verdict verdict)
{
	const char *unique = NULL;

	memset(p, 0, sizeof(*p));
	p->verdict = verdict;
	wait_for_polkit_owner(NULL); /* the authority made while no one owns the name */
	g_assert_cmpint(connect_client(&p->bus), >=, 0);
	g_assert_cmpint(sd_bus_add_object_vtable(
				p->bus, NULL, "/org/freedesktop/PolicyKit1/Authority",
				"org.freedesktop.PolicyKit1.Authority", fake_polkit_vtable, p),
			>=, 0);
	g_assert_cmpint(sd_bus_request_name(p->bus, "org.freedesktop.PolicyKit1", 0), >=, 0);
	g_assert_cmpint(sd_bus_get_unique_name(p->bus, &unique), >=, 0);
	wait_for_polkit_owner(unique);
}

static void fake_polkit_stop(struct fake_polkit *p)
{
	g_assert_cmpint(sd_bus_release_name(p->bus, "org.freedesktop.PolicyKit1"), >=, 0);
	p->bus = sd_bus_flush_close_unref(p->bus);
	fake_polkit_forget(p);
	wait_for_polkit_owner(NULL);
}

struct conn_seen {
	uint32_t pid;
	char *process, *protocol, *source, *destination, *outbound, *node, *rule, *domain;
	uint64_t up, down, cookie;
};

static void conn_seen_clear(struct conn_seen *c)
{
	g_free(c->process);
	g_free(c->protocol);
	g_free(c->source);
	g_free(c->destination);
	g_free(c->outbound);
	g_free(c->node);
	g_free(c->rule);
	g_free(c->domain);
}

static void read_conn(sd_bus_message *m, struct conn_seen *c)
{
	const char *key, *s;

	while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
		char **field = NULL;

		g_assert_cmpint(sd_bus_message_read(m, "s", &key), >=, 0);
		if (strcmp(key, "Pid") == 0)
			g_assert_cmpint(sd_bus_message_read(m, "v", "u", &c->pid), >=, 0);
		else if (strcmp(key, "BytesUp") == 0)
			g_assert_cmpint(sd_bus_message_read(m, "v", "t", &c->up), >=, 0);
		else if (strcmp(key, "BytesDown") == 0)
			g_assert_cmpint(sd_bus_message_read(m, "v", "t", &c->down), >=, 0);
		else if (strcmp(key, "Cookie") == 0)
			g_assert_cmpint(sd_bus_message_read(m, "v", "t", &c->cookie), >=, 0);
		else if (strcmp(key, "ProcessName") == 0)
			field = &c->process;
		else if (strcmp(key, "Protocol") == 0)
			field = &c->protocol;
		else if (strcmp(key, "Source") == 0)
			field = &c->source;
		else if (strcmp(key, "Destination") == 0)
			field = &c->destination;
		else if (strcmp(key, "Outbound") == 0)
			field = &c->outbound;
		else if (strcmp(key, "Node") == 0)
			field = &c->node;
		else if (strcmp(key, "Rule") == 0)
			field = &c->rule;
		else if (strcmp(key, "Domain") == 0)
			field = &c->domain;
		else
			g_assert_not_reached();
		if (field) {
			g_assert_cmpint(sd_bus_message_read(m, "v", "s", &s), >=, 0);
			*field = g_strdup(s);
		}
		g_assert_cmpint(sd_bus_message_exit_container(m), >=, 0);
	}
}

static void test_polkit_allowed(void)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	struct conn_seen c[3] = { { 0 } };
	struct fake_polkit p;
	int n = 0;

	if (!bus_fixture())
		return;
	fake_polkit_start(&p, VERDICT_ALLOW);
	fake.reload_calls = fake.list_calls = 0;

	reply = call(ANSER_BUS_INTERFACE, "ListConnections", false, NULL, NULL);
	g_assert_null(sd_bus_message_get_error(reply));
	g_assert_cmpint(p.checks, ==, 1);
	g_assert_cmpstr(p.action_id, ==, "org.anser.view-connections");
	g_assert_cmpstr(p.subject_kind, ==, "system-bus-name");
	g_assert_cmpstr(p.subject_name, ==, ({
				const char *u = NULL;
				sd_bus_get_unique_name(T.client, &u);
				u;
			}));
	g_assert_cmpuint(p.flags, ==, 0);
	g_assert_cmpint(fake.list_calls, ==, 1);

	g_assert_cmpint(sd_bus_message_enter_container(reply, 'a', "a{sv}"), >, 0);
	while (n < 3 && sd_bus_message_enter_container(reply, 'a', "{sv}") > 0) {
		read_conn(reply, &c[n++]);
		g_assert_cmpint(sd_bus_message_exit_container(reply), >=, 0);
	}
	g_assert_cmpint(n, ==, 2);
	g_assert_cmpuint(c[0].pid, ==, 1234);
	g_assert_cmpstr(c[0].process, ==, "curl");
	g_assert_cmpstr(c[0].protocol, ==, "tcp");
	g_assert_cmpstr(c[0].source, ==, "10.0.0.2:50000");
	g_assert_cmpstr(c[0].destination, ==, "1.2.3.4:443");
	g_assert_cmpstr(c[0].outbound, ==, "proxy");
	g_assert_cmpstr(c[0].node, ==, "node-a");
	g_assert_cmpstr(c[0].rule, ==, "rule 3");
	g_assert_cmpstr(c[0].domain, ==, "example.test");
	g_assert_cmpuint(c[0].up, ==, 100);
	g_assert_cmpuint(c[0].down, ==, 1ULL << 33);
	g_assert_cmpuint(c[0].cookie, ==, 4242);
	g_assert_cmpuint(c[1].pid, ==, 7);
	g_assert_cmpstr(c[1].process, ==, "bad\xef\xbf\xbd"); /* U+FFFD */
	g_assert_cmpstr(c[1].protocol, ==, "udp");
	g_assert_cmpstr(c[1].source, ==, "[::1]:5353");
	g_assert_cmpstr(c[1].destination, ==, "[::1]:53");
	g_assert_cmpstr(c[1].outbound, ==, "direct");
	g_assert_cmpstr(c[1].node, ==, "");
	g_assert_cmpstr(c[1].rule, ==, "fallback");
	g_assert_cmpstr(c[1].domain, ==, "");
	for (int i = 0; i < n; i++)
		conn_seen_clear(&c[i]);
	sd_bus_message_unref(reply);

	/* Reload: allowed, the interactive flag is passed on. */
	fake.reload_result = 0;
	reply = call(ANSER_BUS_INTERFACE, "Reload", true, NULL, NULL);
	g_assert_null(sd_bus_message_get_error(reply));
	g_assert_cmpstr(p.action_id, ==, "org.anser.manage");
	g_assert_cmpuint(p.flags, ==, 1u /* ALLOW_USER_INTERACTION */);
	g_assert_cmpint(fake.reload_calls, ==, 1);
	sd_bus_message_unref(reply);

	/* A failing reload carries the daemon's diagnostics. */
	fake.reload_result = -EINVAL;
	fake.reload_message = "/etc/anser/config.dae:3:7: unknown outbound 'x'";
	reply = call(ANSER_BUS_INTERFACE, "Reload", false, NULL, NULL);
	assert_error(reply, ANSER_BUS_ERROR_RELOAD_FAILED, 0);
	g_assert_cmpstr(sd_bus_message_get_error(reply)->message, ==, fake.reload_message);
	fake.reload_result = 0;
	fake.reload_message = NULL;

	fake_polkit_stop(&p);
}

static void test_polkit_challenge_and_deny(void)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	struct fake_polkit p;

	if (!bus_fixture())
		return;
	fake.reload_calls = 0;

	fake_polkit_start(&p, VERDICT_CHALLENGE);
	reply = call(ANSER_BUS_INTERFACE, "Reload", false, NULL, NULL);
	assert_error(reply, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, 0);
	g_assert_cmpint(p.checks, ==, 1);
	fake_polkit_stop(&p);
	sd_bus_message_unref(reply);

	fake_polkit_start(&p, VERDICT_DENY);
	reply = call(ANSER_BUS_INTERFACE, "Reload", false, NULL, NULL);
	assert_error(reply, ANSER_BUS_ERROR_NOT_AUTHORIZED, EACCES);
	g_assert_cmpint(p.checks, ==, 1);
	fake_polkit_stop(&p);

	g_assert_cmpint(fake.reload_calls, ==, 0);
}

/* ---- anserctl against the served object (a blocking client in a child) */

struct ctl_result {
	bool done;
	int status;
	char *out, *err;
};

static void on_ctl_done(GObject *source, GAsyncResult *res, gpointer userdata)
{
	struct ctl_result *c = userdata;
	g_autoptr(GError) error = NULL;

	g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), res, &c->out, &c->err, &error);
	g_assert_no_error(error);
	c->status = g_subprocess_get_exit_status(G_SUBPROCESS(source));
	c->done = true;
}

static void anserctl(struct ctl_result *c, const char *arg1, const char *arg2)
{
	g_autofree char *path =
		g_test_build_filename(G_TEST_BUILT, "..", "..", "cli", "anserctl", NULL);
	g_autofree char *address = g_strdup_printf("--address=%s", T.address);
	g_autoptr(GSubprocess) proc = NULL;
	g_autoptr(GError) error = NULL;

	memset(c, 0, sizeof(*c));
	proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE |
					G_SUBPROCESS_FLAGS_STDIN_INHERIT,
				&error, path, address, arg1, arg2, NULL);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8_async(proc, NULL, NULL, on_ctl_done, c);
	run_until(NULL, &c->done);
}

static void ctl_result_clear(struct ctl_result *c)
{
	g_clear_pointer(&c->out, g_free);
	g_clear_pointer(&c->err, g_free);
}

static void test_anserctl(void)
{
	g_autofree char *path =
		g_test_build_filename(G_TEST_BUILT, "..", "..", "cli", "anserctl", NULL);
	struct ctl_result c;
	struct fake_polkit p;

	if (!bus_fixture())
		return;
	if (!g_file_test(path, G_FILE_TEST_IS_EXECUTABLE)) {
		g_test_skip("anserctl is not built");
		return;
	}

	anserctl(&c, "status", NULL);
	g_assert_cmpint(c.status, ==, 0);
	g_assert_cmpstr(c.out, ==,
			"Version: " ANSER_VERSION "\nState: running\nEnabled: yes\nGeneration: 0\n"
			"Network: Home (wifi HomeWifi on wlan0, metered)\n"
			"Interfaces: wlan0 (wan), tun0 (wan)\n");
	ctl_result_clear(&c);

	/* No polkitd: a clear denial. */
	anserctl(&c, "connections", NULL);
	g_assert_cmpint(c.status, ==, 1);
	g_assert_true(g_str_has_prefix(c.err, "not authorized: "));
	ctl_result_clear(&c);

	fake_polkit_start(&p, VERDICT_ALLOW);

	anserctl(&c, "connections", NULL);
	g_assert_cmpint(c.status, ==, 0);
	g_assert_true(g_str_has_prefix(c.out, " PID  PROCESS  PROTO  SOURCE"));
	g_assert_nonnull(strstr(c.out, "1234  curl     tcp    10.0.0.2:50000  1.2.3.4:443"));
	g_assert_nonnull(strstr(c.out, "8.0G\n"));
	g_assert_nonnull(strstr(c.out, "\n   7  bad\xef\xbf\xbd     udp    [::1]:5353"));
	ctl_result_clear(&c);

	anserctl(&c, "--json", "connections");
	g_assert_cmpint(c.status, ==, 0);
	g_assert_true(g_str_has_prefix(c.out, "[\n  {\"pid\": 1234, \"process\": \"curl\""));
	g_assert_nonnull(strstr(c.out, "\"bytes_down\": 8589934592"));
	g_assert_true(g_str_has_suffix(c.out, "}\n]\n"));
	ctl_result_clear(&c);

	fake.reload_result = -EINVAL;
	fake.reload_message = "/etc/anser/config.dae:3:7: unknown outbound 'x'";
	anserctl(&c, "reload", NULL);
	g_assert_cmpint(c.status, ==, 1);
	g_assert_cmpstr(c.err, ==, "/etc/anser/config.dae:3:7: unknown outbound 'x'\n");
	ctl_result_clear(&c);
	fake.reload_result = 0;
	fake.reload_message = NULL;

	anserctl(&c, "reload", NULL);
	g_assert_cmpint(c.status, ==, 0);
	ctl_result_clear(&c);

	fake_polkit_stop(&p);
}

/* Every named error maps to its errno both ways (clients use errnos). */
static void test_error_map(void)
{
	static const struct {
		const char *name;
		int err;
	} cases[] = {
		{ ANSER_BUS_ERROR_RELOAD_FAILED, EBADMSG },
		{ ANSER_BUS_ERROR_NOT_AUTHORIZED, EACCES },
		{ ANSER_BUS_ERROR_INVALID_ARGUMENT, EINVAL },
		{ ANSER_BUS_ERROR_BUSY, EBUSY },
		{ ANSER_BUS_ERROR_NO_SUCH_ROUTE, ENOENT },
	};
	size_t n_map = 0;

	g_assert_cmpint(anser_bus_errors_register(), >=, 0);
	for (const sd_bus_error_map *m = anser_bus_error_map; m->name; m++)
		n_map++;
	g_assert_cmpuint(n_map, ==, G_N_ELEMENTS(cases));
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		sd_bus_error e = SD_BUS_ERROR_NULL;
		g_assert_cmpint(sd_bus_error_set(&e, cases[i].name, "x"), ==, -cases[i].err);
		g_assert_cmpint(sd_bus_error_get_errno(&e), ==, cases[i].err);
		sd_bus_error_free(&e);
	}
}

int main(int argc, char *argv[])
{
	int r;

	g_test_init(&argc, &argv, NULL);
	anser_log_set_level(ANSER_LOG_WARNING);
	g_unsetenv("DBUS_SYSTEM_BUS_ADDRESS");

	g_test_add_func("/bus/introspect", test_introspect);
	g_test_add_func("/bus/sd-event-glib/armed-guard", test_glib_guard_armed);
	g_test_add_func("/bus/properties", test_properties);
	g_test_add_func("/bus/state-changed", test_state_changed);
	g_test_add_func("/bus/polkit/no-polkitd-denies", test_no_polkitd_denies);
	g_test_add_func("/bus/polkit/allowed", test_polkit_allowed);
	g_test_add_func("/bus/polkit/challenge-and-deny", test_polkit_challenge_and_deny);
	g_test_add_func("/bus/anserctl", test_anserctl);
	g_test_add_func("/bus/error-map", test_error_map);

	T.available = private_bus_start();
	r = g_test_run();
	private_bus_stop();
	return r;
}
