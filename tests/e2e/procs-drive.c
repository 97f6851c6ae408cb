/* SPDX-License-Identifier: Apache-2.0 */
/* test-procs.sh's hands on the library's processes by id: one call per run.
 *
 *   procs-drive NAME exec [-i] [-t] -- ARGV...   a kept process: "ID PID"
 *   procs-drive NAME list                        "ID PID kept main running|exit=N tty stdin CMD"
 *   procs-drive NAME attach ID [-i] [-n] [-r] [-w MS]  events until EXIT (or MS)
 *   procs-drive NAME write ID TEXT [eof]
 *   procs-drive NAME signal ID SIGNO
 *   procs-drive NAME resize ID ROWS COLS
 *   procs-drive NAME stall ID SECONDS            attach, read nothing for a while, then all
 *   procs-drive NAME pid PID                     the id of guest pid PID
 *
 * attach prints output bytes to stdout as they come and the other events
 * as lines "#started PID", "#dropped N", "#exit N", "#reset" on stderr;
 * -i: become the stdin writer (and hold it for -w), -n: no backlog, -r:
 * msb_proc_relay instead of msb_proc_read.  Errors: "error CODE: message"
 * on stderr, exit 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "msb.h"

static struct msb_ctx *ctx;
static struct msb_error err;

static int fail(int r)
{
        fprintf(stderr, "error %d: %s\n", -r, err.message);
        return 1;
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int do_exec(const char *name, int argc, char **argv)
{
        struct msb_exec_opts eo = {.keep = true};
        int c;
        optind = 1;
        while ((c = getopt(argc, argv, "+it")) != -1)
                if (c == 'i')
                        eo.stdin = true;
                else if (c == 't')
                        eo.tty = true;
        eo.argv = argv + optind;
        struct msb_proc *p;
        int st;
        int r = msb_sandbox_exec(ctx, name, &eo, &p, &st, &err);
        if (r)
                return fail(r < 0 ? r : -EIO);
        printf("%u %d\n", msb_proc_id(p), msb_proc_pid(p));
        msb_proc_free(p);
        return 0;
}

static int do_list(const char *name)
{
        struct msb_proc_info *v;
        size_t n;
        int r = msb_sandbox_procs(ctx, name, &v, &n, &err);
        if (r < 0)
                return fail(r);
        for (size_t i = 0; i < n; i++) {
                printf("%u %d %s %s ", v[i].id, v[i].pid, v[i].kept ? "kept" : "-", v[i].main ? "main" : "-");
                if (v[i].running)
                        printf("running");
                else
                        printf("exit=%d", v[i].exit_code);
                printf(" %s %s %s\n", v[i].tty ? "tty" : "-", v[i].stdin ? "stdin" : "-", v[i].command);
        }
        msb_proc_info_free(v, n);
        return 0;
}

/* Events until EXIT or wait_ms (-1: no limit); 0, or 1 on an error. */
static int read_events(struct msb_proc *p, int wait_ms)
{
        int64_t end = wait_ms < 0 ? -1 : now_ms() + wait_ms;
        for (;;) {
                int left = end < 0 ? -1 : (int)(end - now_ms());
                if (end >= 0 && left <= 0)
                        return 0;
                struct msb_proc_event ev;
                int r = msb_proc_read(p, left, &ev, &err);
                if (r == -ECONNRESET) {
                        fprintf(stderr, "#reset\n");
                        return 0;
                }
                if (r < 0)
                        return fail(r);
                if (r == 0)
                        return 0;
                switch (ev.type) {
                case MSB_PROC_EV_STARTED:
                        fprintf(stderr, "#started %d\n", ev.pid);
                        break;
                case MSB_PROC_EV_DROPPED:
                        fprintf(stderr, "#dropped %llu\n", (unsigned long long)ev.dropped);
                        break;
                case MSB_PROC_EV_STDOUT:
                case MSB_PROC_EV_STDERR:
                        fwrite(ev.data, 1, ev.len, ev.type == MSB_PROC_EV_STDOUT ? stdout : stderr);
                        fflush(NULL);
                        break;
                case MSB_PROC_EV_EXIT:
                        fprintf(stderr, "#exit %d\n", ev.status);
                        return 0;
                }
        }
}

