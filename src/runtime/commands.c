/* SPDX-License-Identifier: Apache-2.0 */
/* The runtime spec's operations: create, start, state, kill, delete; and
 * runc's ps, list and features. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/util.h"
#include "runtime.h"

#define DELETE_WAIT_MS 10000 /* a shim ends this long after its VM, at most */

/* Parse options of one verb; "+" stops at the ID, as urfave/cli does.
 * getopt_long_only: runc takes -pid-file as well as --pid-file. */
static int one_id(const char *verb, int argc, char **argv, const char **ret_id)
{
        if (optind >= argc)
                return rt_error("%s: no container ID given", verb);
        *ret_id = argv[optind];
        return 0;
}

static int bad_option(const char *verb, char **argv)
{
        return rt_error("%s: unknown option '%s'", verb, argv[optind - 1]);
}

/* ---- create ---- */

/* The container's cgroup, recorded in its state before anything joins it.
 * Where none can be made (rootless, a read-only /sys/fs/cgroup), a
 * container without limits goes on without one, as with runc. */
static int make_cgroup(struct rt_container *ct, const struct rt_bundle *b)
{
        struct msb_error err = {0};
        int r = rt_cgroup_create(ct->id, &b->res, &ct->cgroups, &err);
        if (r == -EACCES || r == -EPERM || r == -EROFS || r == -ENOENT) {
                if (rt_resources_any(&b->res))
                        return rt_error("create: %s; the bundle's limits cannot be enforced", err.message), r;
                rt_warn("create: %s; the container has no cgroup of its own", err.message);
                return 0;
        }
        if (r < 0)
                return rt_error("create: config.json: %s", err.message), r;
        if (rt_container_save(ct) < 0) {
                rt_cgroup_remove(ct->cgroups);
                return rt_error("%s",
                                errno_msg(errno, "create: cannot write the state of %s in %s", ct->id, ct->dir).s),
                       -EIO;
        }
        return 0;
}

int rt_cmd_create(int argc, char **argv)
{
        static const struct option lo[] = {{"bundle", required_argument, NULL, 'b'},
                                           {"pid-file", required_argument, NULL, 'p'},
                                           {"console-socket", required_argument, NULL, 'c'},
                                           {"no-pivot", no_argument, NULL, 'P'},
                                           {"no-new-keyring", no_argument, NULL, 'K'},
                                           {"preserve-fds", required_argument, NULL, 'f'},
                                           {0}};
        const char *bundle = ".", *pid_file = NULL, *console = NULL;
        int c;
        optind = 1;
        while ((c = getopt_long_only(argc, argv, "+b:", lo, NULL)) != -1) {
                switch (c) {
                case 'b':
                        bundle = optarg;
                        break;
                case 'p':
                        pid_file = optarg;
                        break;
                case 'c':
                        console = optarg;
                        break;
                case 'P':
                case 'K':
                        break; /* nothing to pivot, no keyring: a VM */
                case 'f':
                        if (strcmp(optarg, "0"))
                                return rt_error("create: --preserve-fds %s: file descriptors cannot be passed into a "
                                                "VM",
                                                optarg);
                        break;
                default:
                        return bad_option("create", argv);
                }
        }
        const char *id = NULL;
        if (one_id("create", argc, argv, &id) || rt_id_check(id) < 0)
                return RT_EXIT_FAILED;
        _cleanup_free_ char *bdir = realpath(bundle, NULL);
        if (!bdir)
                return rt_error("%s", errno_msg(errno, "create: bundle %s", bundle).s);
        struct rt_bundle b;
        if (rt_bundle_load(bdir, &b) < 0)
                return RT_EXIT_FAILED;
        if (b.terminal && !console) {
                rt_bundle_free(&b);
                return rt_error("create: process.terminal is set: --console-socket is required");
        }
        struct msb_ctx *ctx = rt_ctx();
        if (!ctx) {
                rt_bundle_free(&b);
                return RT_EXIT_FAILED;
        }
        char name[160];
        rt_id_to_name(id, name, sizeof(name));
        char now[64];
        rt_now_rfc3339(now, sizeof(now));
        struct rt_container ct = {.id = xstrdup(id),
                                  .name = xstrdup(name),
                                  .bundle = xstrdup(bdir),
                                  .created = xstrdup(now),
                                  .annotations = xstrdup(b.annotations),
                                  .dir = xasprintf("%s/%s", rt_g.root, id),
                                  .tty = b.terminal};
        int status = RT_EXIT_FAILED;
        _cleanup_free_ char *fifo = rt_fifo_path(&ct);
        if (mkdir_p(rt_g.root, 0700) < 0 && errno != EEXIST)
                rt_error("%s", errno_msg(errno, "create: cannot create --root %s", rt_g.root).s);
        else if (mkdir(ct.dir, 0700) < 0) {
                if (errno == EEXIST)
                        rt_error("container with id %s already exists", id);
                else
                        rt_error("%s", errno_msg(errno, "create: cannot create %s", ct.dir).s);
        }
        else if (mkfifo(fifo, 0600) < 0 || rt_container_save(&ct) < 0)
                rt_error("%s", errno_msg(errno, "create: cannot write the state of %s in %s", id, ct.dir).s);
        else if (make_cgroup(&ct, &b) < 0)
                rm_rf(ct.dir);
        else {
                struct rt_shim_args a = {.c = &ct, .b = &b, .console_socket = console, .pid_file = pid_file};
                if (rt_shim_spawn(ctx, &a) == 0) {
                        if (rt_container_save(&ct) < 0 || (pid_file && rt_write_pid_file(pid_file, ct.pid) < 0))
                                rt_error("%s", errno_msg(errno,
                                                         "create: cannot write the state or the pid file of %s",
                                                         id).s);
                        else
                                status = 0;
                }
                if (status) {
                        rt_cgroup_remove(ct.cgroups);
                        rm_rf(ct.dir);
                }
        }
        rt_container_free(&ct);
        rt_bundle_free(&b);
        msb_ctx_free(ctx);
        return status;
}

