// SPDX-License-Identifier: GPL-2.0-or-later
/* anserctl: command-line client of org.anser.Anser1 (D-Bus only). */
#include <errno.h>
#include <glib.h>
#include <getopt.h>
#include <inttypes.h>
#include <libintl.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "anser-build.h"
#include "daemon/bus/bus-errors.h"

#define _cleanup_(f) __attribute__((cleanup(f)))

enum { EXIT_USAGE = 2 };

#define _(s) gettext(s)

static int json_value(sd_bus_message *m);
static int print_reply_json(sd_bus_message *reply);

static const char *arg_address;
static bool arg_json;
static int arg_ask_password = -1; /* -1: ask if stdin is a terminal */

struct conn_row {
	uint32_t pid;
	char *process, *protocol, *source, *destination, *outbound, *node, *rule, *domain;
	uint64_t bytes_up, bytes_down, cookie;
};

struct conn_rows {
	struct conn_row *v;
	size_t n;
};

static void conn_rows_free(struct conn_rows *rows)
{
	for (size_t i = 0; i < rows->n; i++) {
		struct conn_row *c = &rows->v[i];

		free(c->process);
		free(c->protocol);
		free(c->source);
		free(c->destination);
		free(c->outbound);
		free(c->node);
		free(c->rule);
		free(c->domain);
	}
	free(rows->v);
	rows->v = NULL;
	rows->n = 0;
}

/* Turns a failed call into one clear line on stderr; returns EXIT_FAILURE. */
static void freep(void *p)
{
	free(*(void **)p);
}

static int report_error(const char *what, const sd_bus_error *error, int r)
{
	if (sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN,
				   SD_BUS_ERROR_NAME_HAS_NO_OWNER))
		fprintf(stderr, _("anserd is not running (%s not on the bus)\n"), ANSER_BUS_NAME);
	else if (sd_bus_error_has_names(error, ANSER_BUS_ERROR_NOT_AUTHORIZED,
					SD_BUS_ERROR_ACCESS_DENIED))
		fprintf(stderr, _("not authorized: %s\n"), error->message);
	else if (sd_bus_error_has_name(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))
		fprintf(stderr, _("authentication required: %s\n"), error->message);
	else if (sd_bus_error_is_set(error))
		fprintf(stderr, "Failed to %s: %s\n", what, error->message);
	else
		fprintf(stderr, "Failed to %s: %s\n", what, strerror(-r));
	return EXIT_FAILURE;
}

static int bus_connect(sd_bus **ret)
{
	_cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
	int r;

	if (arg_address) {
		r = sd_bus_new(&bus);
		if (r >= 0)
			r = sd_bus_set_address(bus, arg_address);
		if (r >= 0)
			r = sd_bus_set_bus_client(bus, 1);
		if (r >= 0)
			r = sd_bus_start(bus);
	} else {
		/* Honours DBUS_SYSTEM_BUS_ADDRESS. */
		r = sd_bus_open_system(&bus);
	}
	if (r < 0) {
		fprintf(stderr, "Failed to connect to %s: %s\n",
			arg_address ? arg_address : "the system bus", strerror(-r));
		return r;
	}
	if (arg_ask_password < 0)
		arg_ask_password = isatty(STDIN_FILENO);
	(void)sd_bus_set_allow_interactive_authorization(bus, arg_ask_password);
	*ret = bus;
	bus = NULL;
	return 0;
}

/* A key of an a{sv} reply and where its value goes: a `const char *` for
 * "s" (valid while the message lives), else the basic type's C type. */
struct dict_field {
	const char *key;
	const char *type;
	void *out;
};

/* Reads an a{sv}: values of the listed keys with the listed types are
 * stored, everything else is skipped (newer daemons may add keys). */
