/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb-fsd driven in-process through a fake virtqueue: a memfd plays guest
 * memory, requests are placed in it the way the guest driver does, and
 * vq_process answers them with fs_handle against a scratch directory.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/fuse.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "check.h"
#include "common/util.h"
#include "fsd/fs.h"
#include "common/jail.h"
#include "fsd/vhost.h"

#define MEM_SIZE (8u << 20)
#define GPA_BASE 0x100000ULL
#define UVA_BASE 0x7f0000000000ULL
#define QNUM 16
#define OFF_DESC 0x0
#define OFF_AVAIL 0x1000
#define OFF_USED 0x2000
#define OFF_REQ 0x10000
#define OFF_REPLY 0x200000

static uint8_t *mem;
static struct vu_mem vm;
static struct vu_vq q;
static uint8_t *inbuf, *outbuf;
static uint64_t unique = 1;

struct desc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags, next;
};

static void ring_reset(void)
{
        memset(mem, 0, OFF_REQ);
        memset(&q, 0, sizeof(q));
        q.num = QNUM;
        q.desc_ua = UVA_BASE + OFF_DESC;
        q.avail_ua = UVA_BASE + OFF_AVAIL;
        q.used_ua = UVA_BASE + OFF_USED;
        q.addr_set = true;
        q.kick_fd = q.call_fd = -1;
        q.enabled = true;
        if (vq_map(&q, &vm) < 0)
                abort();
}

static struct desc *D(unsigned i)
{
        return (struct desc *)(mem + OFF_DESC) + i;
}

/* publish head as the next available chain */
static void make_avail(uint16_t head)
{
        uint16_t *avail = (uint16_t *)(mem + OFF_AVAIL);
        avail[2 + avail[1] % QNUM] = head;
        __atomic_store_n(&avail[1], (uint16_t)(avail[1] + 1), __ATOMIC_RELEASE);
}

static uint32_t used_len(unsigned k)
{
        return *(uint32_t *)(mem + OFF_USED + 4 + 8 * (k % QNUM) + 4);
}
static uint16_t used_idx(void)
{
        return *(uint16_t *)(mem + OFF_USED + 2);
}

static int run_ring(struct fs *fs, bool indirect)
{
        return vq_process(&q, &vm, indirect, fs_handle, fs, inbuf, FS_BUF_SIZE, outbuf, FS_BUF_SIZE);
}

/* Send one FUSE request (header built here) through the ring; the reply is
 * copied to *reply.  Returns the out header's error. */
static int call(struct fs *fs, uint32_t opcode, uint64_t nodeid, const void *arg, size_t alen, void *reply,
                size_t rcap)
{
        struct fuse_in_header h = {.len = (uint32_t)(sizeof(h) + alen), .opcode = opcode, .unique = unique++,
                                   .nodeid = nodeid, .uid = 0, .gid = 0};
        memcpy(mem + OFF_REQ, &h, sizeof(h));
        if (alen)
                memcpy(mem + OFF_REQ + sizeof(h), arg, alen);
        *D(0) = (struct desc){.addr = GPA_BASE + OFF_REQ, .len = h.len, .flags = 1, .next = 1};
        *D(1) = (struct desc){.addr = GPA_BASE + OFF_REPLY, .len = 1 << 20, .flags = 2};
        uint16_t before = used_idx();
        make_avail(0);
        int r = run_ring(fs, true);
        if (r != 1 || used_idx() != (uint16_t)(before + 1)) {
                fprintf(stderr, "opcode %u: vq_process gave %d\n", opcode, r);
                return -9999;
        }
        struct fuse_out_header oh;
        memcpy(&oh, mem + OFF_REPLY, sizeof(oh));
        if (oh.unique != h.unique || oh.len != used_len(before))
                return -9998;
        if (reply && oh.len > sizeof(oh))
                memcpy(reply, mem + OFF_REPLY + sizeof(oh), oh.len - sizeof(oh) < rcap ? oh.len - sizeof(oh) : rcap);
        return oh.error;
}

static void init(struct fs *fs)
{
        struct fuse_init_in in = {.major = 7, .minor = 38, .max_readahead = 65536, .flags = FUSE_DO_READDIRPLUS};
        struct fuse_init_out o = {0};
        CHECK_INT(call(fs, FUSE_INIT, 0, &in, sizeof(in), &o, sizeof(o)), 0);
        CHECK_INT(o.major, 7);
        CHECK_INT(o.max_write, FS_MAX_WRITE);
        CHECK(o.flags & FUSE_DO_READDIRPLUS);
}

static uint64_t lookup(struct fs *fs, uint64_t parent, const char *name, int *err, struct fuse_attr *attr)
{
        struct fuse_entry_out e = {0};
        *err = call(fs, FUSE_LOOKUP, parent, name, strlen(name) + 1, &e, sizeof(e));
        if (attr)
                *attr = e.attr;
        return e.nodeid;
}

static struct fs *share(const char *path, bool file, bool ro)
{
        struct fs_config c = {.path = path, .single_file = file, .read_only = ro, .owner = FS_OWNER_VIRTUAL,
                              .timeout = 1};
        struct fs *fs;
        struct msb_error err;
        if (fs_new(&c, &fs, &err) < 0) {
                fprintf(stderr, "fs_new: %s\n", err.message);
                abort();
        }
        ring_reset();
        init(fs);
        return fs;
}

static void write_host(const char *p, const char *s)
{
        FILE *f = fopen(p, "w");
        fputs(s, f);
        fclose(f);
}

/* the short fuse_setxattr_in (no FUSE_SETXATTR_EXT), name, value */
static size_t setxattr_req(uint8_t *buf, const char *name, const char *value)
{
        struct fuse_setxattr_in in = {.size = (uint32_t)strlen(value)};
        size_t n = offsetof(struct fuse_setxattr_in, setxattr_flags);
        memcpy(buf, &in, n);
        memcpy(buf + n, name, strlen(name) + 1);
        n += strlen(name) + 1;
        memcpy(buf + n, value, strlen(value));
        return n + strlen(value);
}

static void test_names_and_lookup(const char *dir)
{
        struct fs *fs = share(dir, false, false);
        int err;
        CHECK(lookup(fs, 1, "hello", &err, NULL) > 1);
        CHECK_INT(err, 0);
        lookup(fs, 1, "missing", &err, NULL);
        CHECK_INT(err, -ENOENT);
        lookup(fs, 1, "..", &err, NULL);
        CHECK_INT(err, -EINVAL);
        lookup(fs, 1, ".", &err, NULL);
        CHECK_INT(err, -EINVAL);
        lookup(fs, 1, "", &err, NULL);
        CHECK_INT(err, -EINVAL);
        lookup(fs, 1, "sub/hello", &err, NULL);
        CHECK_INT(err, -EINVAL);
        char longname[300];
        memset(longname, 'x', 299);
        longname[299] = 0;
        lookup(fs, 1, longname, &err, NULL);
        CHECK_INT(err, -ENAMETOOLONG);
        /* a symlink to / is stored; looking through it is not possible */
        uint64_t l = lookup(fs, 1, "toroot", &err, NULL);
        CHECK_INT(err, 0);
        lookup(fs, l, "etc", &err, NULL);
        CHECK_INT(err, -ENOTDIR);
        struct fuse_open_in oi = {.flags = O_RDONLY};
        CHECK_INT(call(fs, FUSE_OPENDIR, l, &oi, sizeof(oi), NULL, 0), -ENOTDIR);
        /* unknown node ids and handles */
        CHECK_INT(call(fs, FUSE_GETATTR, 987654, &(struct fuse_getattr_in){0}, sizeof(struct fuse_getattr_in), NULL,
                       0),
                  -EBADF);
        struct fuse_read_in ri = {.fh = 4242, .size = 10};
        CHECK_INT(call(fs, FUSE_READ, 1, &ri, sizeof(ri), NULL, 0), -EBADF);
        CHECK_INT(call(fs, 9999, 1, NULL, 0, NULL, 0), -ENOSYS);
        /* truncated arguments */
        CHECK_INT(call(fs, FUSE_READ, 1, &ri, 8, NULL, 0), -EINVAL);
        CHECK_INT(call(fs, FUSE_LOOKUP, 1, "nonul", 5, NULL, 0), -EINVAL);
        /* a name with a NUL inside: only the first component counts, checked */
        CHECK_INT(call(fs, FUSE_MKDIR, 1, &(struct fuse_mkdir_in){.mode = 0755}, sizeof(struct fuse_mkdir_in), NULL,
                       0),
                  -EINVAL);
        fs_free(fs);
}

/* FORGET comes on the hiprio queue with no room for a reply: it must still
 * drop the inode (and its host fd). */
static void test_forget_without_reply_room(const char *dir)
{
        struct fs *fs = share(dir, false, false);
        int err;
        uint64_t n = lookup(fs, 1, "hello", &err, NULL);
        CHECK_INT(err, 0);
        struct {
                struct fuse_in_header h;
                struct fuse_forget_in f;
        } fg = {.h = {.len = sizeof(fg), .opcode = FUSE_FORGET, .unique = unique++, .nodeid = n}, .f = {.nlookup = 1}};
        memcpy(mem + OFF_REQ, &fg, sizeof(fg));
        *D(0) = (struct desc){.addr = GPA_BASE + OFF_REQ, .len = sizeof(fg)};
        make_avail(0);
        CHECK_INT(run_ring(fs, true), 1);
        CHECK_INT(call(fs, FUSE_GETATTR, n, &(struct fuse_getattr_in){0}, sizeof(struct fuse_getattr_in), NULL, 0),
                  -EBADF);
        fs_free(fs);
}