/* ---- start ---- */

static int load_for(const char *verb, int argc, char **argv, struct msb_ctx **ret_ctx, struct rt_container *ret)
{
        const char *id = NULL;
        if (one_id(verb, argc, argv, &id) || rt_container_load(id, ret) < 0)
                return -1;
        *ret_ctx = rt_ctx();
        if (!*ret_ctx) {
                rt_container_free(ret);
                return -1;
        }
        return 0;
}

static int no_options(const char *verb, int argc, char **argv)
{
        static const struct option lo[] = {{0}};
        optind = 1;
        if (getopt_long_only(argc, argv, "+", lo, NULL) != -1)
                return bad_option(verb, argv);
        return 0;
}

int rt_cmd_start(int argc, char **argv)
{
        struct msb_ctx *ctx;
        struct rt_container c;
        if (no_options("start", argc, argv) || load_for("start", argc, argv, &ctx, &c) < 0)
                return RT_EXIT_FAILED;
        int status = 0;
        enum rt_status s = rt_container_status(ctx, &c);
        if (s == RT_RUNNING)
                status = rt_error("cannot start an already running container %s", c.id);
        else if (s == RT_STOPPED)
                status = rt_error("cannot start a container that has stopped: %s", c.id);
        else if (s != RT_CREATED)
                status = rt_error("cannot start container %s in state %s", c.id, rt_status_name(s));
        else {
                _cleanup_free_ char *fifo = rt_fifo_path(&c);
                /* the shim holds the read end: no reader means it died */
                _cleanup_close_ int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0 || write(fd, "0", 1) != 1)
                        status = rt_error("cannot start container %s: its shim is gone (%s)", c.id,
                                          errno_text(fd < 0 ? errno : EIO));
                /* gone: the container is running from now on; a second
                 * start finds no fifo */
                unlink(fifo);
        }
        rt_container_free(&c);
        msb_ctx_free(ctx);
        return status;
}

/* ---- state ---- */

int rt_cmd_state(int argc, char **argv)
{
        struct msb_ctx *ctx;
        struct rt_container c;
        if (no_options("state", argc, argv) || load_for("state", argc, argv, &ctx, &c) < 0)
                return RT_EXIT_FAILED;
        char *s = rt_state_json(ctx, &c, true);
        printf("%s\n", s);
        free(s);
        rt_container_free(&c);
        msb_ctx_free(ctx);
        return 0;
}

/* ---- kill ---- */

/* Signal the shim itself (pidfd: never a recycled pid). */
static int signal_shim(const struct rt_container *c, int sig)
{
        int pfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
        if (pfd < 0)
                return -errno;
        int r = rt_shim_alive(c) ? (int)syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) : -1;
        r = r < 0 ? -errno : 0;
        close(pfd);
        return r;
}