static int read_dict(sd_bus_message *m, const struct dict_field *f, size_t n)
{
	int r = sd_bus_message_enter_container(m, 'a', "{sv}");

	while (r > 0) {
		const char *key, *contents = NULL;
		size_t i;

		r = sd_bus_message_enter_container(m, 'e', "sv");
		if (r <= 0)
			break;
		r = sd_bus_message_read(m, "s", &key);
		if (r >= 0)
			r = sd_bus_message_peek_type(m, NULL, &contents);
		if (r < 0)
			return r;
		for (i = 0; i < n; i++)
			if (strcmp(key, f[i].key) == 0 && contents &&
			    strcmp(contents, f[i].type) == 0)
				break;
		if (i < n)
			r = sd_bus_message_read(m, "v", f[i].type, f[i].out);
		else
			r = sd_bus_message_skip(m, "v");
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		if (r >= 0)
			r = 1;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

/* status: "Network: ..." and "Interfaces: ..." lines, from the Network and
 * Interfaces properties (left out when the daemon is older). */
static void print_network(sd_bus *bus)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *net = NULL, *ifs = NULL;
	const char *id = "", *type = "", *ssid = "", *iface = "";
	int nm = 0, metered = 0;

	if (sd_bus_get_property(bus, ANSER_BUS_NAME, ANSER_BUS_PATH, ANSER_BUS_INTERFACE, "Network",
				NULL, &net, "a{sv}") >= 0) {
		const struct dict_field f[] = {
			{ "Id", "s", &id },	      { "Type", "s", &type },
			{ "Ssid", "s", &ssid },	      { "Interface", "s", &iface },
			{ "Metered", "b", &metered }, { "NetworkManager", "b", &nm },
		};
		if (read_dict(net, f, sizeof(f) / sizeof(f[0])) >= 0) {
			if (!nm)
				printf(_("Network: unknown (NetworkManager is not running)\n"));
			else if (!*id)
				printf(_("Network: none\n"));
			else
				/* TRANSLATORS: Network: NAME (TYPE[ SSID] on INTERFACE[, metered]) */
				printf(_("Network: %s (%s%s%s on %s%s)\n"), id, type,
				       *ssid ? " " : "", ssid, *iface ? iface : "?",
				       metered ? _(", metered") : "");
		}
	}
	if (sd_bus_get_property(bus, ANSER_BUS_NAME, ANSER_BUS_PATH, ANSER_BUS_INTERFACE,
				"Interfaces", NULL, &ifs, "a(ss)") < 0 ||
	    sd_bus_message_enter_container(ifs, 'a', "(ss)") < 0)
		return;
	const char *name, *role;
	int n = 0;
	printf(_("Interfaces:"));
	while (sd_bus_message_read(ifs, "(ss)", &name, &role) > 0)
		printf("%s %s (%s)", n++ ? "," : "", name, role);
	printf("%s\n", n ? "" : _(" none"));
}

static int cmd_status(sd_bus *bus)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	const char *version = NULL, *state = NULL;
	int enabled = 1;
	uint64_t generation = 0;
	int r;

	r = sd_bus_call_method(bus, ANSER_BUS_NAME, ANSER_BUS_PATH,
			       "org.freedesktop.DBus.Properties", "GetAll", &error, &reply, "s",
			       ANSER_BUS_INTERFACE);
	if (r < 0)
		return report_error("read the daemon's status", &error, r);
	if (arg_json)
		return print_reply_json(reply);

	const struct dict_field fields[] = {
		{ "Version", "s", &version },
		{ "State", "s", &state },
		{ "Enabled", "b", &enabled },
		{ "Generation", "t", &generation },
	};
	r = read_dict(reply, fields, sizeof(fields) / sizeof(fields[0]));
	if (r < 0) {
		fprintf(stderr, "Failed to parse the status reply: %s\n", strerror(-r));
		return EXIT_FAILURE;
	}
	printf(_("Version: %s\n"), version ? version : "?");
	/* TRANSLATORS: the state names (running, suspended, ...) stay as they are */
	printf(_("State: %s\n"), state ? state : "?");
	printf(_("Enabled: %s\n"), enabled ? _("yes") : _("no (every new connection goes direct)"));
	printf(_("Generation: %llu\n"), (unsigned long long)generation);
	print_network(bus);
	return EXIT_SUCCESS;
}

static int set_enabled(sd_bus *bus, bool on)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	int r;

	r = sd_bus_set_property(bus, ANSER_BUS_NAME, ANSER_BUS_PATH, ANSER_BUS_INTERFACE, "Enabled",
				&error, "b", on);
	if (r < 0)
		return report_error(on ? "enable" : "disable", &error, r);
	return EXIT_SUCCESS;
}

static int cmd_enable(sd_bus *bus)
{
	return set_enabled(bus, true);
}

static int cmd_disable(sd_bus *bus)
{
	return set_enabled(bus, false);
}

/* validate FILE: the daemon checks the text (as Reload would) */
static int cmd_validate(sd_bus *bus, int argc, char **argv)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_(freep) char *text = NULL;
	size_t len = 0;
	FILE *f = strcmp(argv[0], "-") == 0 ? stdin : fopen(argv[0], "re");
	int ok = 0, r;

	if (!f) {
		fprintf(stderr, "anserctl: validate: cannot open %s: %m\n", argv[0]);
		return EXIT_FAILURE;
	}
	{
		FILE *m = open_memstream(&text, &len);
		char buf[65536];
		size_t n;
		while (m && (n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, m);
		if (m)
			fclose(m);
	}
	if (f != stdin)
		fclose(f);
	if (!text || strlen(text) != len) {
		fprintf(stderr, "anserctl: validate: %s is not text\n", argv[0]);
		return EXIT_FAILURE;
	}
	r = sd_bus_call_method(bus, ANSER_BUS_NAME, ANSER_BUS_PATH, ANSER_BUS_INTERFACE, "Validate",
			       &error, &reply, "s", text);
	if (r < 0)
		return report_error("validate", &error, r);
	r = sd_bus_message_read(reply, "b", &ok);
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "(suus)");
	while (r > 0) {
		const char *file, *msg;
		uint32_t line, col;
		r = sd_bus_message_read(reply, "(suus)", &file, &line, &col, &msg);
		if (r <= 0)
			break;
		if (line)
			printf("%s:%u:%u: %s\n", argv[0], line, col, msg);
		else
			printf("%s: %s\n", argv[0], msg);
	}
	if (r < 0) {
		fprintf(stderr, "anserctl: validate: bad reply: %s\n", strerror(-r));
		return EXIT_FAILURE;
	}
	printf("%s: %s\n", argv[0], ok ? "OK" : _("rejected"));
	return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int read_string_into(sd_bus_message *m, char **field)
{
	const char *s;
	int r;

	r = sd_bus_message_read(m, "v", "s", &s);
	if (r < 0)
		return r;
	free(*field);
	*field = strdup(s);
	return *field ? 0 : -ENOMEM;
}

