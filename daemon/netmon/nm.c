// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * NetworkManager through libnm: an NMClient made asynchronously on the
 * GLib main context, on the same bus anserd serves (so a test's private
 * bus meets a test's NetworkManager). libnm keeps a cache of NM's objects
 * and notifies changes; reading it costs no D-Bus round trip. NMClient
 * follows NetworkManager's name itself: when NM stops, nm-running turns
 * false and the primary connection goes; when it is back, both return.
 */
#include "netmon-private.h"

#include <NetworkManager.h>
#include <string.h>

#include "../util/log.h"

struct anser_nm {
	GCancellable *cancel;
	GDBusConnection *conn;
	NMClient *client;
	anser_nm_changed_fn changed;
	void *ud;
};

static void on_notify(GObject *obj, GParamSpec *pspec, gpointer ud)
{
	struct anser_nm *n = ud;
	n->changed(n->ud);
}

static void on_client(GObject *src, GAsyncResult *res, gpointer ud)
{
	GError *err = NULL;
	GObject *client = g_async_initable_new_finish(G_ASYNC_INITABLE(src), res, &err);

	if (!client) {
		if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
			struct anser_nm *n = ud;
			log_warning("NetworkManager client: %s; following the kernel's routes only",
				    err->message);
			n->changed(n->ud);
		}
		g_error_free(err);
		return;
	}
	struct anser_nm *n = ud;
	n->client = NM_CLIENT(client);
	g_signal_connect(n->client, "notify::" NM_CLIENT_PRIMARY_CONNECTION, G_CALLBACK(on_notify),
			 n);
	g_signal_connect(n->client, "notify::" NM_CLIENT_NM_RUNNING, G_CALLBACK(on_notify), n);
	g_signal_connect(n->client, "notify::" NM_CLIENT_METERED, G_CALLBACK(on_notify), n);
	/* a connection's DNS servers changed (read from its IP configs) */
	g_signal_connect(n->client, "notify::" NM_CLIENT_DNS_CONFIGURATION, G_CALLBACK(on_notify),
			 n);
	/* a profile renamed while active, a VPN coming up on top */
	g_signal_connect(n->client, "notify::" NM_CLIENT_ACTIVE_CONNECTIONS, G_CALLBACK(on_notify),
			 n);
	log_info("NetworkManager %s",
		 nm_client_get_nm_running(n->client) ? "is running" : "is not running (yet)");
	n->changed(n->ud);
}

static void on_conn(GObject *src, GAsyncResult *res, gpointer ud)
{
	GError *err = NULL;
	GDBusConnection *conn = g_dbus_connection_new_for_address_finish(res, &err);

	if (!conn) {
		if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			log_warning("Cannot reach the bus for NetworkManager: %s; following the "
				    "kernel's routes only",
				    err->message);
		g_error_free(err);
		return;
	}
	struct anser_nm *n = ud;
	n->conn = conn;
	g_dbus_connection_set_exit_on_close(conn, FALSE);
	g_async_initable_new_async(NM_TYPE_CLIENT, G_PRIORITY_DEFAULT, n->cancel, on_client, n,
				   NM_CLIENT_DBUS_CONNECTION, conn, NM_CLIENT_INSTANCE_FLAGS,
				   NM_CLIENT_INSTANCE_FLAGS_NO_AUTO_FETCH_PERMISSIONS, NULL);
}

struct anser_nm *anser_nm_new(const char *bus_address, anser_nm_changed_fn changed, void *ud)
{
	struct anser_nm *n = g_new0(struct anser_nm, 1);
	g_autofree char *system = NULL;

	n->cancel = g_cancellable_new();
	n->changed = changed;
	n->ud = ud;
	if (!bus_address) {
		GError *err = NULL;
		system = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, NULL, &err);
		if (!system) {
			log_warning("No system bus for NetworkManager: %s", err->message);
			g_error_free(err);
			return n;
		}
		bus_address = system;
	}
	/* a connection of our own: g_bus_get() would share one that closing
	 * or the exit-on-close default could disturb */
	g_dbus_connection_new_for_address(bus_address,
					  G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
						  G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
					  NULL, n->cancel, on_conn, n);
	return n;
}

