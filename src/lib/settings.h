/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Everything libmsb takes from its environment, in one table
 * (settings.c): the only place the library calls getenv.  Each variable
 * has one reader here; the rest of the library asks for it by name.
 *
 * A value is read when it is asked for, not copied at start: a program
 * that sets MSB_CONFIG between two calls (the unit tests do) sees the
 * second call use it, as before this module existed.
 */
#pragma once

#include <stdbool.h>

enum msb_setting {
        /* where msb keeps its data (ctx.c) */
        SET_MSB_HOME,
        SET_MSB_SYSTEM_DIR,
        SET_HOME,
        SET_XDG_DATA_HOME,
        SET_XDG_RUNTIME_DIR,
        /* msb's config file and docker's credentials (config.c, registry) */
        SET_MSB_CONFIG,
        SET_XDG_CONFIG_HOME,
        SET_DOCKER_CONFIG,
        /* programs msb runs, and where it looks for them */
        SET_PATH,
        SET_MSB_QEMU,
        SET_MSB_FSD,
        SET_MSB_NETD,
        SET_MSB_AGENTD,
        SET_MSB_VIRTIOFSD,
        SET_MSB_PASST,
        /* the guest's kernel (kit.c) */
        SET_MSB_KERNEL,
        SET_MSB_MODULES,
        SET_MSB_KERNEL_ACPI,
        SET_MSB_KIT,
        /* how a run is made */
        SET_MSB_ACCEL,
        SET_MSB_FS_BACKEND,
        SET_MSB_BOOT_TIMEOUT,
        SET_MSB_NET_DIRECT,
        /* debugging */
        SET_MSB_DEBUG_AGENT,
        SET_MSB_DEBUG_KERNEL,
        SET__COUNT,
};

/* The variable's value as the environment has it now (NULL when unset;
 * "" when set empty, which some settings tell apart). */
const char *msb_setting(enum msb_setting s);
/* The same, NULL for unset or empty. */
const char *msb_setting_nonempty(enum msb_setting s);
/* Whether it is set at all (the debug switches: set means on). */
bool msb_setting_is_set(enum msb_setting s);
/* The environment variable's name, for messages. */
const char *msb_setting_name(enum msb_setting s);
