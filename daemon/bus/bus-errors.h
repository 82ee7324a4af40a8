/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Named D-Bus errors of org.anser.Anser1, shared by anserd and anserctl. */
#ifndef ANSER_BUS_ERRORS_H
#define ANSER_BUS_ERRORS_H

#include <systemd/sd-bus.h>

#define ANSER_BUS_NAME			 "org.anser.Anser1"
#define ANSER_BUS_PATH			 "/org/anser/Anser1"
#define ANSER_BUS_INTERFACE		 "org.anser.Anser1.Manager"

#define ANSER_BUS_ERROR_RELOAD_FAILED	 "org.anser.Anser1.Error.ReloadFailed"
#define ANSER_BUS_ERROR_NOT_AUTHORIZED	 "org.anser.Anser1.Error.NotAuthorized"
#define ANSER_BUS_ERROR_INVALID_ARGUMENT "org.anser.Anser1.Error.InvalidArgument"
#define ANSER_BUS_ERROR_BUSY		 "org.anser.Anser1.Error.Busy"
#define ANSER_BUS_ERROR_NO_SUCH_ROUTE	 "org.anser.Anser1.Error.NoSuchRoute"

extern const sd_bus_error_map anser_bus_error_map[];

/* Registers anser_bus_error_map with sd-bus (idempotent), so that
 * sd_bus_error_get_errno() and sd_bus_call*() turn our names into errnos. */
int anser_bus_errors_register(void);

#endif
