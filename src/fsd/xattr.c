/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Extended attributes: GETXATTR, LISTXATTR, SETXATTR, REMOVEXATTR.  Ours
 * (FS_XATTR_PREFIX) are hidden; where ownership is virtual the guest's
 * security.*, trusted.* and system.* names live under GUEST_NS_PREFIX, and
 * there are no POSIX ACLs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/xattr.h>

#include "common/util.h"
#include "fsd/server.h"

/* Where ownership is virtual there are no POSIX ACLs (op_setxattr): none
 * is set, and one stored before is neither read nor listed. */
static bool acl_name(const char *name)
{
        return !strcmp(name, "system.posix_acl_access") || !strcmp(name, "system.posix_acl_default");
}

/* Host name for a guest xattr name, or NULL if the guest may not use it. */
static const char *xattr_host_name(const struct inode *i, const char *name, char *buf, size_t n)
{
        if (!*name || strlen(name) > XATTR_NAME_MAX || str_has_prefix(name, FS_XATTR_PREFIX))
                return NULL;
        if (!virt(i) || str_has_prefix(name, "user."))
                return name;
        /* security.*, trusted.*, system.*: kept out of the host's namespaces */
        if (snprintf(buf, n, GUEST_NS_PREFIX "%s", name) >= (int)n)
                return NULL;
        return buf;
}

/* The immutable image root has no xattrs a guest could see (layer
 * xattrs are not applied; ours are hidden): ENOSYS makes the guest kernel
 * stop asking for the whole mount, where `ls -l` and overlayfs would
 * otherwise ask for every entry. */
ssize_t op_getxattr(struct fs *fs, struct req *q)
{
        if (fs->noopen)
                return -ENOSYS;
        struct inode *i = q->i;
        struct fuse_getxattr_in in;
        if (!take(&q->a, &in, sizeof(in)))
                return -EINVAL;
        const char *name = take_name(&q->a);
        if (!name)
                return -EINVAL;
        char hb[XATTR_NAME_MAX + 16];
        const char *hn = xattr_host_name(i, name, hb, sizeof(hb));
        if (!hn || i->kind != K_NORMAL || (!S_ISREG(i->type) && !S_ISDIR(i->type)) || (virt(i) && acl_name(name)))
                return -ENODATA;
        char p[64];
        int r = ino_path(fs, i, p, sizeof(p));
        if (r < 0)
                return r;
        if (in.size == 0) {
                ssize_t n = getxattr(p, hn, NULL, 0);
                if (n < 0)
                        return -errno;
                struct fuse_getxattr_out o = {.size = (uint32_t)n};
                return reply_fit(q, &o, sizeof(o));
        }
        size_t want = in.size < q->cap ? in.size : q->cap;
        ssize_t n = getxattr(p, hn, q->res, want);
        return n < 0 ? -errno : n;
}

ssize_t op_listxattr(struct fs *fs, struct req *q)
{
        if (fs->noopen)
                return -ENOSYS; /* see the comment above op_getxattr */
        struct inode *i = q->i;
        struct fuse_getxattr_in in;
        if (!take(&q->a, &in, sizeof(in)))
                return -EINVAL;
        static char list[XATTR_LIST_MAX];
        ssize_t n = 0;
        if (i->kind == K_NORMAL && (S_ISREG(i->type) || S_ISDIR(i->type))) {
                char p[64];
                int r = ino_path(fs, i, p, sizeof(p));
                if (r < 0)
                        return r;
                n = listxattr(p, list, sizeof(list));
                if (n < 0)
                        return -errno;
        }
        /* filter in place: hide ours, map stored guest namespaces back */
        size_t out = 0;
        static char flt[XATTR_LIST_MAX];
        for (ssize_t off = 0; off < n;) {
                const char *nm = list + off;
                size_t l = strnlen(nm, (size_t)(n - off));
                off += (ssize_t)l + 1;
                const char *show = NULL;
                if (str_has_prefix(nm, GUEST_NS_PREFIX) && virt(i))
                        show = acl_name(nm + strlen(GUEST_NS_PREFIX)) ? NULL : nm + strlen(GUEST_NS_PREFIX);
                else if (str_has_prefix(nm, FS_XATTR_PREFIX))
                        show = NULL;
                else if (!virt(i) || str_has_prefix(nm, "user."))
                        show = nm;
                if (show && *show) {
                        size_t sl = strlen(show) + 1;
                        memcpy(flt + out, show, sl);
                        out += sl;
                }
        }
        if (in.size == 0) {
                struct fuse_getxattr_out o = {.size = (uint32_t)out};
                return reply_fit(q, &o, sizeof(o));
        }
        if (out > in.size || out > q->cap)
                return -ERANGE;
        memcpy(q->res, flt, out);
        return (ssize_t)out;
}

ssize_t op_setxattr(struct fs *fs, struct req *q)
{
        struct inode *i = q->i;
        struct fuse_setxattr_in in;
        /* FUSE_SETXATTR_EXT is not negotiated: the short form */
        if (!take(&q->a, &in, offsetof(struct fuse_setxattr_in, setxattr_flags)))
                return -EINVAL;
        const char *name = take_name(&q->a);
        if (!name || in.size != q->a.len || in.size > XATTR_SIZE_MAX)
                return -EINVAL;
        RO_CHECK(i);
        /* POSIX ACLs: the guest kernel enforces and maps them only with
         * FUSE_POSIX_ACL, which we do not negotiate (it would cost a
         * GETXATTR per inode at its first permission check).  Stored as a
         * guest xattr, an ACL meant nothing and changed no mode: `cp -p`
         * and `cp -a`, which set the mode as an ACL where one is taken,
         * left files 0600.  Refused as on a file system without ACLs, they
         * fall back to chmod.  Passed through, the host's kernel applies
         * one to the host inode, as before. */
        if (virt(i) && acl_name(name))
                return -EOPNOTSUPP;
        char hb[XATTR_NAME_MAX + 16];
        const char *hn = xattr_host_name(i, name, hb, sizeof(hb));
        if (!hn)
                return -EPERM;
        if (i->kind != K_NORMAL || (!S_ISREG(i->type) && !S_ISDIR(i->type)))
                return -EPERM;
        char p[64];
        int r = ino_path(fs, i, p, sizeof(p));
        if (r < 0)
                return r;
        return setxattr(p, hn, q->a.p, in.size, (int)in.flags) < 0 ? -errno : 0;
}

ssize_t op_removexattr(struct fs *fs, struct req *q)
{
        struct inode *i = q->i;
        const char *name = take_name(&q->a);
        if (!name)
                return -EINVAL;
        RO_CHECK(i);
        char hb[XATTR_NAME_MAX + 16];
        const char *hn = xattr_host_name(i, name, hb, sizeof(hb));
        if (!hn)
                return -EPERM;
        if (i->kind != K_NORMAL || (!S_ISREG(i->type) && !S_ISDIR(i->type)))
                return -ENODATA;
        char p[64];
        int r = ino_path(fs, i, p, sizeof(p));
        if (r < 0)
                return r;
        return removexattr(p, hn) < 0 ? -errno : 0;
}