static int read_connection(sd_bus_message *m, struct conn_row *c)
{
	int r;

	for (;;) {
		const char *key, *contents = NULL;
		char type = 0;

		r = sd_bus_message_enter_container(m, 'e', "sv");
		if (r <= 0)
			return r;
		r = sd_bus_message_read(m, "s", &key);
		if (r < 0)
			return r;
		r = sd_bus_message_peek_type(m, &type, &contents);
		if (r < 0)
			return r;
		/* Unknown keys or types are skipped: newer daemons may add keys. */
		if (contents && strcmp(contents, "u") == 0 && strcmp(key, "Pid") == 0)
			r = sd_bus_message_read(m, "v", "u", &c->pid);
		else if (contents && strcmp(contents, "t") == 0 && strcmp(key, "BytesUp") == 0)
			r = sd_bus_message_read(m, "v", "t", &c->bytes_up);
		else if (contents && strcmp(contents, "t") == 0 && strcmp(key, "BytesDown") == 0)
			r = sd_bus_message_read(m, "v", "t", &c->bytes_down);
		else if (contents && strcmp(contents, "t") == 0 && strcmp(key, "Cookie") == 0)
			r = sd_bus_message_read(m, "v", "t", &c->cookie);
		else if (contents && strcmp(contents, "s") == 0) {
			static const struct {
				const char *key;
				size_t offset;
			} strings[] = {
				{ "ProcessName", offsetof(struct conn_row, process) },
				{ "Protocol", offsetof(struct conn_row, protocol) },
				{ "Source", offsetof(struct conn_row, source) },
				{ "Destination", offsetof(struct conn_row, destination) },
				{ "Outbound", offsetof(struct conn_row, outbound) },
				{ "Node", offsetof(struct conn_row, node) },
				{ "Rule", offsetof(struct conn_row, rule) },
				{ "Domain", offsetof(struct conn_row, domain) },
			};
			size_t i;

			for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
				if (strcmp(key, strings[i].key) == 0)
					break;
			if (i < sizeof(strings) / sizeof(strings[0]))
				r = read_string_into(m, (char **)((char *)c + strings[i].offset));
			else
				r = sd_bus_message_skip(m, "v");
		} else
			r = sd_bus_message_skip(m, "v");
		if (r < 0)
			return r;
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
}

static int read_connections(sd_bus_message *reply, struct conn_rows *rows)
{
	int r;

	r = sd_bus_message_enter_container(reply, 'a', "a{sv}");
	if (r < 0)
		return r;
	for (;;) {
		struct conn_row *v;

		r = sd_bus_message_enter_container(reply, 'a', "{sv}");
		if (r <= 0)
			break;
		v = realloc(rows->v, (rows->n + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		rows->v = v;
		memset(&v[rows->n], 0, sizeof(v[0]));
		r = read_connection(reply, &v[rows->n++]);
		if (r < 0)
			return r;
		r = sd_bus_message_exit_container(reply);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(reply);
}

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static void format_bytes(uint64_t n, char *buf, size_t len)
{
	static const char suffix[] = "KMGTPE";
	double v = (double)n;
	int i = -1;

	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64 "B", n);
		return;
	}
	while (v >= 1024.0 && i < 5) {
		v /= 1024.0;
		i++;
	}
	snprintf(buf, len, "%.1f%c", v, suffix[i]);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f); /* the daemon sends valid UTF-8 */
		}
	}
	fputc('"', f);
}

/* The next value of m as JSON: strings, numbers, booleans, arrays; a{sv}
 * and a{ss} as objects; variants as their contents. */
static int json_value(sd_bus_message *m)
{
	char type;
	const char *contents;
	int r = sd_bus_message_peek_type(m, &type, &contents);

	if (r <= 0)
		return r < 0 ? r : -EBADMSG;
	switch (type) {
	case 's':
	case 'o':
	case 'g': {
		const char *v;
		r = sd_bus_message_read_basic(m, type, &v);
		json_string(stdout, v);
		return r;
	}
	case 'b': {
		int v;
		r = sd_bus_message_read_basic(m, 'b', &v);
		fputs(v ? "true" : "false", stdout);
		return r;
	}
	case 'y':
	case 'q':
	case 'u':
	case 't': {
		uint64_t v = 0;
		r = sd_bus_message_read_basic(m, type, &v);
		printf("%" PRIu64, type == 'y'	 ? (uint64_t)(uint8_t)v
				   : type == 'q' ? (uint64_t)(uint16_t)v
				   : type == 'u' ? (uint64_t)(uint32_t)v
						 : v);
		return r;
	}
	case 'n':
	case 'i':
	case 'x': {
		int64_t v = 0;
		r = sd_bus_message_read_basic(m, type, &v);
		printf("%" PRId64, type == 'n'	 ? (int64_t)(int16_t)v
				   : type == 'i' ? (int64_t)(int32_t)v
						 : v);
		return r;
	}
	case 'v':
		r = sd_bus_message_enter_container(m, 'v', contents);
		if (r >= 0)
			r = json_value(m);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		return r;
	case 'a': {
		bool dict = contents[0] == '{';
		int first = 1;
		char entry[64];
		if (dict) {
			size_t n = strlen(contents);
			if (n < 3 || n - 2 >= sizeof(entry))
				return -EBADMSG;
			memcpy(entry, contents + 1, n - 2); /* "{sv}" -> "sv" */
			entry[n - 2] = '\0';
		}
		r = sd_bus_message_enter_container(m, 'a', contents);
		fputs(dict ? "{" : "[", stdout);
		while (r >= 0) {
			if (dict) {
				const char *key;
				r = sd_bus_message_enter_container(m, 'e', entry);
				if (r <= 0)
					break;
				if (!first)
					fputs(",", stdout);
				first = 0;
				r = sd_bus_message_read_basic(m, 's', &key);
				if (r < 0)
					break;
				json_string(stdout, key);
				fputs(":", stdout);
				r = json_value(m);
				if (r >= 0)
					r = sd_bus_message_exit_container(m);
				continue;
			}
			r = sd_bus_message_at_end(m, false);
			if (r != 0)
				break;
			if (!first)
				fputs(",", stdout);
			first = 0;
			r = json_value(m);
		}
		fputs(dict ? "}" : "]", stdout);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		return r;
	}
	default:
		r = sd_bus_message_skip(m, NULL);
		fputs("null", stdout);
		return r;
	}
}