static int do_attach(const char *name, int argc, char **argv)
{
        unsigned flags = 0;
        int wait_ms = -1, c;
        bool relay = false;
        optind = 1;
        while ((c = getopt(argc, argv, "+inrw:")) != -1)
                if (c == 'i')
                        flags |= MSB_ATTACH_STDIN;
                else if (c == 'n')
                        flags |= MSB_ATTACH_NO_BACKLOG;
                else if (c == 'r')
                        relay = true;
                else if (c == 'w')
                        wait_ms = atoi(optarg);
        if (optind >= argc)
                return 2;
        struct msb_proc *p;
        int r = msb_sandbox_proc_attach(ctx, name, (uint32_t)atoi(argv[optind]), flags, &p, &err);
        if (r < 0)
                return fail(r);
        if (relay) {
                struct msb_relay_opts ro = {.in_fd = -1, .out_fd = 1, .err_fd = 2, .tty_fd = -1};
                int st;
                r = msb_proc_relay(p, &ro, &st, &err);
                msb_proc_free(p);
                if (r < 0)
                        return fail(r);
                fprintf(stderr, "#exit %d\n", st);
                return 0;
        }
        r = read_events(p, wait_ms);
        msb_proc_free(p);
        return r;
}

/* Attach, read nothing for secs, then everything there is: how much came
 * and whether the supervisor let us go. */
static int do_stall(const char *name, uint32_t id, int secs)
{
        struct msb_proc *p;
        int r = msb_sandbox_proc_attach(ctx, name, id, MSB_ATTACH_NO_BACKLOG, &p, &err);
        if (r < 0)
                return fail(r);
        sleep((unsigned)secs);
        unsigned long long got = 0;
        for (;;) {
                struct msb_proc_event ev;
                r = msb_proc_read(p, 2000, &ev, &err);
                if (r == 1 && (ev.type == MSB_PROC_EV_STDOUT || ev.type == MSB_PROC_EV_STDERR))
                        got += ev.len;
                else if (r != 1)
                        break;
        }
        printf("%s %llu\n", r == -ECONNRESET ? "reset" : r == 0 ? "still-connected" : "other", got);
        msb_proc_free(p);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc < 3)
                return 2;
        const char *name = argv[1], *verb = argv[2];
        int r = msb_ctx_new(&ctx, &err);
        if (r < 0)
                return fail(r);
        uint32_t id = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 0;
        if (!strcmp(verb, "exec"))
                r = do_exec(name, argc - 2, argv + 2);
        else if (!strcmp(verb, "list"))
                r = do_list(name);
        else if (!strcmp(verb, "attach"))
                r = do_attach(name, argc - 2, argv + 2);
        else if (!strcmp(verb, "write") && argc >= 5)
                r = (r = msb_sandbox_proc_write(ctx, name, id, argv[4], strlen(argv[4]),
                                                argc > 5 && !strcmp(argv[5], "eof"), &err)) < 0 ? fail(r) : 0;
        else if (!strcmp(verb, "signal") && argc >= 5)
                r = (r = msb_sandbox_proc_signal(ctx, name, id, atoi(argv[4]), &err)) < 0 ? fail(r) : 0;
        else if (!strcmp(verb, "resize") && argc >= 6)
                r = (r = msb_sandbox_proc_resize(ctx, name, id, (unsigned)atoi(argv[4]), (unsigned)atoi(argv[5]),
                                                 &err)) < 0
                            ? fail(r)
                            : 0;
        else if (!strcmp(verb, "stall") && argc >= 5)
                r = do_stall(name, id, atoi(argv[4]));
        else if (!strcmp(verb, "pid") && argc >= 4) {
                uint32_t found;
                r = msb_sandbox_proc_find_pid(ctx, name, atoi(argv[3]), &found, &err);
                if (r < 0)
                        r = fail(r);
                else
                        printf("%u\n", found);
        } else
                r = 2;
        msb_ctx_free(ctx);
        return r;
}
