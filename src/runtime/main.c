/* SPDX-License-Identifier: Apache-2.0 */
/* msb-runtime: global options, logging, the msb context, dispatch. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "runtime.h"

static int cmd_version(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        printf("msb-runtime version %s\nspec: 1.0.2-dev\n", MSB_VERSION);
        return 0;
}

static void usage(FILE *f)
{
        fputs("Usage: msb-runtime [GLOBAL OPTIONS] COMMAND [OPTIONS] ID\n"
              "\n"
              "An OCI runtime whose containers run in msb microVMs (runc's command line).\n"
              "\n"
              "Commands:\n"
              "  create    create a container from a bundle (boots its VM)\n"
              "  start     start the created container's process\n"
              "  state     print the container's state (JSON)\n"
              "  kill      send a signal to the container's process\n"
              "  delete    remove a stopped container (--force: any)\n"
              "  exec      run another process in the container\n"
              "  ps        list the container's processes\n"
              "  list      list containers\n"
              "  features  print the implemented features (JSON)\n"
              "  version   print the version\n"
              "\n"
              "Global options:\n"
              "  --root DIR           state directory (default /run/msb-runtime, or $XDG_RUNTIME_DIR/msb-runtime)\n"
              "  --log FILE           also write errors and diagnostics to FILE\n"
              "  --log-format FORMAT  text (default) or json\n"
              "  --systemd-cgroup     linux.cgroupsPath is slice:prefix:name (a systemd scope's place)\n"
              "  --debug              verbose diagnostics in the log\n"
              "  --version            print the version\n"
              "\n"
              "See docs/oci-runtime.md.\n",
              f);
}

/* A global option at argv[*i]: 1 taken, 0 not one, -1 bad. */
static int global_opt(int argc, char **argv, int *i)
{
        static const char *const with_value[] = {"--root", "--log", "--log-format", "--criu", "--rootless"};
        const char *a = argv[*i];
        for (size_t k = 0; k < ARRAY_SIZE(with_value); k++) {
                size_t n = strlen(with_value[k]);
                const char *v = NULL;
                if (!strncmp(a, with_value[k], n) && a[n] == '=')
                        v = a + n + 1;
                else if (!strcmp(a, with_value[k])) {
                        if (*i + 1 >= argc) {
                                rt_error("%s needs a value", a);
                                return -1;
                        }
                        v = argv[++*i];
                } else
                        continue;
                if (k == 0)
                        rt_g.root = v;
                else if (k == 1)
                        rt_g.log = v;
                else if (k == 2) {
                        if (strcmp(v, "json") && strcmp(v, "text")) {
                                rt_error("--log-format '%s': expected text or json", v);
                                return -1;
                        }
                        rt_g.log_json = !strcmp(v, "json");
                }
                /* --criu, --rootless: runc's, accepted */
                return 1;
        }
        if (!strcmp(a, "--systemd-cgroup") || !strcmp(a, "--debug")) {
                if (!strcmp(a, "--debug"))
                        rt_g.debug = true;
                else
                        rt_g.systemd_cgroup = true;
                return 1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        /* a standard fd closed (daemons start us so) must not be taken by
         * the first file we open */
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
                        return RT_EXIT_FAILED;
        int i = 1;
        for (; i < argc && argv[i][0] == '-'; i++) {
                if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-v"))
                        return cmd_version(0, NULL);
                if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        usage(stdout);
                        return 0;
                }
                int r = global_opt(argc, argv, &i);
                if (r < 0)
                        return RT_EXIT_FAILED;
                if (r == 0)
                        return rt_error("unknown global option '%s'; see msb-runtime --help", argv[i]);
        }
        _cleanup_free_ char *defroot = NULL;
        if (!rt_g.root) {
                const char *xdg = getenv("XDG_RUNTIME_DIR");
                if (geteuid() != 0 && xdg && xdg[0] == '/')
                        defroot = xasprintf("%s/msb-runtime", xdg);
                else
                        defroot = xstrdup("/run/msb-runtime");
                rt_g.root = defroot;
        }
        if (rt_g.root[0] != '/')
                return rt_error("--root '%s' must be an absolute path", rt_g.root);
        if (i >= argc) {
                usage(stderr);
                return RT_EXIT_FAILED;
        }
        static const struct {
                const char *name;
                int (*fn)(int, char **);
        } verbs[] = {
                {"create", rt_cmd_create}, {"start", rt_cmd_start}, {"state", rt_cmd_state},
                {"kill", rt_cmd_kill},     {"delete", rt_cmd_delete}, {"exec", rt_cmd_exec},
                {"ps", rt_cmd_ps},         {"list", rt_cmd_list},   {"features", rt_cmd_features},
                {"version", cmd_version},
        };
        for (size_t k = 0; k < ARRAY_SIZE(verbs); k++)
                if (!strcmp(argv[i], verbs[k].name)) {
                        rt_debug("%s", argv[i]);
                        return verbs[k].fn(argc - i, argv + i);
                }
        if (!strcmp(argv[i], "help")) {
                usage(stdout);
                return 0;
        }
        return rt_error("unknown command '%s' (msb-runtime does not implement it); see msb-runtime --help", argv[i]);
}