static void print_json(const struct conn_rows *rows)
{
	printf("[");
	for (size_t i = 0; i < rows->n; i++) {
		const struct conn_row *c = &rows->v[i];

		printf("%s\n  {\"pid\": %" PRIu32 ", \"process\": ", i ? "," : "", c->pid);
		json_string(stdout, c->process);
		printf(", \"protocol\": ");
		json_string(stdout, c->protocol);
		printf(", \"source\": ");
		json_string(stdout, c->source);
		printf(", \"destination\": ");
		json_string(stdout, c->destination);
		printf(", \"outbound\": ");
		json_string(stdout, c->outbound);
		printf(", \"node\": ");
		json_string(stdout, c->node);
		printf(", \"rule\": ");
		json_string(stdout, c->rule);
		printf(", \"domain\": ");
		json_string(stdout, c->domain);
		printf(", \"bytes_up\": %" PRIu64 ", \"bytes_down\": %" PRIu64
		       ", \"cookie\": %" PRIu64 "}",
		       c->bytes_up, c->bytes_down, c->cookie);
	}
	printf("%s]\n", rows->n ? "\n" : "");
}

enum {
	COL_PID,
	COL_PROCESS,
	COL_PROTO,
	COL_SRC,
	COL_DST,
	COL_DOMAIN,
	COL_OUT,
	COL_NODE,
	COL_UP,
	COL_DOWN,
	N_COLS
};

static void row_cells(const struct conn_row *c, char pid[16], char up[16], char down[16],
		      const char *cells[N_COLS])
{
	snprintf(pid, 16, "%" PRIu32, c->pid);
	format_bytes(c->bytes_up, up, 16);
	format_bytes(c->bytes_down, down, 16);
	cells[COL_PID] = pid;
	cells[COL_PROCESS] = or_dash(c->process);
	cells[COL_PROTO] = or_dash(c->protocol);
	cells[COL_SRC] = or_dash(c->source);
	cells[COL_DST] = or_dash(c->destination);
	cells[COL_DOMAIN] = or_dash(c->domain);
	cells[COL_OUT] = or_dash(c->outbound);
	cells[COL_NODE] = or_dash(c->node);
	cells[COL_UP] = up;
	cells[COL_DOWN] = down;
}

/* Columns, not bytes: names may hold multi-byte UTF-8 characters. */
static size_t display_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static void print_cell(const char *s, size_t width, bool right, bool first)
{
	size_t pad = width - display_width(s);

	printf("%s%*s%s%*s", first ? "" : "  ", right ? (int)pad : 0, "", s, right ? 0 : (int)pad,
	       "");
}

static void print_table(const struct conn_rows *rows)
{
	static const char *const header[N_COLS] = { "PID",	   "PROCESS", "PROTO",	  "SOURCE",
						    "DESTINATION", "DOMAIN",  "OUTBOUND", "NODE",
						    "UP",	   "DOWN" };
	/* Numbers are right-aligned, text left-aligned. */
	static const bool right[N_COLS] = { [COL_PID] = true, [COL_UP] = true, [COL_DOWN] = true };
	size_t width[N_COLS];
	char pid[16], up[16], down[16];
	const char *cells[N_COLS];

	for (int j = 0; j < N_COLS; j++)
		width[j] = strlen(header[j]);
	for (size_t i = 0; i < rows->n; i++) {
		row_cells(&rows->v[i], pid, up, down, cells);
		for (int j = 0; j < N_COLS; j++)
			if (display_width(cells[j]) > width[j])
				width[j] = display_width(cells[j]);
	}
	for (size_t i = 0; i <= rows->n; i++) {
		if (i == 0)
			memcpy(cells, header, sizeof(cells));
		else
			row_cells(&rows->v[i - 1], pid, up, down, cells);
		for (int j = 0; j < N_COLS; j++)
			print_cell(cells[j], width[j], right[j], j == 0);
		printf("\n");
	}
}

static int cmd_connections(sd_bus *bus)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_(conn_rows_free) struct conn_rows rows = { 0 };
	int r;

	r = sd_bus_call_method(bus, ANSER_BUS_NAME, ANSER_BUS_PATH, ANSER_BUS_INTERFACE,
			       "ListConnections", &error, &reply, NULL);
	if (r < 0)
		return report_error("list connections", &error, r);
	r = read_connections(reply, &rows);
	if (r < 0) {
		fprintf(stderr, "Failed to parse the connection list: %s\n", strerror(-r));
		return EXIT_FAILURE;
	}
	if (arg_json)
		print_json(&rows);
	else
		print_table(&rows);
	return EXIT_SUCCESS;
}

static int cmd_reload(sd_bus *bus)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	int r;

	r = sd_bus_call_method(bus, ANSER_BUS_NAME, ANSER_BUS_PATH, ANSER_BUS_INTERFACE, "Reload",
			       &error, NULL, NULL);
	if (r >= 0)
		return EXIT_SUCCESS;
	if (sd_bus_error_has_name(&error, ANSER_BUS_ERROR_RELOAD_FAILED)) {
		/* The message carries file:line:col diagnostics; the old
		 * configuration keeps running. */
		fprintf(stderr, "%s\n", error.message);
		return EXIT_FAILURE;
	}
	return report_error("reload", &error, r);
}