int rt_cmd_kill(int argc, char **argv)
{
        static const struct option lo[] = {{"all", no_argument, NULL, 'a'}, {0}};
        bool all = false;
        int o;
        optind = 1;
        while ((o = getopt_long_only(argc, argv, "+a", lo, NULL)) != -1) {
                if (o != 'a')
                        return bad_option("kill", argv);
                all = true;
        }
        const char *sigs = optind + 1 < argc ? argv[optind + 1] : "TERM";
        int sig = rt_parse_signal(sigs);
        if (sig < 0)
                return rt_error("kill: '%s' is not a signal (a name such as TERM or SIGKILL, or a number)", sigs);
        struct msb_ctx *ctx;
        struct rt_container c;
        if (load_for("kill", argc, argv, &ctx, &c) < 0)
                return RT_EXIT_FAILED;
        int status = 0;
        struct msb_error err = {0};
        enum rt_status s = rt_container_status(ctx, &c);
        if (s == RT_STOPPED || s == RT_CREATING)
                status = rt_error("container %s is not running", c.id);
        else if (s == RT_CREATED) {
                /* its process has not started: the shim at the fifo
                 * stands for it (and stops the VM for a fatal signal) */
                if (sig == SIGKILL)
                        msb_sandbox_stop(ctx, c.name, 0, &err);
                if (signal_shim(&c, sig) < 0)
                        status = rt_error("container %s is not running", c.id);
        } else if (all && sig == SIGKILL) {
                /* every process in the VM: the VM stops (the main
                 * process reports 137) */
                if (msb_sandbox_stop(ctx, c.name, 0, &err) < 0)
                        status = rt_error("kill %s: %s", c.id, err.message);
        } else if (msb_sandbox_kill(ctx, c.name, sig, &err) < 0)
                status = rt_error(err.code == ESRCH ? "container %s is not running" : "kill %s: %s", c.id,
                                  err.message);
        rt_container_free(&c);
        msb_ctx_free(ctx);
        return status;
}

/* ---- delete ---- */