static void test_read_write_create(const char *dir)
{
        struct fs *fs = share(dir, false, false);
        struct {
                struct fuse_create_in in;
                char name[8];
        } cr = {.in = {.flags = O_RDWR, .mode = S_IFREG | 0644}, .name = "newf"};
        struct {
                struct fuse_entry_out e;
                struct fuse_open_out o;
        } co = {0};
        CHECK_INT(call(fs, FUSE_CREATE, 1, &cr, sizeof(cr.in) + 5, &co, sizeof(co)), 0);
        struct {
                struct fuse_write_in in;
                char data[5];
        } wr = {.in = {.fh = co.o.fh, .offset = 0, .size = 5}, .data = "abcde"};
        struct fuse_write_out wo = {0};
        CHECK_INT(call(fs, FUSE_WRITE, co.e.nodeid, &wr, sizeof(wr.in) + 5, &wo, sizeof(wo)), 0);
        CHECK_INT(wo.size, 5);
        /* size field disagreeing with the payload */
        wr.in.size = 500;
        CHECK_INT(call(fs, FUSE_WRITE, co.e.nodeid, &wr, sizeof(wr.in) + 5, &wo, sizeof(wo)), -EINVAL);
        /* a write larger than the copy limit: its payload is read from
         * guest memory in place */
        size_t big = 600 << 10;
        uint8_t *bw = xmalloc(sizeof(struct fuse_write_in) + big);
        struct fuse_write_in bwi = {.fh = co.o.fh, .offset = 5, .size = (uint32_t)big};
        memcpy(bw, &bwi, sizeof(bwi));
        for (size_t k = 0; k < big; k++)
                bw[sizeof(bwi) + k] = (uint8_t)(k * 7 + 1);
        CHECK_INT(call(fs, FUSE_WRITE, co.e.nodeid, bw, sizeof(bwi) + big, &wo, sizeof(wo)), 0);
        CHECK_INT(wo.size, big);
        /* ...and one whose size field lies about it */
        bwi.size = (uint32_t)big - 1;
        memcpy(bw, &bwi, sizeof(bwi));
        CHECK_INT(call(fs, FUSE_WRITE, co.e.nodeid, bw, sizeof(bwi) + big, &wo, sizeof(wo)), -EINVAL);
        {
                char hp[512];
                snprintf(hp, sizeof(hp), "%s/newf", dir);
                FILE *hf = fopen(hp, "rb");
                uint8_t *back = xmalloc(big + 5);
                CHECK(hf && fread(back, 1, big + 5, hf) == big + 5);
                CHECK(memcmp(back + 5, bw + sizeof(bwi), big) == 0);
                if (hf)
                        fclose(hf);
                free(back);
                CHECK(truncate(hp, 5) == 0);
        }
        free(bw);
        char rb[16] = {0};
        struct fuse_read_in ri = {.fh = co.o.fh, .offset = 1, .size = 3};
        CHECK_INT(call(fs, FUSE_READ, co.e.nodeid, &ri, sizeof(ri), rb, sizeof(rb)), 0);
        CHECK_STR(rb, "bcd");
        CHECK_INT(call(fs, FUSE_RELEASE, co.e.nodeid, &(struct fuse_release_in){.fh = co.o.fh},
                       sizeof(struct fuse_release_in), NULL, 0),
                  0);
        CHECK_INT(call(fs, FUSE_READ, co.e.nodeid, &ri, sizeof(ri), rb, sizeof(rb)), -EBADF);
        char p[512];
        snprintf(p, sizeof(p), "%s/newf", dir);
        struct stat st;
        CHECK(stat(p, &st) == 0 && st.st_size == 5);
        /* guest chmod 4777 and mknod: the host inode keeps its mode, the
         * device is a plain file, the guest sees what it set */
        struct fuse_setattr_in sa = {.valid = FATTR_MODE | FATTR_UID, .mode = 04777, .uid = 77};
        struct fuse_attr_out ao = {0};
        CHECK_INT(call(fs, FUSE_SETATTR, co.e.nodeid, &sa, sizeof(sa), &ao, sizeof(ao)), 0);
        CHECK_INT(ao.attr.mode, S_IFREG | 04777);
        CHECK_INT(ao.attr.uid, 77);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0644 && st.st_uid == geteuid());
        /* the share's root is marked, so the next server looks for the view */
        char mv[4];
        CHECK(getxattr(dir, FS_XATTR_MARK, mv, sizeof(mv)) == 1);
        {
                struct fs *fs2 = share(dir, false, false);
                struct fuse_attr a2;
                int e2;
                lookup(fs2, 1, "newf", &e2, &a2);
                CHECK_INT(e2, 0);
                CHECK_INT(a2.mode, S_IFREG | 04777);
                CHECK_INT(a2.uid, 77);
                fs_free(fs2);
                ring_reset();
                init(fs);
        }
        struct {
                struct fuse_mknod_in in;
                char name[8];
        } mk = {.in = {.mode = S_IFCHR | 0600, .rdev = 0x0103}, .name = "dev"};
        struct fuse_entry_out me = {0};
        CHECK_INT(call(fs, FUSE_MKNOD, 1, &mk, sizeof(mk.in) + 4, &me, sizeof(me)), 0);
        CHECK(S_ISCHR(me.attr.mode) && me.attr.rdev == 0x0103);
        snprintf(p, sizeof(p), "%s/dev", dir);
        CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode));
        /* our xattr is neither listed nor settable by the guest */
        char lb[256] = {0};
        struct fuse_getxattr_in gx = {.size = sizeof(lb)};
        CHECK_INT(call(fs, FUSE_LISTXATTR, co.e.nodeid, &gx, sizeof(gx), lb, sizeof(lb)), 0);
        CHECK(memmem(lb, sizeof(lb), "user.msb", 8) == NULL);
        uint8_t sx[64];
        size_t sxl = setxattr_req(sx, "user.msb.stat", "x");
        CHECK_INT(call(fs, FUSE_SETXATTR, co.e.nodeid, sx, sxl, NULL, 0), -EPERM);
        sxl = setxattr_req(sx, "user.ok", "x");
        CHECK_INT(call(fs, FUSE_SETXATTR, co.e.nodeid, sx, sxl, NULL, 0), 0);
        /* no POSIX ACLs: refused as where there are none, so cp -p and
         * cp -a fall back to chmod instead of storing a mode-less ACL */
        sxl = setxattr_req(sx, "system.posix_acl_access", "\2\0\0\0");
        CHECK_INT(call(fs, FUSE_SETXATTR, co.e.nodeid, sx, sxl, NULL, 0), -EOPNOTSUPP);
        sxl = setxattr_req(sx, "system.posix_acl_default", "\2\0\0\0");
        CHECK_INT(call(fs, FUSE_SETXATTR, 1, sx, sxl, NULL, 0), -EOPNOTSUPP);
        fs_free(fs);
}

/* FUSE_HANDLE_KILLPRIV_V2: write, truncate, O_TRUNC and chown drop what
 * the guest's VFS would (it no longer asks for security.capability before
 * every write). */
static int mode_of(struct fs *fs, uint64_t node)
{
        struct fuse_getattr_in gi = {0};
        struct fuse_attr_out ao = {0};
        return call(fs, FUSE_GETATTR, node, &gi, sizeof(gi), &ao, sizeof(ao)) == 0 ? (int)(ao.attr.mode & 07777) : -1;
}

static void set_mode(struct fs *fs, uint64_t node, unsigned mode)
{
        struct fuse_setattr_in sa = {.valid = FATTR_MODE, .mode = mode};
        struct fuse_attr_out ao = {0};
        CHECK_INT(call(fs, FUSE_SETATTR, node, &sa, sizeof(sa), &ao, sizeof(ao)), 0);
}

static int cap_of(struct fs *fs, uint64_t node)
{
        struct {
                struct fuse_getxattr_in in;
                char name[24];
        } gx = {.in = {.size = 64}, .name = "security.capability"};
        char v[64];
        return call(fs, FUSE_GETXATTR, node, &gx, sizeof(gx.in) + 20, v, sizeof(v));
}

static void write1(struct fs *fs, uint64_t node, uint64_t fh, uint32_t flags)
{
        struct {
                struct fuse_write_in in;
                char data[1];
        } wr = {.in = {.fh = fh, .size = 1, .write_flags = flags}, .data = "x"};
        struct fuse_write_out wo = {0};
        CHECK_INT(call(fs, FUSE_WRITE, node, &wr, sizeof(wr.in) + 1, &wo, sizeof(wo)), 0);
        CHECK_INT(wo.size, 1);
}

static void test_kill_privs(const char *dir)
{
        struct fs *fs = share(dir, false, false);
        struct {
                struct fuse_create_in in;
                char name[8];
        } cr = {.in = {.flags = O_RDWR, .mode = S_IFREG | 0755}, .name = "kp"};
        struct {
                struct fuse_entry_out e;
                struct fuse_open_out o;
        } co = {0};
        CHECK_INT(call(fs, FUSE_CREATE, 1, &cr, sizeof(cr.in) + 3, &co, sizeof(co)), 0);
        uint64_t n = co.e.nodeid, fh = co.o.fh;
        uint8_t sx[64];
        size_t sxl = setxattr_req(sx, "security.capability", "cap");
        set_mode(fs, n, 06755);
        CHECK_INT(call(fs, FUSE_SETXATTR, n, sx, sxl, NULL, 0), 0);
        CHECK_INT(cap_of(fs, n), 0);
        /* a write by a caller with CAP_FSETID: the capability goes, the bits stay */
        write1(fs, n, fh, 0);
        CHECK_INT(cap_of(fs, n), -ENODATA);
        CHECK_INT(mode_of(fs, n), 06755);
        /* without: setuid, and setgid of a group-executable file, go too */
        CHECK_INT(call(fs, FUSE_SETXATTR, n, sx, sxl, NULL, 0), 0);
        write1(fs, n, fh, FUSE_WRITE_KILL_SUIDGID);
        CHECK_INT(cap_of(fs, n), -ENODATA);
        CHECK_INT(mode_of(fs, n), 0755);
        /* a setgid file without group execute keeps setgid (mandatory locking's mark) */
        set_mode(fs, n, 06745);
        struct fuse_setattr_in sa = {.valid = FATTR_SIZE | FATTR_KILL_SUIDGID, .size = 0};
        struct fuse_attr_out ao = {0};
        CHECK_INT(call(fs, FUSE_SETATTR, n, &sa, sizeof(sa), &ao, sizeof(ao)), 0);
        CHECK_INT(ao.attr.mode & 07777, 02745);
        CHECK_INT(ao.attr.size, 0);
        /* truncate by a caller with CAP_FSETID: only the capability */
        set_mode(fs, n, 04755);
        CHECK_INT(call(fs, FUSE_SETXATTR, n, sx, sxl, NULL, 0), 0);
        sa.valid = FATTR_SIZE;
        CHECK_INT(call(fs, FUSE_SETATTR, n, &sa, sizeof(sa), &ao, sizeof(ao)), 0);
        CHECK_INT(ao.attr.mode & 07777, 04755);
        CHECK_INT(cap_of(fs, n), -ENODATA);
        /* chown: setuid goes whoever asks */
        sa = (struct fuse_setattr_in){.valid = FATTR_UID | FATTR_KILL_SUIDGID, .uid = 5};
        CHECK_INT(call(fs, FUSE_SETATTR, n, &sa, sizeof(sa), &ao, sizeof(ao)), 0);
        CHECK_INT(ao.attr.mode & 07777, 0755);
        CHECK_INT(ao.attr.uid, 5);
        /* OPEN with O_TRUNC */
        set_mode(fs, n, 04755);
        struct fuse_open_in oi = {.flags = O_WRONLY | O_TRUNC, .open_flags = FUSE_OPEN_KILL_SUIDGID};
        struct fuse_open_out oo = {0};
        CHECK_INT(call(fs, FUSE_OPEN, n, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        CHECK_INT(mode_of(fs, n), 0755);
        /* ...and CREATE of an existing file with O_TRUNC */
        set_mode(fs, n, 04755);
        cr.in.flags = O_WRONLY | O_TRUNC;
        cr.in.open_flags = FUSE_OPEN_KILL_SUIDGID;
        CHECK_INT(call(fs, FUSE_CREATE, 1, &cr, sizeof(cr.in) + 3, &co, sizeof(co)), 0);
        CHECK_INT(mode_of(fs, n), 0755);
        /* nothing of it reached the host inode's own mode */
        char p[512];
        struct stat st;
        snprintf(p, sizeof(p), "%s/kp", dir);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07000) == 0);
        fs_free(fs);

        /* owners passed through: the host inode's bits */
        struct fs_config c = {.path = dir, .owner = FS_OWNER_PASSTHROUGH, .timeout = 1};
        struct msb_error err;
        CHECK_INT(fs_new(&c, &fs, &err), 0);
        ring_reset();
        init(fs);
        CHECK(chmod(p, 06755) == 0);
        int e;
        n = lookup(fs, 1, "kp", &e, NULL);
        CHECK_INT(e, 0);
        oi = (struct fuse_open_in){.flags = O_WRONLY};
        CHECK_INT(call(fs, FUSE_OPEN, n, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        write1(fs, n, oo.fh, 0);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 06755);
        write1(fs, n, oo.fh, FUSE_WRITE_KILL_SUIDGID);
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0755);
        fs_free(fs);
        unlink(p);
}