/* NM's connection types, in the words users write in network(type: ...). */
static const char *short_type(const char *t, bool vpn)
{
	static const struct {
		const char *nm, *ours;
	} names[] = {
		{ NM_SETTING_WIRED_SETTING_NAME, "ethernet" },
		{ NM_SETTING_WIRELESS_SETTING_NAME, "wifi" },
		{ NM_SETTING_VPN_SETTING_NAME, "vpn" },
		{ NM_SETTING_WIREGUARD_SETTING_NAME, "vpn" },
	};

	if (vpn)
		return "vpn";
	for (size_t i = 0; t && i < G_N_ELEMENTS(names); i++)
		if (strcmp(t, names[i].nm) == 0)
			return names[i].ours;
	return t ? t : "";
}

void anser_nm_read(struct anser_nm *n, struct anser_network *out, bool *running)
{
	NMActiveConnection *ac = NULL;

	memset(out, 0, sizeof(*out));
	*running = n->client && nm_client_get_nm_running(n->client);
	if (*running)
		ac = nm_client_get_primary_connection(n->client);
	if (!ac) {
		out->id = g_strdup("");
		out->uuid = g_strdup("");
		out->type = g_strdup("");
		out->ssid = g_strdup("");
		out->iface = g_strdup("");
		return;
	}
	const char *t = nm_active_connection_get_connection_type(ac);
	const GPtrArray *devs = nm_active_connection_get_devices(ac);
	NMDevice *dev = devs && devs->len ? g_ptr_array_index(devs, 0) : NULL;
	NMRemoteConnection *rc = nm_active_connection_get_connection(ac);
	NMSettingWireless *sw = rc ? nm_connection_get_setting_wireless(NM_CONNECTION(rc)) : NULL;
	GBytes *ssid = sw ? nm_setting_wireless_get_ssid(sw) : NULL;

	out->id = g_strdup(nm_active_connection_get_id(ac) ?: "");
	out->uuid = g_strdup(nm_active_connection_get_uuid(ac) ?: "");
	out->type = g_strdup(short_type(t, nm_active_connection_get_vpn(ac)));
	out->ssid =
		ssid ? nm_utils_ssid_to_utf8(g_bytes_get_data(ssid, NULL), g_bytes_get_size(ssid))
		     : g_strdup("");
	out->iface = g_strdup(dev ? (nm_device_get_ip_iface(dev) ?: nm_device_get_iface(dev) ?: "")
				  : "");
	NMMetered m = nm_client_get_metered(n->client);
	out->metered = m == NM_METERED_YES || m == NM_METERED_GUESS_YES;
	GPtrArray *dns = g_ptr_array_new();
	NMIPConfig *ipc[2] = { nm_active_connection_get_ip4_config(ac),
			       nm_active_connection_get_ip6_config(ac) };
	for (size_t i = 0; i < 2; i++) {
		const char *const *ns = ipc[i] ? nm_ip_config_get_nameservers(ipc[i]) : NULL;
		for (size_t k = 0; ns && ns[k]; k++)
			g_ptr_array_add(dns, g_strdup(ns[k]));
	}
	if (dns->len) {
		g_ptr_array_add(dns, NULL);
		out->dns = (char **)g_ptr_array_free(dns, FALSE);
	} else {
		g_ptr_array_free(dns, TRUE);
	}
}

void anser_nm_free(struct anser_nm *n)
{
	if (!n)
		return;
	g_cancellable_cancel(n->cancel);
	if (n->client) {
		/* libnm finishes its D-Bus calls on the main context after the
		 * last reference goes: let it, briefly, so nothing is left */
		GObject *busy = nm_client_get_context_busy_watcher(n->client);
		gboolean done = busy == NULL;
		if (busy)
			g_object_weak_ref(busy, (GWeakNotify)(void (*)(void))g_nullify_pointer,
					  &busy);
		g_signal_handlers_disconnect_by_data(n->client, n);
		g_object_unref(n->client);
		for (int i = 0; !done && busy && i < 200; i++)
			g_main_context_iteration(NULL, FALSE);
		if (busy)
			g_object_weak_unref(busy, (GWeakNotify)(void (*)(void))g_nullify_pointer,
					    &busy);
	}
	if (n->conn) {
		g_dbus_connection_close_sync(n->conn, NULL, NULL);
		g_object_unref(n->conn);
	}
	/* the cancelled callbacks run on later iterations and touch only
	 * their GError */
	g_object_unref(n->cancel);
	g_free(n);
}

void anser_network_clear(struct anser_network *net)
{
	g_free(net->id);
	g_free(net->uuid);
	g_free(net->type);
	g_free(net->ssid);
	g_free(net->iface);
	g_strfreev(net->dns);
	memset(net, 0, sizeof(*net));
}
