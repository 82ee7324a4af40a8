// SPDX-License-Identifier: GPL-2.0-or-later
#include "bus-errors.h"

#include <errno.h>

/* Keep in sync with docs/dbus-api.md. */
const sd_bus_error_map anser_bus_error_map[] = {
	SD_BUS_ERROR_MAP(ANSER_BUS_ERROR_RELOAD_FAILED, EBADMSG),
	SD_BUS_ERROR_MAP(ANSER_BUS_ERROR_NOT_AUTHORIZED, EACCES),
	SD_BUS_ERROR_MAP(ANSER_BUS_ERROR_INVALID_ARGUMENT, EINVAL),
	SD_BUS_ERROR_MAP(ANSER_BUS_ERROR_BUSY, EBUSY),
	SD_BUS_ERROR_MAP(ANSER_BUS_ERROR_NO_SUCH_ROUTE, ENOENT),
	SD_BUS_ERROR_MAP_END,
};

int anser_bus_errors_register(void)
{
	int r;

	r = sd_bus_error_add_map(anser_bus_error_map);
	return r < 0 ? r : 0;
}