/* A bare name is app(NAME) when a desktop file NAME.desktop is installed
 * (the application is known), else pname(NAME); anything with '(' is a
 * selector as written. */
static char *selector_of(const char *arg)
{
	static const char *const dirs[] = { "/usr/share/applications",
					    "/usr/local/share/applications",
					    "/var/lib/flatpak/exports/share/applications" };
	char path[4096];

	if (strchr(arg, '('))
		return strdup(arg);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
		snprintf(path, sizeof(path), "%s/%s.desktop", dirs[i], arg);
		if (!strchr(arg, '/') && access(path, F_OK) == 0) {
			char *s;
			return asprintf(&s, "app('%s')", arg) < 0 ? NULL : s;
		}
	}
	char *s;
	return asprintf(&s, "pname('%s')", arg) < 0 ? NULL : s;
}

/* Calls a method that returns nothing; InvalidArgument (and `usage_too`)
 * are the caller's mistake: their message and exit status 2. */
static int call_simple(sd_bus *bus, const char *verb, const char *what, const char *usage_too,
		       const char *method, const char *types, ...)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	va_list ap;
	int r;

	va_start(ap, types);
	r = sd_bus_call_methodv(bus, ANSER_BUS_NAME, ANSER_BUS_PATH, ANSER_BUS_INTERFACE, method,
				&error, NULL, types, ap);
	va_end(ap);
	if (r >= 0)
		return EXIT_SUCCESS;
	if (sd_bus_error_has_name(&error, ANSER_BUS_ERROR_INVALID_ARGUMENT) ||
	    (usage_too && sd_bus_error_has_name(&error, usage_too))) {
		fprintf(stderr, "anserctl: %s: %s\n", verb, error.message);
		return EXIT_USAGE;
	}
	return report_error(what, &error, r);
}

/* route SELECTOR OUTBOUND */
static int cmd_route(sd_bus *bus, int argc, char **argv)
{
	_cleanup_(freep) char *sel = selector_of(argv[0]);

	if (!sel)
		return EXIT_FAILURE;
	int r = call_simple(bus, "route", "set the route", NULL, "SetAppRoute", "ss", sel, argv[1]);
	if (r == EXIT_SUCCESS)
		printf("%s -> %s\n", sel, argv[1]);
	return r;
}

/* unroute SELECTOR */
static int cmd_unroute(sd_bus *bus, int argc, char **argv)
{
	_cleanup_(freep) char *sel = selector_of(argv[0]);

	if (!sel)
		return EXIT_FAILURE;
	return call_simple(bus, "unroute", "clear the route", ANSER_BUS_ERROR_NO_SUCH_ROUTE,
			   "ClearAppRoute", "s", sel);
}

/* routes: the AppRoutes property */
static int cmd_routes(sd_bus *bus)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	const char *sel, *out;
	int r;

	r = sd_bus_get_property(bus, ANSER_BUS_NAME, ANSER_BUS_PATH, ANSER_BUS_INTERFACE,
				"AppRoutes", &error, &reply, "a{ss}");
	if (r < 0)
		return report_error("read the routes", &error, r);
	r = sd_bus_message_enter_container(reply, 'a', "{ss}");
	if (r < 0)
		return EXIT_FAILURE;
	if (arg_json)
		fputs("[", stdout);
	for (int i = 0; (r = sd_bus_message_read(reply, "{ss}", &sel, &out)) > 0; i++) {
		if (arg_json) {
			fputs(i ? ",{\"selector\":" : "{\"selector\":", stdout);
			json_string(stdout, sel);
			fputs(",\"outbound\":", stdout);
			json_string(stdout, out);
			fputs("}", stdout);
		} else {
			printf("%s -> %s\n", sel, out);
		}
	}
	if (arg_json)
		fputs("]\n", stdout);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Reads one "as" value of a dictionary entry into "a, b, c". */
static int read_strv_joined(sd_bus_message *m, char **out)
{
	GString *s = g_string_new(NULL);
	const char *v;
	int r = sd_bus_message_enter_container(m, 'v', "as");

	if (r >= 0)
		r = sd_bus_message_enter_container(m, 'a', "s");
	while (r >= 0 && (r = sd_bus_message_read(m, "s", &v)) > 0)
		g_string_append_printf(s, "%s%s", s->len ? ", " : "", v);
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	*out = g_string_free(s, FALSE);
	return r;
}

/* Prints an aa{sv} reply as a table of the given string keys (and one
 * "as" key joined with commas). */
/* a{st} of microseconds as "tcp4 12 ms, udp4 30 ms". */
static int read_latencies(sd_bus_message *m, char **out)
{
	GString *s = g_string_new(NULL);
	const char *k;
	uint64_t us;
	int r = sd_bus_message_enter_container(m, 'v', "a{st}");
	if (r >= 0)
		r = sd_bus_message_enter_container(m, 'a', "{st}");
	while (r >= 0 && (r = sd_bus_message_read(m, "{st}", &k, &us)) > 0)
		g_string_append_printf(s, "%s%s %" PRIu64 " ms", s->len ? ", " : "", k,
				       (us + 500) / 1000);
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	*out = g_string_free(s, false);
	return r;
}