/* What is made in a setgid directory takes its group, a directory its
 * setgid bit too, as the guest's tmpfs does: the guest's VFS leaves it to
 * the file system, and a virtualized share's host directory has no such
 * bit. */
static void test_setgid_dir(const char *dir)
{
        struct fs *fs = share(dir, false, false);
        struct {
                struct fuse_mkdir_in in;
                char name[8];
        } md = {.in = {.mode = 0755}, .name = "sgd"};
        struct fuse_entry_out de = {0};
        CHECK_INT(call(fs, FUSE_MKDIR, 1, &md, sizeof(md.in) + 4, &de, sizeof(de)), 0);
        struct fuse_setattr_in sa = {.valid = FATTR_GID | FATTR_MODE, .gid = 1234, .mode = 02775};
        struct fuse_attr_out ao = {0};
        CHECK_INT(call(fs, FUSE_SETATTR, de.nodeid, &sa, sizeof(sa), &ao, sizeof(ao)), 0);
        CHECK_INT(ao.attr.mode & 07777, 02775);
        struct {
                struct fuse_create_in in;
                char name[8];
        } cr = {.in = {.flags = O_RDWR, .mode = S_IFREG | 0644}, .name = "f"};
        struct {
                struct fuse_entry_out e;
                struct fuse_open_out o;
        } co = {0};
        CHECK_INT(call(fs, FUSE_CREATE, de.nodeid, &cr, sizeof(cr.in) + 2, &co, sizeof(co)), 0);
        CHECK_INT(co.e.attr.gid, 1234);
        CHECK_INT(co.e.attr.mode & 07777, 0644);
        memcpy(md.name, "sub", 4);
        struct fuse_entry_out se = {0};
        CHECK_INT(call(fs, FUSE_MKDIR, de.nodeid, &md, sizeof(md.in) + 4, &se, sizeof(se)), 0);
        CHECK_INT(se.attr.gid, 1234);
        CHECK_INT(se.attr.mode & 07777, 02755);
        /* ...and it holds after the server forgets: it is recorded */
        int e;
        struct fuse_attr a;
        struct fs *fs2 = share(dir, false, false);
        uint64_t d2 = lookup(fs2, 1, "sgd", &e, NULL);
        CHECK_INT(e, 0);
        lookup(fs2, d2, "sub", &e, &a);
        CHECK_INT(e, 0);
        CHECK(a.gid == 1234 && (a.mode & 07777) == 02755);
        fs_free(fs2);
        fs_free(fs);
        char p[512];
        snprintf(p, sizeof(p), "%s/sgd", dir);
        rm_rf(p);
}

