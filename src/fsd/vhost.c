/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vhost-user device side, as much as QEMU's vhost-user-fs-device uses:
 * one message at a time from the socket, each request run through a table.
 * Message numbers and layouts follow QEMU's docs/interop/vhost-user.rst;
 * the rings themselves are vring.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "fsd/vhost.h"

/* ---- vhost-user messages ---- */

enum {
        VHOST_USER_GET_FEATURES = 1,
        VHOST_USER_SET_FEATURES = 2,
        VHOST_USER_SET_OWNER = 3,
        VHOST_USER_RESET_OWNER = 4,
        VHOST_USER_SET_MEM_TABLE = 5,
        VHOST_USER_SET_LOG_BASE = 6,
        VHOST_USER_SET_LOG_FD = 7,
        VHOST_USER_SET_VRING_NUM = 8,
        VHOST_USER_SET_VRING_ADDR = 9,
        VHOST_USER_SET_VRING_BASE = 10,
        VHOST_USER_GET_VRING_BASE = 11,
        VHOST_USER_SET_VRING_KICK = 12,
        VHOST_USER_SET_VRING_CALL = 13,
        VHOST_USER_SET_VRING_ERR = 14,
        VHOST_USER_GET_PROTOCOL_FEATURES = 15,
        VHOST_USER_SET_PROTOCOL_FEATURES = 16,
        VHOST_USER_GET_QUEUE_NUM = 17,
        VHOST_USER_SET_VRING_ENABLE = 18,
};

#define VHOST_USER_VERSION 0x1
#define VHOST_USER_REPLY 0x4
#define VHOST_USER_NEED_REPLY 0x8
#define VHOST_USER_VRING_NOFD 0x100
#define VHOST_USER_F_PROTOCOL_FEATURES (1ULL << 30)
#define VIRTIO_F_VERSION_1 (1ULL << 32)
#define VIRTIO_RING_F_INDIRECT_DESC (1ULL << 28)
#define VHOST_USER_PROTOCOL_F_MQ 0

#define DEVICE_FEATURES (VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC | VHOST_USER_F_PROTOCOL_FEATURES)
#define PROTOCOL_FEATURES (1ULL << VHOST_USER_PROTOCOL_F_MQ)

struct vu_hdr {
        uint32_t request, flags, size;
};
struct vu_state {
        uint32_t index, num;
};
struct vu_addr {
        uint32_t index, flags;
        uint64_t desc, used, avail, log;
};
struct vu_memreg {
        uint64_t gpa, size, uaddr, mmap_offset;
};
struct vu_memtable {
        uint32_t nregions, padding;
        struct vu_memreg r[VU_MAX_REGIONS];
};
union vu_payload {
        uint64_t u64;
        struct vu_state state;
        struct vu_addr addr;
        struct vu_memtable mem;
        uint8_t raw[512];
};

void vu_dev_init(struct vu_dev *d, int sock, int epfd)
{
        memset(d, 0, sizeof(*d));
        d->sock = sock;
        d->epfd = epfd;
        for (unsigned i = 0; i < VU_MAX_QUEUES; i++)
                d->vq[i].kick_fd = d->vq[i].call_fd = -1;
}

static void vq_reset(struct vu_dev *d, struct vu_vq *q)
{
        if (q->kick_fd >= 0) {
                epoll_ctl(d->epfd, EPOLL_CTL_DEL, q->kick_fd, NULL);
                close(q->kick_fd);
        }
        if (q->call_fd >= 0)
                close(q->call_fd);
        memset(q, 0, sizeof(*q));
        q->kick_fd = q->call_fd = -1;
}

void vu_dev_fini(struct vu_dev *d)
{
        for (unsigned i = 0; i < VU_MAX_QUEUES; i++)
                vq_reset(d, &d->vq[i]);
        vu_mem_unmap(&d->mem);
}

static void close_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
}

