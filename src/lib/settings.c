/* SPDX-License-Identifier: Apache-2.0 */
/* The environment variables libmsb reads; see settings.h and the table in
 * docs/architecture.md ("Settings"). */
#define _GNU_SOURCE
#include <stdlib.h>

#include "common/util.h"
#include "settings.h"

static const char *const names[SET__COUNT] = {
        [SET_MSB_HOME] = "MSB_HOME",
        [SET_MSB_SYSTEM_DIR] = "MSB_SYSTEM_DIR",
        [SET_HOME] = "HOME",
        [SET_XDG_DATA_HOME] = "XDG_DATA_HOME",
        [SET_XDG_RUNTIME_DIR] = "XDG_RUNTIME_DIR",
        [SET_MSB_CONFIG] = "MSB_CONFIG",
        [SET_XDG_CONFIG_HOME] = "XDG_CONFIG_HOME",
        [SET_DOCKER_CONFIG] = "DOCKER_CONFIG",
        [SET_PATH] = "PATH",
        [SET_MSB_QEMU] = "MSB_QEMU",
        [SET_MSB_FSD] = "MSB_FSD",
        [SET_MSB_NETD] = "MSB_NETD",
        [SET_MSB_AGENTD] = "MSB_AGENTD",
        [SET_MSB_VIRTIOFSD] = "MSB_VIRTIOFSD",
        [SET_MSB_PASST] = "MSB_PASST",
        [SET_MSB_KERNEL] = "MSB_KERNEL",
        [SET_MSB_MODULES] = "MSB_MODULES",
        [SET_MSB_KERNEL_ACPI] = "MSB_KERNEL_ACPI",
        [SET_MSB_KIT] = "MSB_KIT",
        [SET_MSB_ACCEL] = "MSB_ACCEL",
        [SET_MSB_FS_BACKEND] = "MSB_FS_BACKEND",
        [SET_MSB_BOOT_TIMEOUT] = "MSB_BOOT_TIMEOUT",
        [SET_MSB_NET_DIRECT] = "MSB_NET_DIRECT",
        [SET_MSB_DEBUG_AGENT] = "MSB_DEBUG_AGENT",
        [SET_MSB_DEBUG_KERNEL] = "MSB_DEBUG_KERNEL",
};

const char *msb_setting_name(enum msb_setting s)
{
        return (unsigned)s < SET__COUNT ? names[s] : "?";
}

const char *msb_setting(enum msb_setting s)
{
        return (unsigned)s < SET__COUNT ? getenv(names[s]) : NULL;
}

const char *msb_setting_nonempty(enum msb_setting s)
{
        const char *v = msb_setting(s);
        return v && *v ? v : NULL;
}

bool msb_setting_is_set(enum msb_setting s)
{
        return msb_setting(s) != NULL;
}
