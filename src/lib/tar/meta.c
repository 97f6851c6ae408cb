/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An entry's owner, mode and device number: what the host file gets
 * (never a setuid bit, a device or a foreign owner) and what is recorded
 * in MSB_XATTR_STAT (common/vstat.h) for the guest to see.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "common/vstat.h"
#include "tar.h"
#include "common/error.h"
#include "common/util.h"

/*
 * How an entry lands on the host.  The host copy never carries what could
 * hand a host user something: it is owned by whoever unpacks (never
 * chowned), has no setuid/setgid bits, and a device node, fifo or socket
 * is an empty regular file.  Its owner is always able to read it (the
 * virtio-fs server runs as that owner).  What the guest must see instead
 * (owner, full mode, type, device number) goes into MSB_XATTR_STAT, which
 * msb-fsd serves; the image root is marked so msb-fsd looks for it.
 */
mode_t tar_host_mode(const struct tar_in *t, const struct entry *e, mode_t kind)
{
        /* a copy's file keeps its permissions but setuid/setgid (no one
         * else reaches a copy as they do the store); its directories are
         * the owner's alone until they are finished (tar_dirs_finish()) */
        if (t->o->copy)
                return kind == S_IFDIR ? S_IFDIR | 0700 : S_IFREG | ((mode_t)(e->mode & 0777) & ~t->copy_umask);
        /* never writable by group or others: a shared store (the default
         * image installed for every user) must not become a drop box; and
         * always readable by all: a user's store is in a 0700 directory
         * anyway, and the shared one must serve every user's msb-fsd (an
         * image's 0700 /root would otherwise be unreadable to all but the
         * installer).  The image's real mode (1777 /tmp, 0700 /root, 0666
         * files) is recorded instead */
        mode_t m = (mode_t)(e->mode & 0755);
        if (kind == S_IFDIR)
                return S_IFDIR | 0755;
        return S_IFREG | (kind == S_IFREG ? m | 0444 : 0644);
}

/* Record on fd what the guest must see of the entry where the host's
 * stat (hst) differs; remove a stale record otherwise.  -EOPNOTSUPP when
 * the store's file system has no user xattrs. */
static int meta_record(struct tar_in *t, int rootfd, int fd, const struct stat *hst, bool fresh,
                       const struct entry *e, mode_t kind)
{
        mode_t want = kind | (mode_t)(e->mode & 07777);
        unsigned rdev = 0;
        if (kind == S_IFCHR || kind == S_IFBLK)
                rdev = (unsigned)makedev((unsigned)e->devmajor, (unsigned)e->devminor);
        if (hst->st_uid == e->uid && hst->st_gid == e->gid && hst->st_mode == want) {
                /* a record from an earlier layer's entry goes */
                if (!fresh && fremovexattr(fd, MSB_XATTR_STAT) < 0 && errno != ENODATA && errno != EOPNOTSUPP)
                        return -errno;
                return 0;
        }
        if (t->o->plain)
                return 0;
        if (!t->o->marked) {
                if (fsetxattr(rootfd, MSB_XATTR_MARK, "1", 1, 0) < 0)
                        return -errno;
                t->o->marked = true;
        }
        char buf[MSB_VSTAT_MAX];
        int n = msb_vstat_format(buf, (unsigned)e->uid, (unsigned)e->gid, (unsigned)want, rdev);
        return fsetxattr(fd, MSB_XATTR_STAT, buf, (size_t)n, 0) < 0 ? -errno : 0;
}

/* meta_record for fd, with the failure reported for entry e.  A file we
 * just made (fresh) is ours with mode hmode (S_IFMT included): no fstat,
 * no stale record to remove, two system calls less per entry. */
int tar_meta_apply(struct tar_in *t, int rootfd, int fd, bool fresh, mode_t hmode, const struct entry *e,
                      mode_t kind, struct tar_stats *st, struct msb_error *err)
{
        struct stat hst = {.st_uid = t->uid, .st_gid = t->gid, .st_mode = hmode};
        if (t->o->copy)
                return 0; /* a copy is the host's: nothing recorded for a guest */
        if (!fresh && fstat(fd, &hst) < 0)
                return msb_err_errno(err, errno, "entry '%s': stat", e->path);
        int r = meta_record(t, rootfd, fd, &hst, fresh, e, kind);
        if (r == -EOPNOTSUPP) {
                /* the guest sees the host's owner and mode: never more */
                st->meta_lost++;
                return kind == S_IFREG || kind == S_IFDIR ? 0 : -EOPNOTSUPP;
        }
        return r < 0 ? msb_err_errno(err, r, "entry '%s': cannot record its owner and mode", e->path) : 0;
}