static int reply(struct vu_dev *d, const struct vu_hdr *req, const void *p, uint32_t size)
{
        struct {
                struct vu_hdr h;
                uint8_t p[sizeof(union vu_payload)];
        } m;
        m.h = (struct vu_hdr){.request = req->request, .flags = VHOST_USER_VERSION | VHOST_USER_REPLY, .size = size};
        memcpy(m.p, p, size);
        ssize_t n = send(d->sock, &m, sizeof(m.h) + size, MSG_NOSIGNAL);
        return n == (ssize_t)(sizeof(m.h) + size) ? 0 : -EIO;
}

static int set_mem_table(struct vu_dev *d, const union vu_payload *p, uint32_t size, int *fds, size_t nfds)
{
        if (size < 8 || p->mem.nregions == 0 || p->mem.nregions > VU_MAX_REGIONS ||
            size < 8 + p->mem.nregions * sizeof(struct vu_memreg) || nfds != p->mem.nregions)
                return -EINVAL;
        struct vu_mem nm = {0};
        for (unsigned i = 0; i < p->mem.nregions; i++) {
                const struct vu_memreg *r = &p->mem.r[i];
                if (r->size == 0 || r->mmap_offset > UINT64_MAX - r->size || r->gpa > UINT64_MAX - r->size ||
                    r->uaddr > UINT64_MAX - r->size || r->mmap_offset + r->size > SIZE_MAX) {
                        vu_mem_unmap(&nm);
                        return -EINVAL;
                }
                size_t len = (size_t)(r->mmap_offset + r->size);
                void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fds[i], 0);
                if (map == MAP_FAILED) {
                        int e = errno;
                        vu_mem_unmap(&nm);
                        return -e;
                }
                nm.r[nm.n++] = (struct vu_region){.gpa = r->gpa, .size = r->size, .uaddr = r->uaddr,
                                                  .host = (uint8_t *)map + r->mmap_offset, .map = map, .map_len = len};
        }
        vu_mem_unmap(&d->mem);
        d->mem = nm;
        /* rings already set up move with the table */
        for (unsigned i = 0; i < VU_MAX_QUEUES; i++)
                if (d->vq[i].addr_set && vq_map(&d->vq[i], &d->mem) < 0)
                        d->vq[i].broken = true;
        return 0;
}

static struct vu_vq *queue(struct vu_dev *d, uint32_t index)
{
        return index < VU_MAX_QUEUES ? &d->vq[index] : NULL;
}

/* KICK/CALL/ERR carry a queue index and maybe an fd. */
static int vring_fd(struct vu_dev *d, uint32_t request, uint64_t v, int *fds, size_t nfds)
{
        struct vu_vq *q = queue(d, (uint32_t)(v & 0xff));
        bool nofd = v & VHOST_USER_VRING_NOFD;
        if (!q || (nofd ? nfds != 0 : nfds != 1))
                return -EINVAL;
        int fd = nofd ? -1 : fds[0];
        fds[0] = -1;
        if (request == VHOST_USER_SET_VRING_ERR) {
                if (fd >= 0)
                        close(fd);
                return 0;
        }
        if (request == VHOST_USER_SET_VRING_CALL) {
                if (q->call_fd >= 0)
                        close(q->call_fd);
                q->call_fd = fd;
                return 0;
        }
        if (q->kick_fd >= 0) {
                epoll_ctl(d->epfd, EPOLL_CTL_DEL, q->kick_fd, NULL);
                close(q->kick_fd);
        }
        q->kick_fd = fd;
        /* without protocol features a ring starts when it gets its kick fd */
        if (!(d->features & VHOST_USER_F_PROTOCOL_FEATURES))
                q->enabled = true;
        if (fd >= 0) {
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(q - d->vq)};
                if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                        return -errno;
        }
        return 0;
}

/* One vhost-user message, its payload and the fds that came with it. */
struct vu_msg {
        struct vu_hdr h;
        union vu_payload p;     /* zero past h.size */
        int fds[VU_MAX_REGIONS];
        size_t nfds;            /* closed after the message; a handler keeps one by setting it to -1 */
        struct vu_vq *q;        /* the queue a VU_STATE message names */
};

/* Read one message: 0, 1 when the peer closed, or -errno (-EPROTO for a
 * malformed one).  m->fds holds what came even on failure. */
