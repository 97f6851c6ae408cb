/* SPDX-License-Identifier: Apache-2.0 */
/* Named sandboxes on disk: names, create/list/inspect/remove, state
 * reconciled against the supervisor's lock, concurrent creates.  No VM. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "lib/sbstore.h"

static void test_names(void)
{
        const char *good[] = {"ab", "a1", "web.1", "my_box-2", "A9", NULL};
        const char *bad[] = {"", "a", "-ab", ".ab", "_ab", "a/b", "a b", "a:b", "ab\n", "..", "é1", NULL};
        for (const char **g = good; *g; g++)
                CHECK_INT(msb_sandbox_name_check(*g, NULL), 0);
        for (const char **b = bad; *b; b++)
                CHECK_INT(msb_sandbox_name_check(*b, NULL), -EINVAL);
        char longname[SB_NAME_MAX + 2];
        memset(longname, 'a', sizeof(longname) - 1);
        longname[SB_NAME_MAX + 1] = 0;
        CHECK_INT(msb_sandbox_name_check(longname, NULL), -EINVAL);
        longname[SB_NAME_MAX] = 0;
        CHECK_INT(msb_sandbox_name_check(longname, NULL), 0);
        struct msb_error err = {0};
        msb_sandbox_name_check("a/b", &err);
        CHECK(strstr(err.message, "'a/b'") != NULL);
}

static struct msb_run_opts *opts(void)
{
        struct msb_run_opts *o;
        msb_run_opts_new(&o);
        msb_run_opts_set_rootfs(o, "/");
        char *cmd[] = {"sleep", "1", NULL};
        msb_run_opts_set_command(o, cmd);
        msb_run_opts_add_env(o, "A=b c");
        msb_run_opts_set_tty(o, true, 30, 100);
        msb_run_opts_set_disk_size(o, 64ull << 20);
        msb_run_opts_set_idle_timeout(o, 9);
        struct msb_error err = {0};
        CHECK_INT(msb_run_opts_set_net(o, "private", &err), 0);
        CHECK_INT(msb_run_opts_add_net_rule(o, "deny@*.example.com", &err), 0);
        CHECK_INT(msb_run_opts_add_port(o, "127.0.0.1:38417:80", &err), 0);
        return o;
}

/* --net, --net-rule, -p: each bad value is refused with the option, the
 * value and the fix named; nothing is kept from a refused one. */
