/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the guest sees of a file when the host file cannot show it: owner,
 * mode (with setuid/setgid bits and the file type) and device number, kept
 * in a user xattr on the host file.  Written by the layer unpacker (an
 * image's owners, setuid bits and device nodes never reach the host as
 * such) and by msb-fsd (a guest's chown/chmod/mknod on a volume); read by
 * msb-fsd, which reports it to the guest instead of the host's values.
 */
#ifndef MSB_COMMON_VSTAT_H
#define MSB_COMMON_VSTAT_H

#include <stdio.h>

#define MSB_XATTR_PREFIX "user.msb."
/* "1:uid:gid:mode(octal, with S_IFMT bits):rdev(Linux new_encode_dev)" */
#define MSB_XATTR_STAT "user.msb.stat"
/* On a directory share's root: some file below may carry MSB_XATTR_STAT
 * (without it msb-fsd never asks, which saves a getxattr per inode). */
#define MSB_XATTR_MARK "user.msb.virt"
#define MSB_VSTAT_MAX 96
/* uids and gids are 32-bit; (uint32_t)-1 means "unchanged" to chown */
#define MSB_ID_MAX 0xfffffffeULL /* bytes of the formatted value, NUL included */

static inline int msb_vstat_format(char buf[MSB_VSTAT_MAX], unsigned uid, unsigned gid, unsigned mode, unsigned rdev)
{
        return snprintf(buf, MSB_VSTAT_MAX, "1:%u:%u:%o:%u", uid, gid, mode, rdev);
}

#endif