static int recv_msg(struct vu_dev *d, struct vu_msg *m)
{
        char cbuf[CMSG_SPACE(sizeof(m->fds))];
        struct iovec iov = {.iov_base = &m->h, .iov_len = sizeof(m->h)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        ssize_t n;
        do
                n = recvmsg(d->sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n == 0)
                return 1;
        if (n < 0)
                return -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k && m->nfds < VU_MAX_REGIONS; i++)
                                memcpy(&m->fds[m->nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                }
        if (n != sizeof(m->h) || (mh.msg_flags & MSG_CTRUNC) || (m->h.flags & 0x3) != VHOST_USER_VERSION ||
            m->h.size > sizeof(m->p))
                return -EPROTO;
        memset(&m->p, 0, sizeof(m->p));
        if (m->h.size) {
                ssize_t got;
                do
                        got = recv(d->sock, &m->p, m->h.size, MSG_WAITALL);
                while (got < 0 && errno == EINTR);
                if (got != (ssize_t)m->h.size)
                        return -EPROTO;
        }
        return 0;
}

static int reply_u64(struct vu_dev *d, const struct vu_msg *m, uint64_t v)
{
        return reply(d, &m->h, &v, 8);
}

/* ---- the requests, one function each (the table below) ---- */

static int on_get_features(struct vu_dev *d, struct vu_msg *m)
{
        return reply_u64(d, m, DEVICE_FEATURES);
}

static int on_set_features(struct vu_dev *d, struct vu_msg *m)
{
        if (m->p.u64 & ~DEVICE_FEATURES)
                return -EINVAL;
        d->features = m->p.u64;
        return 0;
}

static int on_get_protocol_features(struct vu_dev *d, struct vu_msg *m)
{
        return reply_u64(d, m, PROTOCOL_FEATURES);
}

static int on_set_protocol_features(struct vu_dev *d, struct vu_msg *m)
{
        d->protocol_features = m->p.u64 & PROTOCOL_FEATURES;
        return 0;
}

static int on_get_queue_num(struct vu_dev *d, struct vu_msg *m)
{
        return reply_u64(d, m, VU_MAX_QUEUES);
}

static int on_set_owner(struct vu_dev *d, struct vu_msg *m)
{
        d->owner = true;
        return 0;
}

static int on_reset_owner(struct vu_dev *d, struct vu_msg *m)
{
        for (unsigned i = 0; i < VU_MAX_QUEUES; i++)
                vq_reset(d, &d->vq[i]);
        d->owner = false;
        return 0;
}

static int on_set_mem_table(struct vu_dev *d, struct vu_msg *m)
{
        /* the maps outlive the fds, closed after the message */
        return set_mem_table(d, &m->p, m->h.size, m->fds, m->nfds);
}

static int on_set_vring_num(struct vu_dev *d, struct vu_msg *m)
{
        uint32_t num = m->p.state.num;
        if (num == 0 || num > VU_MAX_QUEUE_SIZE || (num & (num - 1)))
                return -EINVAL;
        m->q->num = (uint16_t)num;
        return 0;
}

static int on_set_vring_addr(struct vu_dev *d, struct vu_msg *m)
{
        struct vu_vq *q;
        if (m->h.size != sizeof(struct vu_addr) || !(q = queue(d, m->p.addr.index)))
                return -EINVAL;
        q->desc_ua = m->p.addr.desc;
        q->avail_ua = m->p.addr.avail;
        q->used_ua = m->p.addr.used;
        q->addr_set = true;
        q->broken = vq_map(q, &d->mem) < 0;
        if (!q->broken)
                q->used_idx = vq_used_idx(q);
        return 0;
}

static int on_set_vring_base(struct vu_dev *d, struct vu_msg *m)
{
        m->q->last_avail = (uint16_t)m->p.state.num;
        m->q->used_idx = (uint16_t)m->p.state.num;
        return 0;
}

/* The ring stops: its kick fd goes, and its position is the answer. */
static int on_get_vring_base(struct vu_dev *d, struct vu_msg *m)
{
        struct vu_vq *q = m->q;
        struct vu_state s = {.index = m->p.state.index, .num = q->last_avail};
        q->enabled = false;
        if (q->kick_fd >= 0) {
                epoll_ctl(d->epfd, EPOLL_CTL_DEL, q->kick_fd, NULL);
                close(q->kick_fd);
                q->kick_fd = -1;
        }
        return reply(d, &m->h, &s, sizeof(s));
}

/* SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR */
static int on_set_vring_fd(struct vu_dev *d, struct vu_msg *m)
{
        return vring_fd(d, m->h.request, m->p.u64, m->fds, m->nfds);
}

static int on_set_vring_enable(struct vu_dev *d, struct vu_msg *m)
{
        m->q->enabled = m->p.state.num != 0;
        return 0;
}

/* What a request's payload must be, and whether it answers itself. */
enum {
        VU_U64 = 1u,     /* one u64 */
        VU_STATE = 2u,   /* a vu_state naming a queue, found for the handler (m->q) */
        VU_REPLIES = 4u, /* it replies itself: no NEED_REPLY acknowledgement */
};

static const struct vu_request {
        int (*fn)(struct vu_dev *d, struct vu_msg *m); /* NULL: ENOSYS */
        unsigned flags;
} requests[] = {
        [VHOST_USER_GET_FEATURES] = {on_get_features, VU_REPLIES},
        [VHOST_USER_SET_FEATURES] = {on_set_features, VU_U64},
        [VHOST_USER_SET_OWNER] = {on_set_owner, 0},
        [VHOST_USER_RESET_OWNER] = {on_reset_owner, 0},
        [VHOST_USER_SET_MEM_TABLE] = {on_set_mem_table, 0},
        [VHOST_USER_SET_VRING_NUM] = {on_set_vring_num, VU_STATE},
        [VHOST_USER_SET_VRING_ADDR] = {on_set_vring_addr, 0},
        [VHOST_USER_SET_VRING_BASE] = {on_set_vring_base, VU_STATE},
        [VHOST_USER_GET_VRING_BASE] = {on_get_vring_base, VU_STATE | VU_REPLIES},
        [VHOST_USER_SET_VRING_KICK] = {on_set_vring_fd, VU_U64},
        [VHOST_USER_SET_VRING_CALL] = {on_set_vring_fd, VU_U64},
        [VHOST_USER_SET_VRING_ERR] = {on_set_vring_fd, VU_U64},
        [VHOST_USER_GET_PROTOCOL_FEATURES] = {on_get_protocol_features, VU_REPLIES},
        [VHOST_USER_SET_PROTOCOL_FEATURES] = {on_set_protocol_features, VU_U64},
        [VHOST_USER_GET_QUEUE_NUM] = {on_get_queue_num, VU_REPLIES},
        [VHOST_USER_SET_VRING_ENABLE] = {on_set_vring_enable, VU_STATE},
};

/* Check m's payload against what its request takes, run it, and
 * acknowledge it if asked to. */
static int run_request(struct vu_dev *d, struct vu_msg *m)
{
        static const struct vu_request unknown = {NULL, 0};
        const struct vu_request *rq = m->h.request < ARRAY_SIZE(requests) ? &requests[m->h.request] : &unknown;
        if (((rq->flags & VU_U64) && m->h.size != 8) ||
            ((rq->flags & VU_STATE) && m->h.size != sizeof(struct vu_state)))
                return -EPROTO;
        if ((rq->flags & VU_STATE) && !(m->q = queue(d, m->p.state.index)))
                return -EINVAL;
        int r = rq->fn ? rq->fn(d, m) : -ENOSYS;
        if (r == 0 && !(rq->flags & VU_REPLIES) && (m->h.flags & VHOST_USER_NEED_REPLY))
                r = reply_u64(d, m, 0);
        return r;
}

int vu_dispatch(struct vu_dev *d)
{
        struct vu_msg m = {.nfds = 0};
        int r = recv_msg(d, &m);
        if (r == 0)
                r = run_request(d, &m);
        close_fds(m.fds, m.nfds);
        return r;
}