static void test_net_opts(void)
{
        struct msb_run_opts *o;
        struct msb_error err = {0};
        msb_run_opts_new(&o);
        CHECK_INT(msb_run_opts_set_net(o, "publick", &err), -EINVAL);
        CHECK(strstr(err.message, "--net 'publick'") && strstr(err.message, "public, private"));
        CHECK_INT(msb_run_opts_add_net_rule(o, "allow@pubic", &err), -EINVAL);
        CHECK(strstr(err.message, "--net-rule 'allow@pubic'") != NULL);
        CHECK_INT(msb_run_opts_add_net_rule(o, "allow@10.0.0.0/8:tcp:90-80", &err), -EINVAL);
        CHECK_INT(msb_run_opts_add_port(o, "80:80", &err), -EACCES);
        CHECK(strstr(err.message, "privileged") != NULL);
        CHECK_INT(msb_run_opts_add_port(o, "x:80", &err), -EINVAL);
        CHECK_INT(msb_run_opts_add_port(o, "38418:80/sctp", &err), -EINVAL);
        CHECK_INT(msb_run_opts_add_port(o, "38418:80", &err), 0);
        CHECK_INT(msb_run_opts_add_port(o, "0.0.0.0:38418:81", &err), -EINVAL);
        CHECK(strstr(err.message, "already published") != NULL);
        CHECK_INT(msb_run_opts_add_port(o, "38418:80/udp", &err), 0);
        /* the same port on another address does not clash */
        CHECK_INT(msb_run_opts_add_port(o, "[::1]:38418:80", &err), 0);
        CHECK_INT(msb_run_opts_add_port(o, "192.0.2.254:38419:80", &err) < 0, 1);
        /* a port someone listens on */
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof(sa);
        CHECK_INT(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
        CHECK_INT(listen(l, 1), 0);
        CHECK_INT(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
        char *spec = xasprintf("%u:80", ntohs(sa.sin_port));
        CHECK_INT(msb_run_opts_add_port(o, spec, &err), -EADDRINUSE);
        CHECK(strstr(err.message, "already in use") != NULL);
        free(spec);
        close(l);
        CHECK_INT(msb_run_opts_check(o, &err), 0);
        CHECK_INT(msb_run_opts_set_net(o, "none", &err), 0);
        CHECK_INT(msb_run_opts_check(o, &err), -EINVAL);
        CHECK(strstr(err.message, "--net none") != NULL);
        msb_run_opts_free(o);
}

/* msb-runtime's tap of a container's namespace: the spec is checked */
static void test_net_tap(void)
{
        struct msb_run_opts *o;
        struct msb_error err = {0};
        msb_run_opts_new(&o);
        static const char *const bad[] = {
                "",
                "ifname=msb0,mac=02:00:00:00:00:01",                        /* no ip */
                "ifname=msb0,ip=10.88.0.5/16",                              /* no mac */
                "ifname=msb0,mac=01:00:00:00:00:01,ip=10.88.0.5/16",        /* multicast */
                "ifname=msb0,mac=02:00:00:00:00:01,ip=10.88.0.5/33",
                "ifname=msb0,mac=02:00:00:00:00:01,ip=10.88.0.5",
                "ifname=msb0,mac=02:00:00:00:00:01,ip=10.88.0.5/16,gw=10.88.0",
                "ifname=msb0,mac=02:00:00:00:00:01,ip=10.88.0.5/16,mtu=67",
                "ifname=msb0,mac=02:00:00:00:00:01,ip=10.88.0.5/16,ip6=fd00::5/64,mtu=1000",
                "ifname=a/b,mac=02:00:00:00:00:01,ip=10.88.0.5/16",
                "ifname=abcdefghijklmnopq,mac=02:00:00:00:00:01,ip=10.88.0.5/16",
                "ifname=msb0,mac=02:00:00:00:00:01,ip=10.88.0.5/16,colour=red",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                CHECK_INT(msb_run_opts_set_net_tap(o, bad[i], &err), -EINVAL);
                CHECK(strstr(err.message, "network tap") != NULL);
        }
        CHECK_INT(msb_run_opts_set_net_tap(o, "ifname=msb0,mac=16:c5:f6:19:27:29,ip=10.88.0.5/16,gw=10.88.0.1,"
                                              "ip6=fd00::5/64,gw6=fe80::1,mtu=1500",
                                           &err),
                  0);
        /* Calico's /32 with an off-link gateway */
        CHECK_INT(msb_run_opts_set_net_tap(o, "ifname=msb0,mac=16:c5:f6:19:27:29,ip=192.168.7.9/32,gw=169.254.1.1", &err),
                  0);
        CHECK_INT(msb_run_opts_check(o, &err), 0);
        CHECK_INT(msb_run_opts_add_port(o, "38420:80", &err), 0);
        CHECK_INT(msb_run_opts_check(o, &err), -EINVAL);
        CHECK(strstr(err.message, "owner's ports") != NULL);
        msb_run_opts_free(o);
}

static void test_lifecycle(struct msb_ctx *ctx)
{
        struct msb_run_opts *o = opts();
        struct msb_error err = {0};
        CHECK_INT(msb_sandbox_create(ctx, "box1", o, &err), 0);
        CHECK_INT(msb_sandbox_create(ctx, "box1", o, &err), -EEXIST);
        CHECK(strstr(err.message, "already in use") != NULL);
        /* the options come back as they went in */
        struct msb_run_opts *back = NULL;
        CHECK_INT(sb_config_load(ctx, "box1", &back, &err), 0);
        if (back) {
                CHECK_STR(back->command[0], "sleep");
                CHECK_STR(back->env[0], "A=b c");
                CHECK(back->tty && back->rows == 30 && back->cols == 100);
                CHECK_INT(back->disk_size, 64ull << 20);
                CHECK_INT(back->idle_timeout, 9);
                CHECK_STR(back->net_mode, "private");
                CHECK(back->net_rules && !strcmp(back->net_rules[0], "deny@*.example.com") && !back->net_rules[1]);
                CHECK(back->net_ports && !strcmp(back->net_ports[0], "127.0.0.1:38417:80"));
                msb_run_opts_free(back);
        }
        /* a sparse disk of the size asked for, owner-only */
        char *dir = sb_dir(ctx, "box1");
        char *disk = xasprintf("%s/disk.img", dir);
        struct stat st;
        CHECK_INT(stat(disk, &st), 0);
        CHECK_INT(st.st_size, 64ull << 20);
        CHECK_INT(st.st_mode & 0777, 0600);
        CHECK(st.st_blocks * 512 < (off_t)(16u << 20));

        struct msb_sandbox_info *in = NULL;
        size_t n = 0;
        CHECK_INT(msb_sandbox_list(ctx, &in, &n, &err), 0);
        CHECK_INT(n, 1);
        if (n == 1) {
                CHECK_STR(in[0].status, "created");
                CHECK_STR(in[0].command, "sleep 1");
        }
        msb_sandbox_info_free(in, n);

        /* "running" with its lock held is running; once the lock is free,
         * crashed */
        struct sb_state s = {0};
        CHECK_INT(sb_state_read(dir, &s), 0);
        snprintf(s.status, sizeof(s.status), "running");
        s.pid = 4242;
        CHECK_INT(sb_state_write(dir, &s), 0);
        sb_state_free(&s);
        char *lockp = xasprintf("%s/run.lock", dir);
        int lk = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        /* another open file description, as a supervisor's would be */
        pid_t holder = fork();
        if (holder == 0) {
                int fd = open(lockp, O_RDWR | O_CLOEXEC);
                flock(fd, LOCK_EX);
                pause();
                _exit(0);
        }
        usleep(200000);
        CHECK(sb_alive(dir));
        CHECK(msb_sandbox_running(ctx, "box1"));
        CHECK_INT(msb_sandbox_remove(ctx, "box1", false, &err), -EBUSY);
        CHECK(strstr(err.message, "rm -f") != NULL);
        kill(holder, SIGKILL);
        waitpid(holder, NULL, 0);
        close(lk);
        CHECK(!sb_alive(dir));
        CHECK_INT(sb_state_current(ctx, "box1", &s, NULL), 0);
        CHECK_STR(s.status, "crashed");
        sb_state_free(&s);
        char *js = NULL;
        CHECK_INT(msb_sandbox_inspect(ctx, "box1", &js, &err), 0);
        CHECK(js && strstr(js, "\"crashed\""));
        free(js);

        /* op.lock: a second changer is told, not blocked */
        int op = sb_oplock(ctx, "box1", &err);
        CHECK(op >= 0);
        pid_t other = fork();
        if (other == 0) {
                struct msb_error e2 = {0};
                _exit(msb_sandbox_start(ctx, "box1", 0, &e2) == -EBUSY && strstr(e2.message, "busy") ? 0 : 1);
        }
        int ws;
        waitpid(other, &ws, 0);
        CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
        close(op);

        CHECK_INT(msb_sandbox_remove(ctx, "box1", false, &err), 0);
        CHECK(access(dir, F_OK) < 0);
        CHECK_INT(msb_sandbox_remove(ctx, "box1", false, &err), -ENOENT);
        CHECK(strstr(err.message, "box1") != NULL);
        free(lockp);
        free(disk);
        free(dir);
        msb_run_opts_free(o);
}

/* Eight processes create one name at once: exactly one wins, and nothing
 * half-made is left. */
static void test_create_race(struct msb_ctx *ctx)
{
        struct msb_run_opts *o = opts();
        pid_t kids[8];
        for (int i = 0; i < 8; i++) {
                kids[i] = fork();
                if (kids[i] == 0)
                        _exit(msb_sandbox_create(ctx, "racer", o, NULL) == 0 ? 0 : 1);
        }
        int wins = 0;
        for (int i = 0; i < 8; i++) {
                int ws;
                waitpid(kids[i], &ws, 0);
                wins += WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
        }
        CHECK_INT(wins, 1);
        char *top = xasprintf("%s/sandboxes", msb_ctx_data_dir(ctx));
        char *cmd = xasprintf("test $(ls -A %s | wc -l) = 1", top);
        CHECK_INT(system(cmd), 0);
        CHECK_INT(msb_sandbox_remove(ctx, "racer", false, NULL), 0);
        free(cmd);
        free(top);
        msb_run_opts_free(o);
}

/* An auto-remove sandbox that was never started goes after ten minutes,
 * at the next create; a named one that was never started stays. */
static void test_stranded(struct msb_ctx *ctx)
{
        struct msb_run_opts *o = opts();
        msb_run_opts_set_auto_remove(o, true);
        CHECK_INT(msb_sandbox_create(ctx, "stranded", o, NULL), 0);
        msb_run_opts_set_auto_remove(o, false);
        CHECK_INT(msb_sandbox_create(ctx, "kept", o, NULL), 0);
        char *dirs[] = {sb_dir(ctx, "stranded"), sb_dir(ctx, "kept")};
        for (int i = 0; i < 2; i++) {
                struct sb_state st;
                CHECK_INT(sb_state_read(dirs[i], &st), 0);
                st.created -= 3600;
                CHECK_INT(sb_state_write(dirs[i], &st), 0);
                sb_state_free(&st);
        }
        CHECK_INT(msb_sandbox_create(ctx, "another", o, NULL), 0);
        CHECK(access(dirs[0], F_OK) < 0);
        CHECK_INT(access(dirs[1], F_OK), 0);
        msb_sandbox_remove(ctx, "kept", false, NULL);
        msb_sandbox_remove(ctx, "another", false, NULL);
        free(dirs[0]);
        free(dirs[1]);
        msb_run_opts_free(o);
}

/* An OCI bundle's kernel mounts: where they may go, which options */
static void test_kernel_mounts(void)
{
        struct msb_run_opts *o;
        struct msb_error err = {0};
        msb_run_opts_new(&o);
        CHECK_INT(msb_run_opts_add_kernel_mount(o, "mqueue", "/dev/mqueue", "nosuid,nodev,noexec", &err), 0);
        CHECK_INT(msb_run_opts_add_kernel_mount(o, "tmpfs", "/dev/shm", "size=65536k,mode=1777", &err), 0);
        CHECK_INT(msb_run_opts_add_kernel_mount(o, "cgroup2", "/sys/fs/cgroup", "ro", &err), 0);
        CHECK_INT(msb_run_opts_add_tmpfs(o, "/run", "mode=755", &err), 0);
        CHECK_INT(msb_run_opts_add_kernel_mount(o, "tmpfs", "/dev", "", &err), -EINVAL);
        CHECK_INT(msb_run_opts_add_kernel_mount(o, "tmpfs", "/dev/pts", "", &err), -EINVAL);
        CHECK_INT(msb_run_opts_add_kernel_mount(o, "tmpfs", "/proc/x", "", &err), -EINVAL);
        CHECK_INT(msb_run_opts_add_kernel_mount(o, "tmpfs", "/dev/../etc", "", &err), -EINVAL);
        CHECK_INT(msb_run_opts_add_kernel_mount(o, "ext4", "/mnt", "", &err), -EINVAL);
        CHECK_INT(msb_run_opts_add_kernel_mount(o, "mqueue", "/dev/mqueue2", "size=1m", &err), -EINVAL);
        CHECK_INT(msb_run_opts_add_tmpfs(o, "/x", "uid=0,context=foo", &err), -EINVAL);
        CHECK(strstr(err.message, "'context=foo'") != NULL);
        CHECK_INT(o->ntmpfs, 4);
        msb_run_opts_free(o);
}

int main(void)
{
        test_names();
        test_net_opts();
        test_net_tap();
        test_kernel_mounts();
        char home[] = "/tmp/msb-test-sb.XXXXXX";
        if (!mkdtemp(home))
                return 1;
        setenv("MSB_HOME", home, 1);
        setenv("MSB_CONFIG", "/nonexistent/msb-test-config", 1);
        struct msb_ctx *ctx = NULL;
        CHECK_INT(msb_ctx_new(&ctx, NULL), 0);
        if (ctx) {
                test_lifecycle(ctx);
                test_create_race(ctx);
                test_stranded(ctx);
                msb_ctx_free(ctx);
        }
        char *cmd = xasprintf("rm -rf %s", home);
        CHECK_INT(system(cmd), 0);
        free(cmd);
        CHECK_DONE();
}