static int print_dicts(sd_bus_message *m, const char *const *keys, size_t n,
		       const char *const *heads)
{
	int r = sd_bus_message_enter_container(m, 'a', "a{sv}");
	char ***rows = NULL;
	size_t n_rows = 0, width[8] = { 0 };

	for (size_t k = 0; k < n; k++)
		width[k] = strlen(heads[k]);
	while (r >= 0 && (r = sd_bus_message_enter_container(m, 'a', "{sv}")) > 0) {
		char **row = g_new0(char *, n + 1);
		const char *key, *contents;
		while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
			size_t k;
			r = sd_bus_message_read(m, "s", &key);
			if (r >= 0)
				r = sd_bus_message_peek_type(m, NULL, &contents);
			for (k = 0; r >= 0 && k < n; k++)
				if (strcmp(key, keys[k]) == 0)
					break;
			if (r < 0)
				break;
			if (k < n && strcmp(contents, "s") == 0) {
				const char *v;
				r = sd_bus_message_read(m, "v", "s", &v);
				row[k] = g_strdup(v);
			} else if (k < n && strcmp(contents, "as") == 0) {
				r = read_strv_joined(m, &row[k]);
			} else if (k < n && strcmp(contents, "a{st}") == 0) {
				r = read_latencies(m, &row[k]);
			} else {
				r = sd_bus_message_skip(m, "v");
			}
			if (r >= 0)
				r = sd_bus_message_exit_container(m);
		}
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		for (size_t k = 0; k < n; k++) {
			if (!row[k])
				row[k] = g_strdup("");
			if (strlen(row[k]) > width[k])
				width[k] = strlen(row[k]);
		}
		rows = g_renew(char **, rows, n_rows + 1);
		rows[n_rows++] = row;
	}
	for (size_t k = 0; k < n; k++)
		printf("%-*s%s", (int)width[k], heads[k], k + 1 < n ? "  " : "\n");
	for (size_t i = 0; i < n_rows; i++) {
		for (size_t k = 0; k < n; k++)
			printf("%-*s%s", (int)width[k], rows[i][k], k + 1 < n ? "  " : "\n");
		g_strfreev(rows[i]);
	}
	g_free(rows);
	return r < 0 ? r : 0;
}

static int print_reply_json(sd_bus_message *reply)
{
	int r = json_value(reply);
	fputs("\n", stdout);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* An aa{sv} reply: JSON with --json, else a table of four keys. */
static int show_dicts_n(sd_bus_message *reply, const char *const *keys, const char *const *heads,
			size_t n)
{
	if (arg_json)
		return print_reply_json(reply);
	return print_dicts(reply, keys, n, heads) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int show_dicts(sd_bus_message *reply, const char *const keys[4], const char *const heads[4])
{
	return show_dicts_n(reply, keys, heads, 4);
}

/* The aa{sv} property `name`, shown by show_dicts(). */
static int show_property(sd_bus *bus, const char *name, const char *what, const char *const keys[4],
			 const char *const heads[4])
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	int r = sd_bus_get_property(bus, ANSER_BUS_NAME, ANSER_BUS_PATH, ANSER_BUS_INTERFACE, name,
				    &error, &reply, "aa{sv}");

	if (r < 0)
		return report_error(what, &error, r);
	return show_dicts(reply, keys, heads);
}

/* apps: the ActiveApps property */
static int cmd_apps(sd_bus *bus)
{
	static const char *const keys[] = { "ApplicationId", "ProcessName", "Outbound", "Rule" };
	static const char *const heads[] = { "APPLICATION", "PROCESS", "OUTBOUND", "RULE" };

	return show_property(bus, "ActiveApps", "list the applications", keys, heads);
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	const char *iface, *name;
	int r;

	r = sd_bus_message_read(m, "s", &iface);
	if (r < 0 || strcmp(iface, ANSER_BUS_INTERFACE) != 0)
		return 0;
	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	while (r > 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *contents;
		r = sd_bus_message_read(m, "s", &name);
		if (r >= 0)
			r = sd_bus_message_peek_type(m, NULL, &contents);
		if (r < 0)
			break;
		if (strcmp(contents, "s") == 0) {
			const char *v;
			r = sd_bus_message_read(m, "v", "s", &v);
			printf("%s: %s\n", name, v);
		} else if (strcmp(contents, "b") == 0) {
			int v;
			r = sd_bus_message_read(m, "v", "b", &v);
			printf("%s: %s\n", name, v ? "yes" : "no");
		} else if (strcmp(contents, "t") == 0) {
			uint64_t v;
			r = sd_bus_message_read(m, "v", "t", &v);
			printf("%s: %" PRIu64 "\n", name, v);
		} else {
			r = sd_bus_message_skip(m, "v");
			printf("%s changed\n", name);
		}
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r >= 0)
		r = sd_bus_message_enter_container(m, 'a', "s");
	while (r > 0 && (r = sd_bus_message_read(m, "s", &name)) > 0)
		printf("%s changed\n", name);
	fflush(stdout);
	return 0;
}

/* monitor: property changes as they happen, until interrupted */
static int cmd_monitor(sd_bus *bus)
{
	_cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
	int r;

	r = sd_bus_match_signal(bus, &slot, ANSER_BUS_NAME, ANSER_BUS_PATH,
				"org.freedesktop.DBus.Properties", "PropertiesChanged",
				on_properties_changed, NULL);
	if (r < 0) {
		fprintf(stderr, "Failed to watch anserd: %s\n", strerror(-r));
		return EXIT_FAILURE;
	}
	printf(_("Watching %s (Ctrl-C to stop)\n"), ANSER_BUS_NAME);
	fflush(stdout);
	for (;;) {
		r = sd_bus_process(bus, NULL);
		if (r < 0)
			break;
		if (r > 0)
			continue;
		r = sd_bus_wait(bus, UINT64_MAX);
		if (r < 0 && r != -EINTR)
			break;
	}
	fprintf(stderr, "Lost the bus: %s\n", strerror(-r));
	return EXIT_FAILURE;
}

/* groups: the Groups property */
static int cmd_groups(sd_bus *bus)
{
	static const char *const keys[] = { "Name", "Policy", "SelectedNode", "Nodes" };
	static const char *const heads[] = { "GROUP", "POLICY", "SELECTED", "NODES" };

	return show_property(bus, "Groups", "read the groups", keys, heads);
}

/* nodes: ListNodes() */
static int cmd_nodes(sd_bus *bus)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	static const char *const keys[] = { "Name",   "Protocol", "Address",
					    "Groups", "Latency",  "Dead" };
	static const char *const heads[] = { "NODE",   "PROTOCOL", "ADDRESS",
					     "GROUPS", "LATENCY",  "FAILED" };
	int r = sd_bus_call_method(bus, ANSER_BUS_NAME, ANSER_BUS_PATH, ANSER_BUS_INTERFACE,
				   "ListNodes", &error, &reply, NULL);

	if (r < 0)
		return report_error("list the nodes", &error, r);
	return show_dicts_n(reply, keys, heads, 6);
}

