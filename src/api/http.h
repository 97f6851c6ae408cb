/* SPDX-License-Identifier: Apache-2.0 */
/* What serve.c hands libmicrohttpd (http.c): the callbacks and a listener's own facts. */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>

#include "api/api.h"

struct api_listener {
        bool unix_socket; /* peers are checked by uid; else by token */
        const char *token;
};

/* MHD_AccessHandlerCallback: every request, once per chunk. */
enum MHD_Result api_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                           const char *version, const char *data, size_t *data_size, void **con_cls);
/* MHD_OPTION_NOTIFY_COMPLETED: the request's state freed, its log line. */
void api_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe);