static void wait_shim_gone(const struct rt_container *c)
{
        for (int i = 0; i < DELETE_WAIT_MS / 20 && rt_shim_alive(c); i++) {
                struct timespec ts = {0, 20 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        if (rt_shim_alive(c))
                signal_shim(c, SIGKILL);
}

int rt_cmd_delete(int argc, char **argv)
{
        static const struct option lo[] = {{"force", no_argument, NULL, 'f'}, {0}};
        bool force = false;
        int o;
        optind = 1;
        while ((o = getopt_long_only(argc, argv, "+f", lo, NULL)) != -1) {
                if (o != 'f')
                        return bad_option("delete", argv);
                force = true;
        }
        const char *id = NULL;
        if (one_id("delete", argc, argv, &id) || rt_id_check(id) < 0)
                return RT_EXIT_FAILED;
        _cleanup_free_ char *sp = xasprintf("%s/%s/state.json", rt_g.root, id);
        if (force && access(sp, F_OK) < 0) {
                /* as runc: deleting what is not there, forced, is done */
                _cleanup_free_ char *d = xasprintf("%s/%s", rt_g.root, id);
                rm_rf(d);
                return 0;
        }
        struct rt_container c;
        if (rt_container_load(id, &c) < 0) {
                if (!force)
                        return RT_EXIT_FAILED;
                _cleanup_free_ char *d = xasprintf("%s/%s", rt_g.root, id);
                rm_rf(d);
                return 0;
        }
        struct msb_ctx *ctx = rt_ctx();
        if (!ctx) {
                rt_container_free(&c);
                return RT_EXIT_FAILED;
        }
        int status = 0;
        enum rt_status s = rt_container_status(ctx, &c);
        if (s != RT_STOPPED && s != RT_CREATING && !force)
                status = rt_error("cannot delete container %s that is not stopped (it is %s): stop it first, or use "
                                  "delete --force",
                                  c.id, rt_status_name(s));
        else {
                struct msb_error err = {0};
                if (msb_sandbox_remove(ctx, c.name, true, &err) < 0 && err.code != ENOENT)
                        status = rt_error("delete %s: %s", c.id, err.message);
                else {
                        if (c.pid)
                                wait_shim_gone(&c);
                        rt_cgroup_remove(c.cgroups);
                        rm_rf(c.dir);
                }
        }
        rt_container_free(&c);
        msb_ctx_free(ctx);
        return status;
}

/* ---- ps, list ---- */

int rt_cmd_ps(int argc, char **argv)
{
        static const struct option lo[] = {{"format", required_argument, NULL, 'f'}, {0}};
        const char *fmt = "table";
        int o;
        optind = 1;
        while ((o = getopt_long_only(argc, argv, "+f:", lo, NULL)) != -1) {
                if (o != 'f')
                        return bad_option("ps", argv);
                fmt = optarg;
        }
        if (strcmp(fmt, "json") && strcmp(fmt, "table"))
                return rt_error("ps: --format '%s': expected table or json", fmt);
        struct msb_ctx *ctx;
        struct rt_container c;
        if (load_for("ps", argc, argv, &ctx, &c) < 0)
                return RT_EXIT_FAILED;
        enum rt_status s = rt_container_status(ctx, &c);
        /* the host sees one process per container: the shim; the guest's
         * processes are behind the VM's boundary (docs/oci-runtime.md) */
        bool up = s == RT_CREATED || s == RT_RUNNING;
        if (!strcmp(fmt, "json"))
                up ? printf("[%d]\n", (int)c.pid) : printf("[]\n");
        else {
                printf("PID   CMD\n");
                if (up)
                        printf("%-5d msb-shim %s\n", (int)c.pid, c.id);
        }
        rt_container_free(&c);
        msb_ctx_free(ctx);
        return 0;
}

int rt_cmd_list(int argc, char **argv)
{
        static const struct option lo[] = {{"format", required_argument, NULL, 'f'}, {"quiet", no_argument, NULL, 'q'},
                                           {0}};
        const char *fmt = "table";
        bool quiet = false;
        int o;
        optind = 1;
        while ((o = getopt_long_only(argc, argv, "+f:q", lo, NULL)) != -1) {
                if (o == 'f')
                        fmt = optarg;
                else if (o == 'q')
                        quiet = true;
                else
                        return bad_option("list", argv);
        }
        if (strcmp(fmt, "json") && strcmp(fmt, "table"))
                return rt_error("list: --format '%s': expected table or json", fmt);
        bool json = !strcmp(fmt, "json");
        DIR *d = opendir(rt_g.root);
        if (!d) {
                if (errno != ENOENT)
                        return rt_error("%s", errno_msg(errno, "list: %s", rt_g.root).s);
                printf(json ? "null\n" : quiet ? "" : "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n");
                return 0;
        }
        struct msb_ctx *ctx = rt_ctx();
        if (!ctx) {
                closedir(d);
                return RT_EXIT_FAILED;
        }
        json_t *arr = json_array();
        if (!json && !quiet)
                printf("%-12s %-8s %-8s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
        struct dirent *e;
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *sp = xasprintf("%s/%s/state.json", rt_g.root, e->d_name);
                if (access(sp, F_OK) < 0)
                        continue;
                struct rt_container c;
                if (rt_container_load(e->d_name, &c) < 0)
                        continue;
                enum rt_status s = rt_container_status(ctx, &c);
                int pid = s == RT_STOPPED ? 0 : (int)c.pid;
                if (json) {
                        char *st = rt_state_json(ctx, &c, false);
                        json_array_append_new(arr, json_loads(st, 0, NULL));
                        free(st);
                } else if (quiet)
                        printf("%s\n", c.id);
                else
                        printf("%-12s %-8d %-8s %-40s %-32s %s\n", c.id, pid, rt_status_name(s), c.bundle, c.created,
                               geteuid() == 0 ? "root" : "");
                rt_container_free(&c);
        }
        closedir(d);
        if (json) {
                char *s = json_dumps(arr, JSON_COMPACT);
                printf("%s\n", s ? s : "[]");
                free(s);
        }
        json_decref(arr);
        msb_ctx_free(ctx);
        return 0;
}

/* ---- features ---- */

int rt_cmd_features(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        /* what a bundle may ask for and get (docs/oci-runtime.md) */
        fputs("{\n"
              "  \"ociVersionMin\": \"1.0.0\",\n"
              "  \"ociVersionMax\": \"1.0.2-dev\",\n"
              "  \"hooks\": [],\n"
              "  \"mountOptions\": [\"bind\", \"rbind\", \"ro\", \"rw\", \"rro\", \"rrw\", \"private\", \"rprivate\","
              " \"slave\", \"rslave\", \"unbindable\", \"runbindable\", \"nosuid\", \"nodev\", \"noexec\", \"suid\","
              " \"exec\", \"relatime\", \"defaults\", \"tmpcopyup\"],\n"
              "  \"linux\": {\n"
              "    \"namespaces\": [\"cgroup\", \"ipc\", \"mount\", \"network\", \"pid\", \"uts\"],\n"
              "    \"capabilities\": [],\n"
              "    \"cgroup\": {\"v1\": true, \"v2\": true, \"systemd\": true, \"systemdUser\": false},\n"
              "    \"seccomp\": {\"enabled\": false},\n"
              "    \"apparmor\": {\"enabled\": false},\n"
              "    \"selinux\": {\"enabled\": false}\n"
              "  },\n"
              "  \"annotations\": {\n"
              "    \"io.msb.runtime.version\": \"" MSB_VERSION "\",\n"
              "    \"io.msb.cpus\": \"vCPUs of the container's VM (at most what linux.resources.cpu gives, unless /etc/msb/runtime.conf allows more)\",\n"
              "    \"io.msb.memory\": \"guest memory, e.g. 1G (at most what linux.resources.memory.limit gives, unless /etc/msb/runtime.conf allows more)\"\n"
              "  }\n"
              "}\n",
              stdout);
        return 0;
}
