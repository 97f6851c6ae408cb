/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs inside a guest for bench/fs: times file-system work on a shared
 * directory and prints "NAME MEDIAN_MS" lines.
 *
 *   fsbench SCRATCH_DIR TREE_DIR REPS
 *
 * SCRATCH_DIR is an empty writable volume; TREE_DIR holds a ~10k-file tree
 * for find and du.  Page caches are dropped before every read-side step so
 * each one reaches the server.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MB (1 << 20)
#define BIG_MB 256

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void drop_caches(void)
{
        sync();
        int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
        if (fd >= 0) {
                if (write(fd, "3", 1) < 0)
                        perror("drop_caches");
                close(fd);
        }
}

static void die(const char *what)
{
        perror(what);
        exit(1);
}

static double seq_write(const char *dir)
{
        static char buf[MB];
        memset(buf, 0x5a, sizeof(buf));
        char p[4096];
        snprintf(p, sizeof(p), "%s/big", dir);
        double t = now_ms();
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
                die(p);
        for (int i = 0; i < BIG_MB; i++)
                if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
                        die("write");
        if (fsync(fd) < 0)
                die("fsync");
        close(fd);
        return now_ms() - t;
}

static double seq_read(const char *dir)
{
        static char buf[MB];
        char p[4096];
        snprintf(p, sizeof(p), "%s/big", dir);
        drop_caches();
        double t = now_ms();
        int fd = open(p, O_RDONLY);
        if (fd < 0)
                die(p);
        ssize_t n;
        long total = 0;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                total += n;
        close(fd);
        if (total != (long)BIG_MB * MB)
                die("short read");
        return now_ms() - t;
}

static double small_files(const char *dir)
{
        char p[4096];
        snprintf(p, sizeof(p), "%s/small", dir);
        mkdir(p, 0755);
        double t = now_ms();
        for (int i = 0; i < 5000; i++) {
                snprintf(p, sizeof(p), "%s/small/f%d", dir, i);
                int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd < 0 || write(fd, "x", 1) != 1)
                        die(p);
                close(fd);
        }
        struct stat st;
        for (int i = 0; i < 5000; i++) {
                snprintf(p, sizeof(p), "%s/small/f%d", dir, i);
                if (stat(p, &st) < 0)
                        die(p);
        }
        for (int i = 0; i < 5000; i++) {
                snprintf(p, sizeof(p), "%s/small/f%d", dir, i);
                if (unlink(p) < 0)
                        die(p);
        }
        return now_ms() - t;
}

static double run_cmd(const char *cmd)
{
        drop_caches();
        double t = now_ms();
        if (system(cmd) != 0)
                die(cmd);
        return now_ms() - t;
}

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
        qsort(v, (size_t)n, sizeof(*v), cmp);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
        if (argc != 4) {
                fprintf(stderr, "usage: fsbench SCRATCH_DIR TREE_DIR REPS\n");
                return 2;
        }
        const char *dir = argv[1], *tree = argv[2];
        int reps = atoi(argv[3]);
        if (reps < 1 || reps > 50)
                reps = 3;
        double w[50], r[50], s[50], f[50], d[50];
        char findcmd[4200], ducmd[4200];
        snprintf(findcmd, sizeof(findcmd), "find '%s' >/dev/null", tree);
        snprintf(ducmd, sizeof(ducmd), "du -s '%s' >/dev/null", tree);
        /* a first write of this size into a fresh guest varies 1x-3x from
         * boot to boot, with either server (guest memory touched for the
         * first time, under TCG); one untimed write and unlink first, so
         * the timed one measures the file system, not the boot */
        seq_write(dir);
        char big[4096];
        snprintf(big, sizeof(big), "%s/big", dir);
        if (unlink(big) < 0)
                die(big);
        drop_caches();
        for (int i = 0; i < reps; i++) {
                w[i] = seq_write(dir);
                r[i] = seq_read(dir);
                s[i] = small_files(dir);
                f[i] = run_cmd(findcmd);
                d[i] = run_cmd(ducmd);
        }
        printf("seq-write-256M %.1f\n", median(w, reps));
        printf("seq-read-256M %.1f\n", median(r, reps));
        printf("create-stat-unlink-5000 %.1f\n", median(s, reps));
        printf("find-10k %.1f\n", median(f, reps));
        printf("du-10k %.1f\n", median(d, reps));
        return 0;
}