static void test_read_only(const char *dir)
{
        struct fs *fs = share(dir, false, true);
        int err;
        uint64_t f = lookup(fs, 1, "hello", &err, NULL);
        CHECK_INT(err, 0);
        struct fuse_open_in oi = {.flags = O_WRONLY};
        CHECK_INT(call(fs, FUSE_OPEN, f, &oi, sizeof(oi), NULL, 0), -EROFS);
        oi.flags = O_RDONLY | O_TRUNC;
        CHECK_INT(call(fs, FUSE_OPEN, f, &oi, sizeof(oi), NULL, 0), -EROFS);
        struct fuse_setattr_in sa = {.valid = FATTR_SIZE, .size = 0};
        CHECK_INT(call(fs, FUSE_SETATTR, f, &sa, sizeof(sa), NULL, 0), -EROFS);
        sa.valid = FATTR_MODE;
        CHECK_INT(call(fs, FUSE_SETATTR, f, &sa, sizeof(sa), NULL, 0), -EROFS);
        /* dropping privileges alone is a change too */
        sa.valid = FATTR_KILL_SUIDGID;
        CHECK_INT(call(fs, FUSE_SETATTR, f, &sa, sizeof(sa), NULL, 0), -EROFS);
        CHECK_INT(call(fs, FUSE_UNLINK, 1, "hello", 6, NULL, 0), -EROFS);
        struct {
                struct fuse_mkdir_in in;
                char name[4];
        } md = {.in = {.mode = 0755}, .name = "nd"};
        CHECK_INT(call(fs, FUSE_MKDIR, 1, &md, sizeof(md.in) + 3, NULL, 0), -EROFS);
        struct {
                struct fuse_create_in in;
                char name[4];
        } cr = {.in = {.flags = O_RDONLY, .mode = 0644}, .name = "nf"};
        CHECK_INT(call(fs, FUSE_CREATE, 1, &cr, sizeof(cr.in) + 3, NULL, 0), -EROFS);
        CHECK_INT(call(fs, FUSE_SYMLINK, 1, "ln\0hello", 9, NULL, 0), -EROFS);
        struct {
                struct fuse_rename_in in;
                char names[16];
        } rn = {.in = {.newdir = 1}};
        memcpy(rn.names, "hello\0moved", 12);
        CHECK_INT(call(fs, FUSE_RENAME, 1, &rn, sizeof(rn.in) + 12, NULL, 0), -EROFS);
        uint8_t sx[64];
        size_t sxl = setxattr_req(sx, "user.a", "x");
        CHECK_INT(call(fs, FUSE_SETXATTR, f, sx, sxl, NULL, 0), -EROFS);
        CHECK_INT(call(fs, FUSE_REMOVEXATTR, f, "user.a", 7, NULL, 0), -EROFS);
        /* reading is fine */
        oi.flags = O_RDONLY;
        struct fuse_open_out oo = {0};
        CHECK_INT(call(fs, FUSE_OPEN, f, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        struct fuse_write_in wi = {.fh = oo.fh, .size = 0};
        CHECK_INT(call(fs, FUSE_WRITE, f, &wi, sizeof(wi), NULL, 0), -EROFS);
        fs_free(fs);
        char p[512];
        snprintf(p, sizeof(p), "%s/hello", dir);
        struct stat st;
        CHECK(stat(p, &st) == 0 && st.st_size == 5);
}

/* An image root (--immutable): files are read without OPEN, by node id. */
static void test_immutable_no_open(const char *dir)
{
        struct fs_config c = {.path = dir, .read_only = true, .immutable = true, .owner = FS_OWNER_VIRTUAL,
                              .timeout = 1};
        struct fs *fs;
        struct msb_error err;
        CHECK_INT(fs_new(&c, &fs, &err), 0);
        ring_reset();
        init(fs);
        int e;
        uint64_t f = lookup(fs, 1, "hello", &e, NULL);
        CHECK_INT(e, 0);
        struct fuse_open_in oi = {.flags = O_RDONLY};
        CHECK_INT(call(fs, FUSE_OPEN, f, &oi, sizeof(oi), NULL, 0), -ENOSYS);
        struct fuse_read_in ri = {.fh = 0, .offset = 1, .size = 100};
        char buf[128] = {0};
        CHECK_INT(call(fs, FUSE_READ, f, &ri, sizeof(ri), buf, sizeof(buf)), 0);
        CHECK_STR(buf, "ello");
        /* twice: the inode's fd is kept */
        memset(buf, 0, sizeof(buf));
        CHECK_INT(call(fs, FUSE_READ, f, &ri, sizeof(ri), buf, sizeof(buf)), 0);
        CHECK_STR(buf, "ello");
        struct fuse_lseek_in li = {.fh = 0, .offset = 0, .whence = SEEK_END};
        struct fuse_lseek_out lo = {0};
        CHECK_INT(call(fs, FUSE_LSEEK, f, &li, sizeof(li), &lo, sizeof(lo)), 0);
        CHECK_INT(lo.offset, 5);
        /* no way to read a directory, an unknown node or the root this way */
        CHECK_INT(call(fs, FUSE_READ, 1, &ri, sizeof(ri), buf, sizeof(buf)), -EBADF);
        CHECK_INT(call(fs, FUSE_READ, 12345, &ri, sizeof(ri), buf, sizeof(buf)), -EBADF);
        /* a made-up handle is still refused */
        ri.fh = 777;
        CHECK_INT(call(fs, FUSE_READ, f, &ri, sizeof(ri), buf, sizeof(buf)), -EBADF);
        struct fuse_flush_in fi = {.fh = 0};
        CHECK_INT(call(fs, FUSE_FLUSH, f, &fi, sizeof(fi), NULL, 0), -ENOSYS);
        /* directories too: listed by node id with fh 0 */
        CHECK_INT(call(fs, FUSE_OPENDIR, 1, &oi, sizeof(oi), NULL, 0), -ENOSYS);
        struct fuse_read_in rd = {.fh = 0, .offset = 0, .size = 4096};
        static char list[4096];
        memset(list, 0, sizeof(list));
        CHECK_INT(call(fs, FUSE_READDIR, 1, &rd, sizeof(rd), list, sizeof(list)), 0);
        bool seen = false;
        for (size_t off = 0; off + sizeof(struct fuse_dirent) <= sizeof(list);) {
                struct fuse_dirent *de = (struct fuse_dirent *)(list + off);
                if (de->namelen == 0)
                        break;
                seen |= de->namelen == 5 && !memcmp(de->name, "hello", 5);
                off += FUSE_DIRENT_SIZE(de);
        }
        CHECK(seen);
        /* a file is not listed, a made-up handle is refused */
        CHECK_INT(call(fs, FUSE_READDIR, f, &rd, sizeof(rd), list, sizeof(list)), -EBADF);
        rd.fh = 99;
        CHECK_INT(call(fs, FUSE_READDIR, 1, &rd, sizeof(rd), list, sizeof(list)), -EBADF);
        /* and nothing writes */
        CHECK_INT(call(fs, FUSE_UNLINK, 1, "hello", 6, NULL, 0), -EROFS);
        /* a missing name is a cacheable negative entry (nodeid 0) */
        struct fuse_entry_out neg = {.nodeid = 99};
        CHECK_INT(call(fs, FUSE_LOOKUP, 1, "missing", 8, &neg, sizeof(neg)), 0);
        CHECK_INT(neg.nodeid, 0);
        CHECK_INT(neg.entry_valid, 1);
        /* no xattrs to see: ENOSYS, so the guest kernel stops asking */
        struct {
                struct fuse_getxattr_in in;
                char name[16];
        } gx = {.in = {.size = 64}, .name = "user.x"};
        CHECK_INT(call(fs, FUSE_GETXATTR, f, &gx, sizeof(gx.in) + 7, buf, sizeof(buf)), -ENOSYS);
        CHECK_INT(call(fs, FUSE_LISTXATTR, f, &gx.in, sizeof(gx.in), buf, sizeof(buf)), -ENOSYS);
        fs_free(fs);
        ri.fh = 0;

        /* a read-only share that may change (a volume) keeps OPEN */
        fs = share(dir, false, true);
        f = lookup(fs, 1, "hello", &e, NULL);
        CHECK_INT(call(fs, FUSE_OPEN, f, &oi, sizeof(oi), NULL, 0), 0);
        CHECK_INT(call(fs, FUSE_READ, f, &ri, sizeof(ri), buf, sizeof(buf)), -EBADF);
        fs_free(fs);
}

static void test_single_file(const char *dir)
{
        char p[512], other[512], repl[512];
        snprintf(p, sizeof(p), "%s/one.toml", dir);
        snprintf(other, sizeof(other), "%s/secret", dir);
        snprintf(repl, sizeof(repl), "%s/one.toml.new", dir);
        write_host(p, "v1");
        write_host(other, "do not show");
        struct fs *fs = share(p, true, false);
        int err;
        lookup(fs, 1, "secret", &err, NULL);
        CHECK_INT(err, -ENOENT);
        uint64_t f = lookup(fs, 1, "one.toml", &err, NULL);
        CHECK_INT(err, 0);
        /* the root lists ".", ".." and the file, nothing else */
        struct fuse_open_in oi = {0};
        struct fuse_open_out oo = {0};
        CHECK_INT(call(fs, FUSE_OPENDIR, 1, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        static uint8_t db[8192];
        struct fuse_read_in ri = {.fh = oo.fh, .size = sizeof(db)};
        memset(db, 0, sizeof(db));
        CHECK_INT(call(fs, FUSE_READDIR, 1, &ri, sizeof(ri), db, sizeof(db)), 0);
        CHECK(memmem(db, sizeof(db), "one.toml", 8) != NULL);
        CHECK(memmem(db, sizeof(db), "secret", 6) == NULL);
        /* nothing can be added next to it */
        struct {
                struct fuse_create_in in;
                char name[4];
        } cr = {.in = {.flags = O_RDWR, .mode = 0644}, .name = "nf"};
        CHECK_INT(call(fs, FUSE_CREATE, 1, &cr, sizeof(cr.in) + 3, NULL, 0), -EPERM);
        CHECK_INT(call(fs, FUSE_UNLINK, 1, "one.toml", 9, NULL, 0), -EPERM);
        /* the host replaces the file by rename: a new open sees the new one */
        write_host(repl, "v2");
        CHECK(rename(repl, p) == 0);
        oi.flags = O_RDONLY;
        CHECK_INT(call(fs, FUSE_OPEN, f, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        char rb[8] = {0};
        ri = (struct fuse_read_in){.fh = oo.fh, .size = 7};
        CHECK_INT(call(fs, FUSE_READ, f, &ri, sizeof(ri), rb, sizeof(rb)), 0);
        CHECK_STR(rb, "v2");
        fs_free(fs);
}

/* Several shares behind one device, each with its own policy; the same
 * host directory shared twice is two sets of inodes. */
static void test_multi(const char *dir)
{
        char f[512];
        snprintf(f, sizeof(f), "%s/hello", dir);
        struct fs_config c[3] = {
                {.path = dir, .owner = FS_OWNER_VIRTUAL, .timeout = 1},
                {.path = f, .single_file = true, .read_only = true, .owner = FS_OWNER_VIRTUAL, .timeout = 1},
                {.path = dir, .read_only = true, .owner = FS_OWNER_VIRTUAL, .timeout = 1},
        };
        struct fs *fs;
        struct msb_error err;
        CHECK_INT(fs_new_multi(c, 3, true, &fs, &err), 0);
        ring_reset();
        init(fs);
        int err2;
        uint64_t rw = lookup(fs, 1, "0", &err2, NULL);
        CHECK_INT(err2, 0);
        struct fuse_attr fa;
        uint64_t file = lookup(fs, 1, "1", &err2, &fa);
        CHECK_INT(err2, 0);
        CHECK(S_ISREG(fa.mode));
        uint64_t rodir = lookup(fs, 1, "2", &err2, NULL);
        CHECK_INT(err2, 0);
        CHECK(rw != rodir);
        lookup(fs, 1, "3", &err2, NULL);
        CHECK_INT(err2, -ENOENT);
        lookup(fs, 1, "01", &err2, NULL);
        CHECK_INT(err2, -ENOENT);
        /* the same host file through the rw and the ro share */
        uint64_t h_rw = lookup(fs, rw, "hello", &err2, NULL);
        uint64_t h_ro = lookup(fs, rodir, "hello", &err2, NULL);
        CHECK(h_rw != h_ro);
        struct fuse_open_in oi = {.flags = O_WRONLY};
        struct fuse_open_out oo;
        CHECK_INT(call(fs, FUSE_OPEN, h_ro, &oi, sizeof(oi), &oo, sizeof(oo)), -EROFS);
        CHECK_INT(call(fs, FUSE_OPEN, file, &oi, sizeof(oi), &oo, sizeof(oo)), -EROFS);
        CHECK_INT(call(fs, FUSE_OPEN, h_rw, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        /* nothing is made in the top directory; nothing moves between shares */
        struct {
                struct fuse_mkdir_in in;
                char name[4];
        } md = {.in = {.mode = 0755}, .name = "nd"};
        CHECK_INT(call(fs, FUSE_MKDIR, 1, &md, sizeof(md.in) + 3, NULL, 0), -EPERM);
        struct {
                struct fuse_rename_in in;
                char names[16];
        } rn = {.in = {.newdir = rodir}};
        memcpy(rn.names, "hello\0moved", 12);
        CHECK_INT(call(fs, FUSE_RENAME, rw, &rn, sizeof(rn.in) + 12, NULL, 0), -EXDEV);
        struct {
                struct fuse_link_in in;
                char name[8];
        } ln = {.in = {.oldnodeid = h_ro}, .name = "again"};
        CHECK_INT(call(fs, FUSE_LINK, rw, &ln, sizeof(ln.in) + 6, NULL, 0), -EXDEV);
        /* the top lists one entry per share */
        oi.flags = O_RDONLY;
        CHECK_INT(call(fs, FUSE_OPENDIR, 1, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        static uint8_t db[4096];
        memset(db, 0, sizeof(db));
        struct fuse_read_in ri = {.fh = oo.fh, .size = sizeof(db)};
        CHECK_INT(call(fs, FUSE_READDIRPLUS, 1, &ri, sizeof(ri), db, sizeof(db)), 0);
        int names = 0;
        for (size_t off = 0; off + sizeof(struct fuse_direntplus) <= sizeof(db);) {
                struct fuse_direntplus *dp = (struct fuse_direntplus *)(db + off);
                if (!dp->dirent.namelen)
                        break;
                names++;
                off += FUSE_DIRENTPLUS_SIZE(dp);
        }
        CHECK_INT(names, 5);
        fs_free(fs);
}

static void test_bad_rings(const char *dir)
{
        struct fs *fs = share(dir, false, true);
        /* descriptor index out of range */
        ring_reset();
        make_avail(QNUM + 3);
        CHECK(run_ring(fs, true) < 0);
        CHECK(q.broken);
        /* a broken queue stays stopped */
        CHECK(run_ring(fs, true) < 0);
        /* buffer outside guest memory */
        ring_reset();
        *D(0) = (struct desc){.addr = GPA_BASE + MEM_SIZE - 8, .len = 64};
        make_avail(0);
        CHECK(run_ring(fs, true) < 0);
        /* address arithmetic that wraps */
        ring_reset();
        *D(0) = (struct desc){.addr = UINT64_MAX - 4, .len = 64};
        make_avail(0);
        CHECK(run_ring(fs, true) < 0);
        /* a loop in the chain */
        ring_reset();
        *D(0) = (struct desc){.addr = GPA_BASE + OFF_REQ, .len = 8, .flags = 1, .next = 1};
        *D(1) = (struct desc){.addr = GPA_BASE + OFF_REQ, .len = 8, .flags = 1, .next = 0};
        make_avail(0);
        CHECK(run_ring(fs, true) < 0);
        /* readable after writable */
        ring_reset();
        *D(0) = (struct desc){.addr = GPA_BASE + OFF_REPLY, .len = 8, .flags = 3, .next = 1};
        *D(1) = (struct desc){.addr = GPA_BASE + OFF_REQ, .len = 8};
        make_avail(0);
        CHECK(run_ring(fs, true) < 0);
        /* the driver claims more new buffers than the ring holds */
        ring_reset();
        *(uint16_t *)(mem + OFF_AVAIL + 2) = QNUM + 5;
        CHECK(run_ring(fs, true) < 0);
        /* indirect table outside memory, and nested indirect */
        ring_reset();
        *D(0) = (struct desc){.addr = GPA_BASE + MEM_SIZE, .len = 32, .flags = 4};
        make_avail(0);
        CHECK(run_ring(fs, true) < 0);
        ring_reset();
        struct desc *ind = (struct desc *)(mem + 0x3000);
        ind[0] = (struct desc){.addr = GPA_BASE + 0x3000, .len = 32, .flags = 4};
        *D(0) = (struct desc){.addr = GPA_BASE + 0x3000, .len = 32, .flags = 4};
        make_avail(0);
        CHECK(run_ring(fs, true) < 0);
        /* indirect not negotiated */
        ring_reset();
        *D(0) = (struct desc){.addr = GPA_BASE + 0x3000, .len = 32, .flags = 4};
        make_avail(0);
        CHECK(run_ring(fs, false) < 0);
        /* a good indirect request works */
        ring_reset();
        struct fuse_in_header h = {.len = sizeof(h) + sizeof(struct fuse_getattr_in), .opcode = FUSE_GETATTR,
                                   .unique = 77, .nodeid = 1};
        memcpy(mem + OFF_REQ, &h, sizeof(h));
        memset(mem + OFF_REQ + sizeof(h), 0, sizeof(struct fuse_getattr_in));
        ind[0] = (struct desc){.addr = GPA_BASE + OFF_REQ, .len = h.len, .flags = 1, .next = 1};
        ind[1] = (struct desc){.addr = GPA_BASE + OFF_REPLY, .len = 4096, .flags = 2};
        *D(0) = (struct desc){.addr = GPA_BASE + 0x3000, .len = 32, .flags = 4};
        make_avail(0);
        CHECK_INT(run_ring(fs, true), 1);
        CHECK_INT(used_len(0), sizeof(struct fuse_out_header) + sizeof(struct fuse_attr_out));
        /* a request whose header claims more than was sent */
        ring_reset();
        h.len = 4000;
        memcpy(mem + OFF_REQ, &h, sizeof(h));
        *D(0) = (struct desc){.addr = GPA_BASE + OFF_REQ, .len = 48, .flags = 1, .next = 1};
        *D(1) = (struct desc){.addr = GPA_BASE + OFF_REPLY, .len = 4096, .flags = 2};
        make_avail(0);
        CHECK_INT(run_ring(fs, true), 1);
        struct fuse_out_header oh;
        memcpy(&oh, mem + OFF_REPLY, sizeof(oh));
        CHECK_INT(oh.error, -EINVAL);
        /* no room for a reply header: answered with nothing, no crash */
        ring_reset();
        *D(0) = (struct desc){.addr = GPA_BASE + OFF_REQ, .len = 48, .flags = 1, .next = 1};
        *D(1) = (struct desc){.addr = GPA_BASE + OFF_REPLY, .len = 4, .flags = 2};
        make_avail(0);
        CHECK_INT(run_ring(fs, true), 1);
        CHECK_INT(used_len(0), 0);
        fs_free(fs);
}

/* ---- limits (docs/fsd.md "Limits") ---- */

/* Entries in /proc/self/fd: what the server holds on the host, plus our own. */
static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;
        if (!d)
                return -1;
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

static void forget1(struct fs *fs, uint64_t node, uint64_t n)
{
        struct {
                struct fuse_in_header h;
                struct fuse_forget_in f;
        } fg = {.h = {.len = sizeof(fg), .opcode = FUSE_FORGET, .unique = unique++, .nodeid = node}, .f = {.nlookup = n}};
        memcpy(mem + OFF_REQ, &fg, sizeof(fg));
        *D(0) = (struct desc){.addr = GPA_BASE + OFF_REQ, .len = sizeof(fg)};
        make_avail(0);
        CHECK_INT(run_ring(fs, true), 1);
}

static void host_file(const char *dir, const char *name, const char *content)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        write_host(p, content);
}

/* The reviewer's case: OPENDIR on the volumes' made-up root, never
 * released.  Each used to cost a handle for good (20 million: 627 MB); now
 * the table stops at FS_MAX_HANDLES and the guest gets EMFILE. */
static void test_handle_limit(const char *dir)
{
        struct fs_config c = {.path = dir, .owner = FS_OWNER_VIRTUAL, .timeout = 1};
        struct fs *fs;
        struct msb_error err;
        CHECK_INT(fs_new_multi(&c, 1, true, &fs, &err), 0);
        ring_reset();
        init(fs);
        struct fuse_open_in oi = {.flags = O_RDONLY};
        struct fuse_open_out oo = {0};
        int fds = count_fds();
        unsigned ok = 0, emfile = 0;
        uint64_t first = 0;
        for (unsigned k = 0; k < FS_MAX_HANDLES + 100; k++) {
                int r = call(fs, FUSE_OPENDIR, 1, &oi, sizeof(oi), &oo, sizeof(oo));
                if (r == 0 && !first)
                        first = oo.fh;
                ok += r == 0;
                emfile += r == -EMFILE;
        }
        CHECK_INT(ok, FS_MAX_HANDLES);
        CHECK_INT(emfile, 100);
        struct fs_limits u;
        fs_usage(fs, &u);
        CHECK_INT(u.handles, FS_MAX_HANDLES);
        CHECK_INT(count_fds(), fds); /* a made-up root's listing holds no fd */
        /* RELEASEDIR frees a slot */
        CHECK_INT(call(fs, FUSE_RELEASEDIR, 1, &(struct fuse_release_in){.fh = first}, sizeof(struct fuse_release_in),
                       NULL, 0),
                  0);
        CHECK_INT(call(fs, FUSE_OPENDIR, 1, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        CHECK_INT(call(fs, FUSE_OPENDIR, 1, &oi, sizeof(oi), &oo, sizeof(oo)), -EMFILE);
        fs_free(fs);

        /* OPEN of one file, over and over: each a host fd, until the limit */
        fs = share(dir, false, false);
        struct fs_limits l = {.handles = 50, .inodes = 1000, .inode_fds = 100};
        fs_set_limits(fs, &l);
        int e;
        uint64_t f = lookup(fs, 1, "hello", &e, NULL);
        CHECK_INT(e, 0);
        fds = count_fds();
        uint64_t fhs[60] = {0};
        ok = emfile = 0;
        for (unsigned k = 0; k < 60; k++) {
                int r = call(fs, FUSE_OPEN, f, &oi, sizeof(oi), &oo, sizeof(oo));
                fhs[k] = r == 0 ? oo.fh : 0;
                ok += r == 0;
                emfile += r == -EMFILE;
        }
        CHECK_INT(ok, 50);
        CHECK_INT(emfile, 10);
        CHECK_INT(count_fds(), fds + 50);
        /* CREATE and OPENDIR count too, and nothing is created at the limit */
        struct {
                struct fuse_create_in in;
                char name[8];
        } cr = {.in = {.flags = O_RDWR, .mode = S_IFREG | 0644}, .name = "lim"};
        CHECK_INT(call(fs, FUSE_CREATE, 1, &cr, sizeof(cr.in) + 4, NULL, 0), -EMFILE);
        char p[512];
        snprintf(p, sizeof(p), "%s/lim", dir);
        CHECK(access(p, F_OK) < 0);
        CHECK_INT(call(fs, FUSE_OPENDIR, 1, &oi, sizeof(oi), &oo, sizeof(oo)), -EMFILE);
        for (unsigned k = 0; k < 60; k++)
                if (fhs[k])
                        CHECK_INT(call(fs, FUSE_RELEASE, f, &(struct fuse_release_in){.fh = fhs[k]},
                                       sizeof(struct fuse_release_in), NULL, 0),
                                  0);
        CHECK_INT(count_fds(), fds);
        CHECK_INT(call(fs, FUSE_OPEN, f, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        fs_free(fs);
}

/* Inodes the guest holds lookups on: ENFILE beyond the limit, for LOOKUP
 * and everything that creates (which then creates nothing); FORGET makes
 * room again.  READDIRPLUS leaves entries it has no room for without one. */
static void test_inode_limit(const char *top)
{
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/many", top);
        CHECK(mkdir(dir, 0755) == 0);
        for (int k = 0; k < 60; k++) {
                char n[16];
                snprintf(n, sizeof(n), "f%02d", k);
                host_file(dir, n, "x");
        }
        struct fs *fs = share(dir, false, false);
        struct fs_limits l = {.handles = 100, .inodes = 41, .inode_fds = 1000};
        fs_set_limits(fs, &l);
        uint64_t ids[60] = {0};
        int ok = 0, enfile = 0;
        for (int k = 0; k < 60; k++) {
                char n[16];
                int e;
                snprintf(n, sizeof(n), "f%02d", k);
                ids[k] = lookup(fs, 1, n, &e, NULL);
                ok += e == 0;
                enfile += e == -ENFILE;
        }
        CHECK_INT(ok, 40); /* the root is the 41st */
        CHECK_INT(enfile, 20);
        struct fs_limits u;
        fs_usage(fs, &u);
        CHECK_INT(u.inodes, 41);
        /* looking up one held already costs nothing */
        int e;
        CHECK_INT(lookup(fs, 1, "f00", &e, NULL), ids[0]);
        CHECK_INT(e, 0);
        struct {
                struct fuse_mkdir_in in;
                char name[8];
        } md = {.in = {.mode = 0755}, .name = "nd"};
        CHECK_INT(call(fs, FUSE_MKDIR, 1, &md, sizeof(md.in) + 3, NULL, 0), -ENFILE);
        struct {
                struct fuse_create_in in;
                char name[8];
        } cr = {.in = {.flags = O_RDWR, .mode = S_IFREG | 0644}, .name = "nf"};
        CHECK_INT(call(fs, FUSE_CREATE, 1, &cr, sizeof(cr.in) + 3, NULL, 0), -ENFILE);
        struct {
                struct fuse_mknod_in in;
                char name[8];
        } mk = {.in = {.mode = S_IFIFO | 0644}, .name = "np"};
        CHECK_INT(call(fs, FUSE_MKNOD, 1, &mk, sizeof(mk.in) + 3, NULL, 0), -ENFILE);
        CHECK_INT(call(fs, FUSE_SYMLINK, 1, "ns\0x", 5, NULL, 0), -ENFILE);
        char p[512];
        snprintf(p, sizeof(p), "%s/nd", dir);
        CHECK(access(p, F_OK) < 0);
        snprintf(p, sizeof(p), "%s/nf", dir);
        CHECK(access(p, F_OK) < 0);
        /* a listing at the limit: names, but no entries to hold */
        struct fuse_open_in oi = {.flags = O_RDONLY};
        struct fuse_open_out oo = {0};
        CHECK_INT(call(fs, FUSE_OPENDIR, 1, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        static uint8_t db[65536];
        memset(db, 0, sizeof(db));
        struct fuse_read_in ri = {.fh = oo.fh, .size = sizeof(db)};
        CHECK_INT(call(fs, FUSE_READDIRPLUS, 1, &ri, sizeof(ri), db, sizeof(db)), 0);
        int names = 0, entries = 0;
        for (size_t off = 0; off + sizeof(struct fuse_direntplus) <= sizeof(db);) {
                struct fuse_direntplus *dp = (struct fuse_direntplus *)(db + off);
                if (!dp->dirent.namelen)
                        break;
                names++;
                entries += dp->entry_out.nodeid != 0;
                off += FUSE_DIRENTPLUS_SIZE(dp);
        }
        CHECK_INT(names, 62);
        CHECK_INT(entries, 40); /* only those held already */
        fs_usage(fs, &u);
        CHECK_INT(u.inodes, 41);
        /* FORGET makes room: the lookups readdirplus counted, then ours */
        for (int k = 0; k < 10; k++)
                forget1(fs, ids[k], k == 0 ? 3 : 2);
        fs_usage(fs, &u);
        CHECK_INT(u.inodes, 31);
        CHECK(lookup(fs, 1, "f50", &e, NULL) > 1);
        CHECK_INT(e, 0);
        CHECK_INT(call(fs, FUSE_MKDIR, 1, &md, sizeof(md.in) + 3, NULL, 0), 0);
        fs_free(fs);
        rm_rf(dir);
}

static int getattr(struct fs *fs, uint64_t node, struct fuse_attr *a)
{
        struct fuse_attr_out ao = {0};
        int r = call(fs, FUSE_GETATTR, node, &(struct fuse_getattr_in){0}, sizeof(struct fuse_getattr_in), &ao,
                     sizeof(ao));
        if (a)
                *a = ao.attr;
        return r;
}

/* Inodes' fds beyond the cache's limit are closed, least recently used
 * first, and reopened by name on use: a guest holding many inodes costs the
 * host a bounded number of fds, and everything keeps working. */
/* RENAME_EXCHANGE whose first half drops the last reference of the source
 * directory: the second half must not make that directory (freed at the end
 * of the request) the parent of the other file.  ASan saw the use after
 * free on the next FORGET before the fix. */
static void test_exchange_after_parent_dropped(const char *top)
{
        char dir[512], p[600];
        snprintf(dir, sizeof(dir), "%s/xchg", top);
        CHECK(mkdir(dir, 0755) == 0);
        snprintf(p, sizeof(p), "%s/D", dir);
        CHECK(mkdir(p, 0755) == 0);
        host_file(p, "x", "x");
        snprintf(p, sizeof(p), "%s/E", dir);
        CHECK(mkdir(p, 0755) == 0);
        host_file(p, "y", "y");
        struct fs *fs = share(dir, false, false);
        int e;
        uint64_t d = lookup(fs, 1, "D", &e, NULL);
        uint64_t x = lookup(fs, d, "x", &e, NULL);
        uint64_t ed = lookup(fs, 1, "E", &e, NULL);
        uint64_t y = lookup(fs, ed, "y", &e, NULL);
        CHECK_INT(e, 0);
        forget1(fs, d, 1); /* D lives on only as x's parent */
        struct {
                struct fuse_rename2_in in;
                char names[8];
        } rn = {.in = {.newdir = ed, .flags = RENAME_EXCHANGE}};
        memcpy(rn.names, "x\0y", 4);
        CHECK_INT(call(fs, FUSE_RENAME2, d, &rn, sizeof(rn.in) + 4, NULL, 0), 0);
        forget1(fs, y, 1);
        forget1(fs, x, 1);
        CHECK_INT(getattr(fs, ed, NULL), 0);
        fs_free(fs);
}

static void test_fd_cache(const char *top)
{
        char dir[512], p[600], q2[600];
        snprintf(dir, sizeof(dir), "%s/cache", top);
        CHECK(mkdir(dir, 0755) == 0);
        for (int k = 0; k < 100; k++) {
                char n[16], content[16];
                snprintf(n, sizeof(n), "f%02d", k);
                snprintf(content, sizeof(content), "%d", k * 1000);
                host_file(dir, n, content); /* sizes tell them apart */
        }
        snprintf(p, sizeof(p), "%s/sub", dir);
        CHECK(mkdir(p, 0755) == 0);
        snprintf(p, sizeof(p), "%s/sub/deep", dir);
        CHECK(mkdir(p, 0755) == 0);
        host_file(p, "leaf", "leafdata");
        struct fs *fs = share(dir, false, false);
        struct fs_limits l = {.handles = 100, .inodes = 1000, .inode_fds = 8};
        fs_set_limits(fs, &l);
        int base = count_fds(), e, most = 0;
        uint64_t sub = lookup(fs, 1, "sub", &e, NULL);
        uint64_t deep = lookup(fs, sub, "deep", &e, NULL);
        uint64_t leaf = lookup(fs, deep, "leaf", &e, NULL);
        CHECK_INT(e, 0);
        uint64_t ids[100];
        for (int k = 0; k < 100; k++) {
                char n[16];
                snprintf(n, sizeof(n), "f%02d", k);
                ids[k] = lookup(fs, 1, n, &e, NULL);
                CHECK_INT(e, 0);
                int now = count_fds() - base;
                most = now > most ? now : most;
        }
        /* the cache's 8, and what the last request opened before the next trims */
        CHECK(most <= 8 + 1);
        struct fs_limits u;
        fs_usage(fs, &u);
        CHECK_INT(u.inodes, 104);
        /* every inode still answers, with its own attributes */
        for (int k = 0; k < 100; k++) {
                struct fuse_attr a;
                CHECK_INT(getattr(fs, ids[k], &a), 0);
                char content[16];
                CHECK_INT(a.size, snprintf(content, sizeof(content), "%d", k * 1000));
                int now = count_fds() - base;
                most = now > most ? now : most;
        }
        CHECK(most <= 8 + 1);
        /* a closed inode below closed directories: reopened down the chain */
        struct fuse_attr a;
        CHECK_INT(getattr(fs, leaf, &a), 0);
        CHECK_INT(a.size, 8);
        struct fuse_open_in oi = {.flags = O_RDONLY};
        struct fuse_open_out oo = {0};
        CHECK_INT(call(fs, FUSE_OPEN, leaf, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        char rb[16] = {0};
        struct fuse_read_in ri = {.fh = oo.fh, .size = 8};
        CHECK_INT(call(fs, FUSE_READ, leaf, &ri, sizeof(ri), rb, sizeof(rb)), 0);
        CHECK_STR(rb, "leafdata");
        /* an open file keeps its fd: unlinked, evicted by 20 lookups, it
         * still answers GETATTR */
        snprintf(p, sizeof(p), "%s/sub/deep/leaf", dir);
        CHECK(unlink(p) == 0);
        for (int k = 0; k < 20; k++)
                CHECK_INT(getattr(fs, ids[k], NULL), 0);
        CHECK_INT(getattr(fs, leaf, &a), 0);
        CHECK_INT(a.nlink, 0);
        CHECK_INT(call(fs, FUSE_RELEASE, leaf, &(struct fuse_release_in){.fh = oo.fh}, sizeof(struct fuse_release_in),
                       NULL, 0),
                  0);
        /* the guest renames a file whose fd is closed: found by its new name */
        struct {
                struct fuse_rename_in in;
                char names[16];
        } rn = {.in = {.newdir = sub}};
        memcpy(rn.names, "f00\0moved", 10);
        CHECK_INT(call(fs, FUSE_RENAME, 1, &rn, sizeof(rn.in) + 10, NULL, 0), 0);
        for (int k = 20; k < 40; k++)
                CHECK_INT(getattr(fs, ids[k], NULL), 0);
        CHECK_INT(getattr(fs, ids[0], &a), 0);
        CHECK_INT(a.size, 1);
        /* the host renames one: ESTALE until the guest looks it up again,
         * which finds the same inode */
        for (int k = 40; k < 60; k++)
                CHECK_INT(getattr(fs, ids[k], NULL), 0);
        snprintf(p, sizeof(p), "%s/f01", dir);
        snprintf(q2, sizeof(q2), "%s/f01.host", dir);
        CHECK(rename(p, q2) == 0);
        CHECK_INT(getattr(fs, ids[1], NULL), -ESTALE);
        CHECK_INT(lookup(fs, 1, "f01.host", &e, NULL), ids[1]);
        CHECK_INT(e, 0);
        CHECK_INT(getattr(fs, ids[1], &a), 0);
        CHECK_INT(a.size, 4);
        /* ...and replaced by another file under the old name: not mistaken
         * for it */
        for (int k = 60; k < 80; k++)
                CHECK_INT(getattr(fs, ids[k], NULL), 0);
        snprintf(p, sizeof(p), "%s/f02", dir);
        snprintf(q2, sizeof(q2), "%s/f02.keep", dir);
        CHECK(link(p, q2) == 0); /* keeps its inode number from being reused */
        CHECK(unlink(p) == 0);
        write_host(p, "other!");
        CHECK_INT(getattr(fs, ids[2], NULL), -ESTALE);
        fs_usage(fs, &u);
        CHECK(u.inode_fds <= 8 + 1);
        /* FORGET of everything frees the inodes, the parents last */
        for (int k = 0; k < 100; k++)
                forget1(fs, ids[k], k == 1 ? 2 : 1);
        forget1(fs, leaf, 1);
        forget1(fs, deep, 1);
        forget1(fs, sub, 1);
        fs_usage(fs, &u);
        CHECK_INT(u.inodes, 1);
        CHECK_INT(u.inode_fds, 0);
        CHECK_INT(count_fds(), base);
        fs_free(fs);

        /* the image root: READ by node id keeps a read fd per inode, which
         * the cache bounds as well */
        struct fs_config ci = {.path = dir, .read_only = true, .immutable = true, .owner = FS_OWNER_VIRTUAL,
                               .timeout = 1};
        struct msb_error err;
        CHECK_INT(fs_new(&ci, &fs, &err), 0);
        ring_reset();
        init(fs);
        fs_set_limits(fs, &l);
        base = count_fds();
        most = 0;
        for (int pass = 0; pass < 2; pass++)
                for (int k = 3; k < 100; k++) {
                        char n[16], want[16];
                        snprintf(n, sizeof(n), "f%02d", k);
                        uint64_t id = lookup(fs, 1, n, &e, NULL);
                        CHECK_INT(e, 0);
                        memset(rb, 0, sizeof(rb));
                        ri = (struct fuse_read_in){.fh = 0, .size = 8};
                        CHECK_INT(call(fs, FUSE_READ, id, &ri, sizeof(ri), rb, sizeof(rb)), 0);
                        snprintf(want, sizeof(want), "%d", k * 1000);
                        CHECK_STR(rb, want);
                        int now = count_fds() - base;
                        most = now > most ? now : most;
                }
        CHECK(most <= 8 + 2);
        fs_usage(fs, &u);
        CHECK(u.inode_fds <= 8 + 2);
        fs_free(fs);
        rm_rf(dir);
}

/* ---- device nodes, fifos and sockets are never opened ---- */

/* Does any fd of ours other than skip point at path? */
static bool fd_open_on(const char *path, int skip)
{
        DIR *d = opendir("/proc/self/fd");
        bool found = false;
        struct dirent *de;
        while (d && (de = readdir(d))) {
                char l[64], t[PATH_MAX];
                if (atoi(de->d_name) == skip || de->d_name[0] == '.')
                        continue;
                snprintf(l, sizeof(l), "/proc/self/fd/%s", de->d_name);
                ssize_t n = readlink(l, t, sizeof(t) - 1);
                if (n > 0) {
                        t[n] = 0;
                        found |= strcmp(t, path) == 0;
                }
        }
        if (d)
                closedir(d);
        return found;
}

/* Names in the inotify events waiting on ifd that were opened, as
 * "name name ..."; IN_OPEN is not reported for O_PATH opens, so it means a
 * real open reached the driver (a device's, a fifo's). */
static void opened_names(int ifd, char *out, size_t n)
{
        static char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
        out[0] = 0;
        ssize_t len;
        while ((len = read(ifd, buf, sizeof(buf))) > 0)
                for (char *c = buf; c < buf + len;) {
                        struct inotify_event *ev = (struct inotify_event *)c;
                        if ((ev->mask & IN_OPEN) && ev->len && strlen(out) + strlen(ev->name) + 2 < n) {
                                strcat(out, ev->name);
                                strcat(out, " ");
                        }
                        c += sizeof(*ev) + ev->len;
                }
}

static void test_special_files(const char *top)
{
        if (geteuid() != 0) {
                printf("test-fsd: special files: skipped, mknod needs root\n");
                return;
        }
        char dir[512], fifo[600], dev[600];
        snprintf(dir, sizeof(dir), "%s/special", top);
        snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
        snprintf(dev, sizeof(dev), "%s/null", dir);
        CHECK(mkdir(dir, 0755) == 0);
        CHECK(mkfifo(fifo, 0666) == 0);
        /* /dev/null's numbers: harmless if it were opened */
        CHECK(mknod(dev, S_IFCHR | 0666, makedev(1, 3)) == 0);
        /* a reader, so an open for writing would succeed (and show) */
        int rd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        CHECK(rd >= 0);
        int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        CHECK(ifd >= 0 && inotify_add_watch(ifd, dir, IN_OPEN) >= 0);
        char opened[256];
        opened_names(ifd, opened, sizeof(opened)); /* our own reader's */

        struct fs_config c = {.path = dir, .owner = FS_OWNER_PASSTHROUGH, .timeout = 1};
        struct fs *fs;
        struct msb_error err;
        CHECK_INT(fs_new(&c, &fs, &err), 0);
        ring_reset();
        init(fs);
        /* CREATE without O_EXCL over each: refused, nothing opened */
        static const int cflags[] = {O_WRONLY, O_RDWR, O_RDONLY, O_WRONLY | O_TRUNC};
        for (size_t k = 0; k < sizeof(cflags) / sizeof(cflags[0]); k++) {
                struct {
                        struct fuse_create_in in;
                        char name[8];
                } cr = {.in = {.flags = (uint32_t)cflags[k], .mode = S_IFREG | 0644}, .name = "fifo"};
                CHECK_INT(call(fs, FUSE_CREATE, 1, &cr, sizeof(cr.in) + 5, NULL, 0), -EACCES);
                memcpy(cr.name, "null", 5);
                CHECK_INT(call(fs, FUSE_CREATE, 1, &cr, sizeof(cr.in) + 5, NULL, 0), -EACCES);
                cr.in.flags |= O_EXCL;
                CHECK_INT(call(fs, FUSE_CREATE, 1, &cr, sizeof(cr.in) + 5, NULL, 0), -EEXIST);
        }
        /* OPEN of what LOOKUP found */
        int e;
        struct fuse_attr a;
        uint64_t nf = lookup(fs, 1, "fifo", &e, &a);
        CHECK(e == 0 && S_ISFIFO(a.mode));
        uint64_t nd = lookup(fs, 1, "null", &e, &a);
        CHECK(e == 0 && S_ISCHR(a.mode));
        struct fuse_open_in oi = {.flags = O_RDWR};
        CHECK_INT(call(fs, FUSE_OPEN, nf, &oi, sizeof(oi), NULL, 0), -EACCES);
        CHECK_INT(call(fs, FUSE_OPEN, nd, &oi, sizeof(oi), NULL, 0), -EACCES);
        oi.flags = O_RDONLY;
        CHECK_INT(call(fs, FUSE_OPENDIR, nf, &oi, sizeof(oi), NULL, 0), -ENOTDIR);
        /* SETATTR size would open for writing */
        struct fuse_setattr_in sa = {.valid = FATTR_SIZE, .size = 0};
        CHECK_INT(call(fs, FUSE_SETATTR, nd, &sa, sizeof(sa), NULL, 0), -EINVAL);
        /* xattrs of them are not touched either (ENODATA, as before) */
        char xb[64];
        struct {
                struct fuse_getxattr_in in;
                char name[16];
        } gx = {.in = {.size = sizeof(xb)}, .name = "user.x"};
        CHECK_INT(call(fs, FUSE_GETXATTR, nf, &gx, sizeof(gx.in) + 7, xb, sizeof(xb)), -ENODATA);
        fs_free(fs);

        /* the image root's READ by node id: only regular files */
        struct fs_config ci = {.path = dir, .read_only = true, .immutable = true, .owner = FS_OWNER_VIRTUAL,
                               .timeout = 1};
        CHECK_INT(fs_new(&ci, &fs, &err), 0);
        ring_reset();
        init(fs);
        nf = lookup(fs, 1, "fifo", &e, NULL);
        nd = lookup(fs, 1, "null", &e, NULL);
        struct fuse_read_in ri = {.fh = 0, .size = 16};
        char rb[16];
        CHECK_INT(call(fs, FUSE_READ, nf, &ri, sizeof(ri), rb, sizeof(rb)), -EBADF);
        CHECK_INT(call(fs, FUSE_READ, nd, &ri, sizeof(ri), rb, sizeof(rb)), -EBADF);
        CHECK_INT(call(fs, FUSE_READDIR, nd, &ri, sizeof(ri), rb, sizeof(rb)), -EBADF);
        fs_free(fs);

        /* a virtualized share: MKNOD over them makes nothing, opens nothing */
        c.owner = FS_OWNER_VIRTUAL;
        CHECK_INT(fs_new(&c, &fs, &err), 0);
        ring_reset();
        init(fs);
        struct {
                struct fuse_mknod_in in;
                char name[8];
        } mk = {.in = {.mode = S_IFREG | 0644}, .name = "fifo"};
        CHECK_INT(call(fs, FUSE_MKNOD, 1, &mk, sizeof(mk.in) + 5, NULL, 0), -EEXIST);
        fs_free(fs);

        opened_names(ifd, opened, sizeof(opened));
        CHECK_STR(opened, "");
        CHECK(!fd_open_on(fifo, rd));
        CHECK(!fd_open_on(dev, -1));
        struct stat st;
        CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
        CHECK(lstat(dev, &st) == 0 && S_ISCHR(st.st_mode));
        close(ifd);
        close(rd);
        rm_rf(dir);
}

/* ---- confinement (docs/fsd.md "Confinement") ---- */

/* A call that must fail in the confined server.  Only calls on the seccomp
 * allow-list are tried: mkdir(2), symlink(2), link(2), creat(2) and chdir(2)
 * are not on it, so the filter would kill the process, which blocks them
 * too; their *at forms are allowed and must fail on their own. */
#define MUST_FAIL(call)                                                                                   \
        do {                                                                                              \
                long r_ = (long)(call);                                                                   \
                if (r_ >= 0) {                                                                            \
                        fprintf(stderr, "%s:%d: confined server could: %s\n", __FILE__, __LINE__, #call); \
                        check_failures++;                                                                 \
                        if (r_ > 2)                                                                       \
                                close((int)r_);                                                           \
                }                                                                                         \
        } while (0)

struct jail {
        char top[512];   /* holds share/ and its sibling secret */
        char share[600];
        int pre_fd;      /* O_PATH to share/hello, opened before confinement */
        dev_t parent_dev; /* top, as the host sees it */
        ino_t parent_ino;
        char escape[64]; /* a name under /var/tmp that must not appear */
};

/* In the confined server: every way out fails, serving still works. */
static void jailed(struct fs *fs, const struct jail *j, int share_fd)
{
        char p[128];
        /* absolute, from the working directory (/proc/self/fd), with .. */
        MUST_FAIL(openat(AT_FDCWD, "/etc/passwd", O_RDONLY | O_CLOEXEC));
        MUST_FAIL(openat(AT_FDCWD, "../../../etc/passwd", O_RDONLY | O_CLOEXEC));
        MUST_FAIL(openat(AT_FDCWD, "../../../../../../../etc/passwd", O_RDONLY | O_CLOEXEC));
        MUST_FAIL(openat(AT_FDCWD, "/proc/1/root/etc/passwd", O_RDONLY | O_CLOEXEC));
        MUST_FAIL(openat(AT_FDCWD, "/proc/self/cwd/../../../etc/passwd", O_RDONLY | O_CLOEXEC));
        MUST_FAIL(openat(AT_FDCWD, "/proc/sys/kernel/hostname", O_WRONLY | O_CLOEXEC));
        /* from the share's own fd */
        MUST_FAIL(openat(share_fd, "../secret", O_RDONLY | O_CLOEXEC));
        MUST_FAIL(openat(share_fd, "../../../../../etc/passwd", O_RDONLY | O_CLOEXEC));
        int up = openat(share_fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct stat st;
        if (up >= 0) {
                CHECK(fstat(up, &st) == 0 && !(st.st_dev == j->parent_dev && st.st_ino == j->parent_ino));
                MUST_FAIL(openat(up, "secret", O_RDONLY | O_CLOEXEC));
                close(up);
        }
        /* creating: files, directories, symlinks, links, nodes, renames */
        snprintf(p, sizeof(p), "../../../var/tmp/%s", j->escape);
        MUST_FAIL(openat(AT_FDCWD, p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
        MUST_FAIL(mkdirat(AT_FDCWD, p, 0755));
        MUST_FAIL(symlinkat("/etc", AT_FDCWD, p));
        MUST_FAIL(mknodat(AT_FDCWD, p, S_IFIFO | 0644, 0));
        char pre[32];
        snprintf(pre, sizeof(pre), "%d", j->pre_fd);
        MUST_FAIL(linkat(AT_FDCWD, pre, AT_FDCWD, p, AT_SYMLINK_FOLLOW));
        MUST_FAIL(linkat(j->pre_fd, "", AT_FDCWD, p, AT_EMPTY_PATH));
        MUST_FAIL(renameat(share_fd, "hello", AT_FDCWD, p));
        MUST_FAIL(openat(AT_FDCWD, "/x", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
        MUST_FAIL(mkdirat(AT_FDCWD, "/x", 0755));
        MUST_FAIL(symlinkat("/etc", AT_FDCWD, "/x"));
        MUST_FAIL(openat(share_fd, "../escape", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
        MUST_FAIL(mkdirat(share_fd, "../escape", 0755));
        MUST_FAIL(symlinkat("/etc", share_fd, "../escape"));
        MUST_FAIL(linkat(AT_FDCWD, pre, share_fd, "../escape", AT_SYMLINK_FOLLOW));
        MUST_FAIL(renameat(share_fd, "hello", share_fd, "../escape"));
        /* the only process in its pid namespace */
        CHECK_INT(getpid(), 1);

        /* an O_PATH fd from before reopens for reading */
        int fd = openat(AT_FDCWD, pre, O_RDONLY | O_CLOEXEC);
        char buf[16] = {0};
        CHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) == 5);
        CHECK_STR(buf, "hello");
        if (fd >= 0)
                close(fd);
        /* and the server serves: read, create, write, chmod (an xattr through
         * /proc/self/fd), mkdir, symlink, link, rename, list, statfs */
        int e;
        uint64_t h = lookup(fs, 1, "hello", &e, NULL);
        CHECK_INT(e, 0);
        struct fuse_open_in oi = {.flags = O_RDONLY};
        struct fuse_open_out oo = {0};
        CHECK_INT(call(fs, FUSE_OPEN, h, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        memset(buf, 0, sizeof(buf));
        struct fuse_read_in ri = {.fh = oo.fh, .size = 5};
        CHECK_INT(call(fs, FUSE_READ, h, &ri, sizeof(ri), buf, sizeof(buf)), 0);
        CHECK_STR(buf, "hello");
        struct {
                struct fuse_create_in in;
                char name[8];
        } cr = {.in = {.flags = O_RDWR, .mode = S_IFREG | 0644}, .name = "made"};
        struct {
                struct fuse_entry_out e;
                struct fuse_open_out o;
        } co = {0};
        CHECK_INT(call(fs, FUSE_CREATE, 1, &cr, sizeof(cr.in) + 5, &co, sizeof(co)), 0);
        struct {
                struct fuse_write_in in;
                char data[4];
        } wr = {.in = {.fh = co.o.fh, .size = 4}, .data = "abcd"};
        struct fuse_write_out wo = {0};
        CHECK_INT(call(fs, FUSE_WRITE, co.e.nodeid, &wr, sizeof(wr.in) + 4, &wo, sizeof(wo)), 0);
        CHECK_INT(wo.size, 4);
        struct fuse_setattr_in sa = {.valid = FATTR_MODE, .mode = 04755};
        struct fuse_attr_out ao = {0};
        CHECK_INT(call(fs, FUSE_SETATTR, co.e.nodeid, &sa, sizeof(sa), &ao, sizeof(ao)), 0);
        CHECK_INT(ao.attr.mode, S_IFREG | 04755);
        struct {
                struct fuse_mkdir_in in;
                char name[4];
        } md = {.in = {.mode = 0755}, .name = "d"};
        CHECK_INT(call(fs, FUSE_MKDIR, 1, &md, sizeof(md.in) + 2, NULL, 0), 0);
        CHECK_INT(call(fs, FUSE_SYMLINK, 1, "sl\0made", 8, NULL, 0), 0);
        struct {
                struct fuse_link_in in;
                char name[4];
        } ln = {.in = {.oldnodeid = co.e.nodeid}, .name = "hl"};
        CHECK_INT(call(fs, FUSE_LINK, 1, &ln, sizeof(ln.in) + 3, NULL, 0), 0);
        struct {
                struct fuse_rename_in in;
                char names[16];
        } rn = {.in = {.newdir = 1}};
        memcpy(rn.names, "hl\0hl2", 7);
        CHECK_INT(call(fs, FUSE_RENAME, 1, &rn, sizeof(rn.in) + 7, NULL, 0), 0);
        CHECK_INT(call(fs, FUSE_UNLINK, 1, "hl2", 4, NULL, 0), 0);
        CHECK_INT(call(fs, FUSE_OPENDIR, 1, &oi, sizeof(oi), &oo, sizeof(oo)), 0);
        static uint8_t db[8192];
        ri = (struct fuse_read_in){.fh = oo.fh, .size = sizeof(db)};
        CHECK_INT(call(fs, FUSE_READDIRPLUS, 1, &ri, sizeof(ri), db, sizeof(db)), 0);
        CHECK(memmem(db, sizeof(db), "made", 4) != NULL);
        struct fuse_statfs_out so = {0};
        CHECK_INT(call(fs, FUSE_STATFS, 1, NULL, 0, &so, sizeof(so)), 0);
        CHECK(so.st.bsize > 0);
        CHECK_INT(call(fs, FUSE_SYNCFS, 1, &(struct fuse_syncfs_in){0}, sizeof(struct fuse_syncfs_in), NULL, 0), 0);
}

/* jail_enter_fsd for real, in a child (as uid 0, or as nobody); returns
 * the number of failed checks, -1 if the child died of a signal. */
static int run_jailed(const struct jail *j, bool nobody)
{
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
                check_failures = 0;
                if (nobody) {
                        /* as msb-fsd started by an unprivileged user: a
                         * fresh exec is dumpable, which writing our own
                         * uid_map needs; setuid() from root is not */
                        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0 ||
                            prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
                                _exit(100);
                }
                struct fs *fs = share(j->share, false, false);
                int dirs[JAIL_MAX_DIRS];
                unsigned fl[JAIL_MAX_DIRS];
                size_t n = fs_host_dirs(fs, dirs, fl, JAIL_MAX_DIRS);
                int share_fd = n ? dirs[0] : -1;
                struct msb_error err;
                if (jail_enter_fsd(dirs, fl, n, false, &err) < 0) {
                        fprintf(stderr, "jail_enter_fsd: %s\n", err.message);
                        _exit(101);
                }
                jailed(fs, j, share_fd);
                _exit(check_failures > 99 ? 99 : check_failures);
        }
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) < 0)
                return -1;
        if (WIFSIGNALED(st)) {
                fprintf(stderr, "confined child died of signal %d%s\n", WTERMSIG(st),
                        WTERMSIG(st) == SIGSYS ? " (seccomp: a call serving needs is missing from the allow-list)"
                                               : "");
                return -1;
        }
        return WEXITSTATUS(st);
}

/* Can nobody make a user namespace here?  If not, msb-fsd confines an
 * unprivileged server by seccomp alone, and there is nothing to test. */
static bool userns_for_nobody(char *why, size_t n)
{
        pid_t pid = fork();
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(2);
                _exit(unshare(CLONE_NEWUSER) < 0 ? 1 : 0);
        }
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                char knob[16] = "?";
                FILE *f = fopen("/proc/sys/user/max_user_namespaces", "r");
                if (f) {
                        if (!fgets(knob, sizeof(knob), f))
                                knob[0] = 0;
                        fclose(f);
                }
                knob[strcspn(knob, "\n")] = 0;
                snprintf(why, n,
                         "unshare(CLONE_NEWUSER) as uid 65534 fails here (user.max_user_namespaces=%s; "
                         "kernel.unprivileged_userns_clone or an LSM may forbid it)",
                         knob);
                return false;
        }
        return true;
}

static void test_confinement(void)
{
        if (geteuid() != 0) {
                printf("test-fsd: confinement: skipped, the test needs root (it also runs the unprivileged half as "
                       "uid 65534)\n");
                return;
        }
        for (int nobody = 0; nobody < 2; nobody++) {
                char why[256];
                if (nobody && !userns_for_nobody(why, sizeof(why))) {
                        printf("test-fsd: confinement as nobody: skipped: %s\n", why);
                        continue;
                }
                struct jail j = {.pre_fd = -1};
                snprintf(j.top, sizeof(j.top), "/tmp/msb-test-fsd-jail.XXXXXX");
                CHECK(mkdtemp(j.top) != NULL);
                snprintf(j.share, sizeof(j.share), "%s/share", j.top);
                snprintf(j.escape, sizeof(j.escape), "msb-test-fsd-escape.%d", (int)getpid());
                CHECK(chmod(j.top, 0755) == 0 && mkdir(j.share, 0755) == 0);
                host_file(j.top, "secret", "host only");
                host_file(j.share, "hello", "hello");
                char p[700];
                snprintf(p, sizeof(p), "%s/hello", j.share);
                if (nobody)
                        CHECK(chown(j.share, 65534, 65534) == 0 && chown(p, 65534, 65534) == 0);
                j.pre_fd = open(p, O_PATH | O_CLOEXEC);
                struct stat st;
                CHECK(stat(j.top, &st) == 0);
                j.parent_dev = st.st_dev;
                j.parent_ino = st.st_ino;
                int failed = run_jailed(&j, nobody);
                if (failed)
                        fprintf(stderr, "confinement%s: %d check(s) failed in the confined server\n",
                                nobody ? " as nobody" : "", failed);
                CHECK_INT(failed, 0);
                /* nothing appeared outside, what the server made is inside */
                snprintf(p, sizeof(p), "/var/tmp/%s", j.escape);
                CHECK(lstat(p, &st) < 0);
                rm_rf(p);
                snprintf(p, sizeof(p), "%s/escape", j.top);
                CHECK(lstat(p, &st) < 0);
                snprintf(p, sizeof(p), "%s/made", j.share);
                CHECK(stat(p, &st) == 0 && st.st_size == 4 && (st.st_mode & 07777) == 0644);
                snprintf(p, sizeof(p), "%s/d", j.share);
                CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
                snprintf(p, sizeof(p), "%s/hello", j.share);
                CHECK(stat(p, &st) == 0);
                close(j.pre_fd);
                rm_rf(j.top);
        }
        ring_reset();
}

int main(void)
{
        if (chdir("/proc/self/fd") < 0) {
                perror("/proc/self/fd");
                return 1;
        }
        int mfd = memfd_create("guest", MFD_CLOEXEC);
        if (mfd < 0 || ftruncate(mfd, MEM_SIZE) < 0)
                return 1;
        mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
        vm.n = 1;
        vm.r[0] = (struct vu_region){.gpa = GPA_BASE, .size = MEM_SIZE, .uaddr = UVA_BASE, .host = mem};
        inbuf = xmalloc(FS_BUF_SIZE);
        outbuf = xmalloc(FS_BUF_SIZE);
        char dir[] = "/tmp/msb-test-fsd.XXXXXX";
        if (!mkdtemp(dir))
                return 1;
        char p[512];
        snprintf(p, sizeof(p), "%s/hello", dir);
        write_host(p, "hello");
        snprintf(p, sizeof(p), "%s/toroot", dir);
        if (symlink("/", p) < 0)
                return 1;
        test_names_and_lookup(dir);
        test_read_write_create(dir);
        test_kill_privs(dir);
        test_setgid_dir(dir);
        test_forget_without_reply_room(dir);
        test_read_only(dir);
        test_immutable_no_open(dir);
        test_single_file(dir);
        test_multi(dir);
        test_bad_rings(dir);
        test_handle_limit(dir);
        test_inode_limit(dir);
        test_fd_cache(dir);
        test_exchange_after_parent_dropped(dir);
        test_special_files(dir);
        rm_rf(dir);
        test_confinement();
        free(inbuf);
        free(outbuf);
        CHECK_DONE();
}
