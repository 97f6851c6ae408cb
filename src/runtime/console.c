/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Terminals: a host pty pair for a container with process.terminal, its
 * master sent over --console-socket as runc sends it (one SCM_RIGHTS fd,
 * the pty's name as the message), so conmon and containerd's shim drive
 * it unchanged.  The slave end is the shim's: raw, because the line
 * discipline that matters (Ctrl-C, echo) is the guest's own pty's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "common/util.h"
#include "runtime.h"

int rt_pty_open(int *ret_master, int *ret_slave, unsigned rows, unsigned cols)
{
        _cleanup_close_ int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
                return -errno;
        int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s < 0)
                return -errno;
        struct termios t;
        if (tcgetattr(s, &t) == 0) {
                cfmakeraw(&t);
                tcsetattr(s, TCSANOW, &t);
        }
        struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
        ioctl(m, TIOCSWINSZ, &ws);
        *ret_master = TAKE_FD(m);
        *ret_slave = s;
        return 0;
}

int rt_console_send(const char *path, int fd)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        _cleanup_close_ int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        char name[64];
        if (ptsname_r(fd, name, sizeof(name)) != 0)
                snprintf(name, sizeof(name), "/dev/ptmx");
        struct iovec iov = {.iov_base = name, .iov_len = strlen(name)};
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } u;
        memset(&u, 0, sizeof(u));
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        while (sendmsg(s, &mh, MSG_NOSIGNAL) < 0)
                if (errno != EINTR)
                        return -errno;
        return 0;
}
