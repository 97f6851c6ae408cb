/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb-runtime's own settings: $MSB_RUNTIME_CONFIG, else
 * /etc/msb/runtime.conf.  The file belongs to whoever runs the runtime
 * (the host's administrator), not to whoever writes a pod's annotations:
 *
 *   annotations-may-raise NAME...   io.msb.cpus, io.msb.memory: the
 *                                   annotation may size the VM above what
 *                                   linux.resources (or msb's default)
 *                                   gives; without it an annotation may
 *                                   only lower the size
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "common/conf.h"
#include "common/util.h"
#include "runtime.h"

static const struct conf_key keys[] = {
        {"annotations-may-raise", -1, "annotations-may-raise io.msb.cpus|io.msb.memory..."},
};

const char *rt_config_path(void)
{
        const char *e = getenv("MSB_RUNTIME_CONFIG");
        return e && *e ? e : RT_CONFIG_DEFAULT;
}

static int line(char **w, int n, void *ud, const char *where, struct msb_error *err)
{
        struct rt_config *c = ud;
        for (int i = 1; i < n; i++) {
                if (!strcmp(w[i], "io.msb.cpus"))
                        c->raise_cpus = true;
                else if (!strcmp(w[i], "io.msb.memory"))
                        c->raise_memory = true;
                else
                        return msb_err(err, EINVAL,
                                       "%s: annotations-may-raise '%.64s': expected io.msb.cpus or io.msb.memory",
                                       where, w[i]);
        }
        return 0;
}

int rt_config_load(struct rt_config *ret)
{
        *ret = (struct rt_config){0};
        struct msb_error err = {0};
        if (conf_each("msb-runtime config", rt_config_path(), keys, ARRAY_SIZE(keys), line, ret, &err) < 0)
                return rt_error("%s", err.message), -EINVAL;
        return 0;
}
