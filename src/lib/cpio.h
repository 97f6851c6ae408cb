/* SPDX-License-Identifier: Apache-2.0 */
/* A cpio newc writer, for the guest's initramfs (cpio.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cpio_writer {
        int fd;
        uint64_t off;
        uint32_t ino;
        int err;
};
void cpio_init(struct cpio_writer *w, int fd);
int cpio_add(struct cpio_writer *w, const char *name, mode_t mode, uint32_t rdev_major, uint32_t rdev_minor,
             const void *data, size_t len);
int cpio_finish(struct cpio_writer *w);