/* test-nodes [GROUP]: a round of health checks now, then the nodes */
static int cmd_test_nodes(sd_bus *bus, int argc, char **argv)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	uint32_t n = 0;
	int r = sd_bus_call_method(bus, ANSER_BUS_NAME, ANSER_BUS_PATH, ANSER_BUS_INTERFACE,
				   "TestNodes", &error, &reply, "s", argc > 0 ? argv[0] : "");
	if (r < 0) {
		if (sd_bus_error_has_name(&error, ANSER_BUS_ERROR_INVALID_ARGUMENT)) {
			fprintf(stderr, "anserctl: test-nodes: %s\n", error.message);
			return EXIT_USAGE;
		}
		return report_error("test the nodes", &error, r);
	}
	if (sd_bus_message_read(reply, "u", &n) >= 0 && !arg_json)
		printf(_("%u checks done\n"), n);
	return cmd_nodes(bus);
}

/* select GROUP NODE */
static int cmd_select(sd_bus *bus, int argc, char **argv)
{
	return call_simple(bus, "select", "select the node", NULL, "SelectNode", "ss", argv[0],
			   argv[1]);
}

/* explain APP DEST[:PORT] [tcp|udp] */
static int cmd_explain(sd_bus *bus, int argc, char **argv)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	const char *app = argv[0], *dest = argv[1], *proto = argc > 2 ? argv[2] : "tcp";
	const char *outbound = "?", *rule = "?", *file = "";
	uint32_t line = 0, col = 0;
	int32_t index = 0;
	uint16_t port = 0;
	int r;

	if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0) {
		fprintf(stderr, "anserctl: explain: protocol must be tcp or udp, not '%s'\n",
			proto);
		return EXIT_USAGE;
	}
	r = sd_bus_call_method(bus, ANSER_BUS_NAME, ANSER_BUS_PATH, ANSER_BUS_INTERFACE, "Explain",
			       &error, &reply, "sss", app, dest, proto);
	if (r < 0) {
		if (sd_bus_error_has_name(&error, ANSER_BUS_ERROR_INVALID_ARGUMENT)) {
			fprintf(stderr, "anserctl: explain: %s\n", error.message);
			return EXIT_USAGE;
		}
		return report_error("explain the flow", &error, r);
	}
	const struct dict_field fields[] = {
		{ "Outbound", "s", &outbound }, { "Rule", "s", &rule }, { "File", "s", &file },
		{ "RuleIndex", "i", &index },	{ "Line", "u", &line }, { "Column", "u", &col },
		{ "Port", "q", &port },
	};
	r = read_dict(reply, fields, sizeof(fields) / sizeof(fields[0]));
	if (r < 0) {
		fprintf(stderr, "Failed to read the explanation: %s\n", strerror(-r));
		return EXIT_FAILURE;
	}
	printf("%s -> %s %s: %s\n", app, dest, proto, outbound);
	if (index >= 0)
		printf("  decided by rule %d at %s:%u:%u\n", index + 1, file, line, col);
	else if (index == -1)
		printf("  no rule matches; decided by the fallback at %s:%u:%u\n", file, line, col);
	printf("    %s\n", rule);
	if (!port && index != -2)
		printf("  (no port given: rules with dport() were taken as not matching)\n");
	return EXIT_SUCCESS;
}

static void help(void)
{
	fputs(_("Usage: anserctl [OPTIONS] COMMAND\n"
		"\n"
		"Query and control anserd, the Anser traffic splitter.\n"
		"\n"
		"Commands:\n"
		"  status              Show the daemon's version and state\n"
		"  connections         List live connections and how they are routed\n"
		"  reload              Reload the configuration (errors keep the old one)\n"
		"  explain APP DEST[:PORT] [tcp|udp]\n"
		"                      Show the rule that decides a flow of APP to DEST (an IP\n"
		"                      address; IPv6 with a port as [ADDR]:PORT). APP is a\n"
		"                      process name, a PID (that process, with its cgroup)\n"
		"                      or app:ID (the desktop application ID)\n"
		"  route SELECTOR OUTBOUND\n"
		"                      Send an application's new connections to OUTBOUND\n"
		"                      (direct, block or a group), before the config's\n"
		"                      rules; kept across restarts. SELECTOR is app(ID),\n"
		"                      pname(NAME) or cgroup(PATH); a bare NAME is app(NAME)\n"
		"                      if NAME.desktop is installed, else pname(NAME)\n"
		"  unroute SELECTOR    Remove that route\n"
		"  routes              List the routes set with 'route'\n"
		"  enable, disable     Resume or suspend routing (suspended: every new\n"
		"                      connection goes direct)\n"
		"  validate FILE       Have anserd check a config (FILE or - for stdin)\n"
		"  apps                List running applications with connections\n"
		"  monitor             Print property changes as they happen\n"
		"  groups              List the groups, their policy and selected node\n"
		"  nodes               List the nodes (never their passwords), their latency and\n"
		"                      the network types whose last check failed\n"
		"  test-nodes [GROUP]  Check every node now, then list them\n"
		"  select GROUP NODE   Make GROUP use NODE until anserd restarts\n"
		"\n"
		"Exit status: 0 done; 1 failed (anserd not running, not authorized, an\n"
		"error on its side); 2 usage (bad arguments, or input anserd refused).\n"
		"\n"
		"Options:\n"
		"  -h --help           Show this help\n"
		"     --version        Show the version\n"
		"     --address=ADDR   Connect to this D-Bus address instead of the system bus\n"
		"                      (default: $DBUS_SYSTEM_BUS_ADDRESS or the system bus)\n"
		"     --json           status, connections, routes, apps, groups, nodes:\n"
		"                      print JSON\n"
		"     --no-ask-password  Do not ask for authentication\n"),
	      stdout);
}

