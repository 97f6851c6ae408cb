/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* Confine msb-fsd once its share is open: working directory /proc/self/fd;
 * a private mount namespace whose root is an empty tmpfs, no network, and
 * only the file capabilities serving needs (CAP_MKNOD only for pass-through
 * ownership) -- as root directly, unprivileged inside a user namespace that
 * maps only our own uid and gid, where the host allows one; then
 * no_new_privs and a seccomp allow-list of the system calls serving uses,
 * killing the process on anything else. */
int fsd_sandbox_enter(bool passthrough, char *err, size_t errsz);
