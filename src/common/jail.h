/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process confinement of msb's host daemons, msb-fsd and msb-netd
 * (docs/fsd.md "Confinement"): namespaces, an empty root, capabilities cut,
 * a seccomp allow-list.  Each daemon calls its one function once, after it
 * has opened what it serves.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

/* At most this many directory fds to carry into the confined root (every
 * share's directory, plus the root inode's: see fs_host_dirs). */
#define JAIL_MAX_DIRS 128

/*
 * Confine msb-fsd once its shares are open (docs/fsd.md "Confinement").
 *
 * Forks: the calling process only waits and leaves with the server's exit
 * status (or dies of its signal), never returning; the child returns 0 and
 * serves.  The child is pid 1 of a new pid namespace, in new mount, network
 * and IPC namespaces, whose root is an empty read-only tmpfs holding a fresh
 * read-only procfs (only the child's own pid is in it) and one bind mount
 * (nosuid, nodev, noexec; read-only where flags[k] has JAIL_DIR_RO; without
 * the mounts below it where JAIL_DIR_FLAT) per directory in dirs.
 * The old root is detached, and each dirs[k] is replaced, on the same fd
 * number, by the same directory reached through its bind mount, so ".."
 * from it ends in the new root.  The working directory is /proc/self/fd of
 * that procfs (fs.h).  Capabilities are cut to what serving needs
 * (CAP_MKNOD only with passthrough); then no_new_privs and a seccomp
 * allow-list that kills the process on any other system call.
 *
 * As root directly; unprivileged inside a user namespace mapping only our
 * own uid and gid.  Where the host allows no user namespace, only the
 * seccomp filter confines an unprivileged server (no fork then).
 * Returns 0 in the server, or -errno with a reason in err.
 */
#define JAIL_DIR_RO 1u   /* the share is read-only: so is its mount */
#define JAIL_DIR_FLAT 2u /* bind the directory alone, not the mounts below it */
int jail_enter_fsd(const int *dirs, const unsigned *flags, size_t ndirs, bool passthrough, struct msb_error *err);

/* msb-netd's confinement: the same namespaces and empty root with no
 * directories, no capabilities at all, and a seccomp allow-list of what
 * moving bytes between already-open sockets needs (sendto only to a
 * connected socket's peer: no destination address).  0, or -errno with a
 * reason in err. */
int jail_enter_netd(struct msb_error *err);
/* Log a system call outside the allow-list instead of killing the process
 * (the daemons' MSB_FSD_SECCOMP_LOG=1, read in their main.c), for finding
 * a missing entry; before jail_enter_*. */
void jail_seccomp_log(bool on);