static int parse_argv(int argc, char *argv[])
{
	enum { ARG_VERSION = 0x100, ARG_ADDRESS, ARG_JSON, ARG_NO_ASK_PASSWORD };
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "address", required_argument, NULL, ARG_ADDRESS },
		{ "json", no_argument, NULL, ARG_JSON },
		{ "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
		{},
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_VERSION:
			printf("anserctl %s\n", ANSER_VERSION);
			return 0;
		case ARG_ADDRESS:
			arg_address = optarg;
			break;
		case ARG_JSON:
			arg_json = true;
			break;
		case ARG_NO_ASK_PASSWORD:
			arg_ask_password = 0;
			break;
		default:
			return -EINVAL;
		}
	}
	return 1;
}

int main(int argc, char *argv[])
{
	static const struct {
		const char *name;
		int (*run)(sd_bus *bus);
		int (*run_args)(sd_bus *bus, int argc, char **argv);
		int min_args, max_args;
		const char *usage;
	} commands[] = {
		{ "status", cmd_status, NULL, 0, 0, NULL },
		{ "connections", cmd_connections, NULL, 0, 0, NULL },
		{ "reload", cmd_reload, NULL, 0, 0, NULL },
		{ "explain", NULL, cmd_explain, 2, 3, "explain APP DEST[:PORT] [tcp|udp]" },
		{ "route", NULL, cmd_route, 2, 2, "route SELECTOR OUTBOUND" },
		{ "unroute", NULL, cmd_unroute, 1, 1, "unroute SELECTOR" },
		{ "routes", cmd_routes, NULL, 0, 0, NULL },
		{ "enable", cmd_enable, NULL, 0, 0, NULL },
		{ "disable", cmd_disable, NULL, 0, 0, NULL },
		{ "validate", NULL, cmd_validate, 1, 1, "validate FILE" },
		{ "groups", cmd_groups, NULL, 0, 0, NULL },
		{ "apps", cmd_apps, NULL, 0, 0, NULL },
		{ "monitor", cmd_monitor, NULL, 0, 0, NULL },
		{ "nodes", cmd_nodes, NULL, 0, 0, NULL },
		{ "select", NULL, cmd_select, 2, 2, "select GROUP NODE" },
		{ "test-nodes", NULL, cmd_test_nodes, 0, 1, "test-nodes [GROUP]" },
	};
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	const char *verb;
	int r;

	/* messages in the user's language; ANSER_LOCALEDIR lets the build
	 * tree's translations be used before installing */
	setlocale(LC_ALL, "");
	const char *localedir = getenv("ANSER_LOCALEDIR");
	bindtextdomain("anser", localedir && *localedir ? localedir : ANSER_LOCALEDIR);
	bind_textdomain_codeset("anser", "UTF-8");
	textdomain("anser");

	r = parse_argv(argc, argv);
	if (r <= 0)
		return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

	if (optind >= argc) {
		fprintf(stderr,
			"anserctl: a command is required (status, connections, reload, explain); "
			"see --help\n");
		return EXIT_USAGE;
	}
	verb = argv[optind];
	int nargs = argc - optind - 1;
	(void)anser_bus_errors_register();

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, verb) != 0)
			continue;
		if (nargs > commands[i].max_args) {
			fprintf(stderr, "anserctl: unexpected argument '%s'\n",
				argv[optind + 1 + commands[i].max_args]);
			return EXIT_USAGE;
		}
		if (nargs < commands[i].min_args) {
			fprintf(stderr, "anserctl: usage: anserctl %s\n", commands[i].usage);
			return EXIT_USAGE;
		}
		if (arg_json && commands[i].run != cmd_connections &&
		    commands[i].run != cmd_routes && commands[i].run != cmd_status &&
		    commands[i].run != cmd_apps && commands[i].run != cmd_groups &&
		    commands[i].run != cmd_nodes) {
			fprintf(stderr,
				"anserctl: --json applies to status, connections, routes, apps, "
				"groups and nodes\n");
			return EXIT_USAGE;
		}
		if (bus_connect(&bus) < 0)
			return EXIT_FAILURE;
		if (commands[i].run_args)
			return commands[i].run_args(bus, nargs, argv + optind + 1);
		return commands[i].run(bus);
	}
	fprintf(stderr, "anserctl: unknown command '%s'; see --help\n", verb);
	return EXIT_USAGE;
}
