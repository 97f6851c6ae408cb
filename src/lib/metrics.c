/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a running sandbox costs the host, read from /proc and its disk:
 * the CPU time and resident memory of its VM (QEMU) and helpers (the
 * virtio-fs servers, msb-netd), and the blocks its writable layer takes.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbstore.h"

/* utime + stime (clock ticks) and resident pages of pid; false if it is gone. */
static bool proc_usage(int pid, uint64_t *ticks, uint64_t *pages)
{
        char path[64], buf[2048];
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f || !fgets(buf, sizeof(buf), f))
                return false;
        /* the command name may hold spaces and ')': fields count from the last ')' */
        char *p = strrchr(buf, ')');
        unsigned long long ut, st;
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                return false;
        snprintf(path, sizeof(path), "/proc/%d/statm", pid);
        _cleanup_fclose_ FILE *m = fopen(path, "re");
        unsigned long long size, res;
        if (!m || fscanf(m, "%llu %llu", &size, &res) != 2)
                return false;
        *ticks += ut + st;
        *pages += res;
        return true;
}

int msb_sandbox_metrics(struct msb_ctx *ctx, const char *name, struct msb_sandbox_metrics *ret, struct msb_error *err)
{
        struct sb_state st;
        int r = sb_state_current(ctx, name, &st, err);
        if (r < 0)
                return r;
        *ret = (struct msb_sandbox_metrics){.net_rx_bytes = -1, .net_tx_bytes = -1};
        ret->running = !strcmp(st.status, "running");
        uint64_t ticks = 0, pages = 0;
        if (ret->running) {
                if (st.qemu_pid > 0)
                        proc_usage(st.qemu_pid, &ticks, &pages);
                if (st.net_pid > 0)
                        proc_usage(st.net_pid, &ticks, &pages);
                for (char *s = st.server_pids; s && *s;) {
                        char *end;
                        long pid = strtol(s, &end, 10);
                        if (end == s)
                                break;
                        if (pid > 0 && pid < (1L << 22))
                                proc_usage((int)pid, &ticks, &pages);
                        s = end;
                }
        }
        long hz = sysconf(_SC_CLK_TCK), pg = sysconf(_SC_PAGESIZE);
        ret->cpu_seconds = hz > 0 ? (double)ticks / (double)hz : 0;
        ret->memory_bytes = pages * (uint64_t)(pg > 0 ? pg : 4096);
        _cleanup_free_ char *disk = xasprintf("%s/%s/disk.img", ctx->sandboxes_dir, name);
        struct stat ds;
        if (stat(disk, &ds) == 0) {
                ret->disk_bytes = (uint64_t)ds.st_blocks * 512u;
                ret->disk_size_bytes = (uint64_t)ds.st_size;
        }
        sb_state_free(&st);
        return 0;
}
