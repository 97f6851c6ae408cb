/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for what a guest sends msb-fsd.  The first input byte
 * picks the target:
 *   even: a run of FUSE requests answered by fs_handle against a scratch
 *         share (read-write, files capped at 4 MiB by RLIMIT_FSIZE so no
 *         input can fill the disk).  Each is [opcode][nodeid][flags]
 *         [body length][body]: the header is built here so most requests
 *         get past it, and flags bit 0 makes its length lie.  Bit 2 picks
 *         the immutable image root instead, bit 3 a share with tiny limits
 *         (fs_limits), which one input can fill, so handle and inode
 *         exhaustion and the fd cache closing and reopening inodes are
 *         reached; it starts from nothing (DESTROY) after every input;
 *   odd:  the bytes become a virtqueue's descriptor table and available
 *         ring in fake guest memory, then vq_process walks them.
 */
#define _GNU_SOURCE
#include <linux/fuse.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "fsd/fs.h"
#include "fsd/vhost.h"

#define MEM_SIZE (1u << 20)
#define QNUM 64

static struct fs *fs, *fs_image, *fs_tight; /* a writable share; an immutable image root; tiny limits */
static uint8_t *inbuf, *outbuf, *mem;
static struct vu_mem vm;
static char dir[] = "/tmp/msb-fuzz-fsd.XXXXXX";

static void cleanup(void)
{
        fs_free(fs);
        fs_free(fs_image);
        fs_free(fs_tight);
        rm_rf(dir);
}

static void setup(void)
{
        if (chdir("/proc/self/fd") < 0 || !mkdtemp(dir))
                abort();
        atexit(cleanup);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4 << 20, 4 << 20};
        setrlimit(RLIMIT_FSIZE, &rl);
        char p[512];
        snprintf(p, sizeof(p), "%s/sub", dir);
        mkdir(p, 0755);
        snprintf(p, sizeof(p), "%s/file", dir);
        FILE *f = fopen(p, "w");
        fputs("content", f);
        fclose(f);
        struct fs_config c = {.path = dir, .owner = FS_OWNER_VIRTUAL, .timeout = 1};
        struct msb_error err;
        if (fs_new(&c, &fs, &err) < 0)
                abort();
        struct fs_config ci = {.path = dir, .read_only = true, .immutable = true, .owner = FS_OWNER_VIRTUAL,
                               .timeout = 1};
        if (fs_new(&ci, &fs_image, &err) < 0)
                abort();
        if (fs_new(&c, &fs_tight, &err) < 0)
                abort();
        struct fs_limits tight = {.handles = 4, .inodes = FS_MIN_LIMIT + 4, .inode_fds = FS_MIN_LIMIT};
        fs_set_limits(fs_tight, &tight);
        inbuf = xmalloc(FS_BUF_SIZE);
        outbuf = xmalloc(FS_BUF_SIZE);
        struct {
                struct fuse_in_header h;
                struct fuse_init_in i;
        } init = {.h = {.len = sizeof(init), .opcode = FUSE_INIT, .unique = 1}, .i = {.major = 7, .minor = 38}};
        fs_handle(fs, (uint8_t *)&init, sizeof(init), NULL, outbuf, FS_BUF_SIZE);
        fs_handle(fs_image, (uint8_t *)&init, sizeof(init), NULL, outbuf, FS_BUF_SIZE);
        fs_handle(fs_tight, (uint8_t *)&init, sizeof(init), NULL, outbuf, FS_BUF_SIZE);
        mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        vm.n = 1;
        vm.r[0] = (struct vu_region){.gpa = 0x1000, .size = MEM_SIZE, .uaddr = 0x40000000, .host = mem};
}

static size_t answer_nothing(void *ctx, const uint8_t *in, size_t inlen, const struct vu_elem *e, uint8_t *out,
                             size_t outcap)
{
        return inlen < outcap ? inlen : outcap;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!fs)
                setup();
        if (size < 1)
                return 0;
        if (!(data[0] & 1)) {
                struct fs *t = data[0] & 8 ? fs_tight : data[0] & 4 ? fs_image : fs;
                size_t off = 1;
                uint64_t unique = 2;
                while (off + 4 <= size) {
                        uint8_t op = data[off], node = data[off + 1], flags = data[off + 2];
                        size_t n = data[off + 3];
                        off += 4;
                        if (n > size - off)
                                n = size - off;
                        struct fuse_in_header h = {.len = (uint32_t)(sizeof(h) + n), .opcode = op, .unique = unique++,
                                                   .nodeid = node, .uid = flags & 2 ? 1000 : 0};
                        if (flags & 1)
                                h.len ^= (uint32_t)data[off - 1] << 4;
                        memcpy(inbuf, &h, sizeof(h));
                        memcpy(inbuf + sizeof(h), data + off, n);
                        /* reply room varies with the input too */
                        size_t cap = flags & 4 ? 16 + (size_t)(flags >> 3) * 8 : FS_BUF_SIZE;
                        size_t r = fs_handle(t, inbuf, sizeof(h) + n, NULL, outbuf, cap);
                        if (r > cap)
                                abort();
                        off += n;
                }
                /* never let a re-INIT switch the share off */
                struct {
                        struct fuse_in_header h;
                        struct fuse_init_in i;
                } init = {.h = {.len = sizeof(init), .opcode = FUSE_INIT, .unique = 1}, .i = {.major = 7, .minor = 38}};
                if (t == fs_tight) {
                        struct fuse_in_header d = {.len = sizeof(d), .opcode = FUSE_DESTROY, .unique = 1};
                        fs_handle(t, (uint8_t *)&init, sizeof(init), NULL, outbuf, FS_BUF_SIZE);
                        fs_handle(t, (uint8_t *)&d, sizeof(d), NULL, outbuf, FS_BUF_SIZE);
                }
                fs_handle(t, (uint8_t *)&init, sizeof(init), NULL, outbuf, FS_BUF_SIZE);
                /* what the limits promise, whatever the input did */
                struct fs_limits u, l;
                fs_usage(t, &u);
                fs_get_limits(t, &l);
                if (u.handles > l.handles || u.inodes > l.inodes)
                        abort();
                return 0;
        }
        /* ring: desc table at 0, avail at 0x1000, used at 0x2000 (offsets in mem) */
        memset(mem, 0, 0x3000);
        size_t n = size - 1 < 0x1000 + 4 + 2 * QNUM ? size - 1 : 0x1000 + 4 + 2 * QNUM;
        memcpy(mem, data + 1, n);
        struct vu_vq q = {.num = QNUM, .desc_ua = 0x40000000, .avail_ua = 0x40001000, .used_ua = 0x40002000,
                          .addr_set = true, .kick_fd = -1, .call_fd = -1, .enabled = true};
        if (vq_map(&q, &vm) < 0)
                abort();
        vq_process(&q, &vm, data[0] & 2, answer_nothing, NULL, inbuf, FS_BUF_SIZE, outbuf, FS_BUF_SIZE);
        return 0;
}
