/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueues over guest memory received as fds: a chain taken from
 * the available ring, checked against the memory table, its request copied
 * out, the handler's reply copied in and the chain returned on the used
 * ring.  Ring layout follows the virtio 1.1 specification, section 2.6.
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

/* ---- guest memory ---- */

static void *region_ptr(const struct vu_region *r, uint64_t base, uint64_t addr, uint64_t len)
{
        if (addr < base || len > r->size)
                return NULL;
        uint64_t off = addr - base;
        if (off > r->size - len)
                return NULL;
        return r->host + off;
}

void *vu_gpa(const struct vu_mem *m, uint64_t gpa, uint64_t len)
{
        for (unsigned i = 0; i < m->n; i++) {
                void *p = region_ptr(&m->r[i], m->r[i].gpa, gpa, len);
                if (p)
                        return p;
        }
        return NULL;
}

void *vu_uva(const struct vu_mem *m, uint64_t uva, uint64_t len)
{
        for (unsigned i = 0; i < m->n; i++) {
                void *p = region_ptr(&m->r[i], m->r[i].uaddr, uva, len);
                if (p)
                        return p;
        }
        return NULL;
}

void vu_mem_unmap(struct vu_mem *m)
{
        for (unsigned i = 0; i < m->n; i++)
                if (m->r[i].map)
                        munmap(m->r[i].map, m->r[i].map_len);
        m->n = 0;
}

/* ---- split virtqueue ---- */

struct vring_desc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        uint16_t next;
};
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_used_elem {
        uint32_t id;
        uint32_t len;
};

static size_t avail_size(uint16_t num)
{
        return 4 + 2 * (size_t)num + 2;
}
static size_t used_size(uint16_t num)
{
        return 4 + 8 * (size_t)num + 2;
}

int vq_map(struct vu_vq *q, const struct vu_mem *m)
{
        q->desc = q->avail = q->used = NULL;
        if (!q->addr_set || q->num == 0)
                return -EINVAL;
        void *d = vu_uva(m, q->desc_ua, 16 * (uint64_t)q->num);
        void *a = vu_uva(m, q->avail_ua, avail_size(q->num));
        void *u = vu_uva(m, q->used_ua, used_size(q->num));
        if (!d || !a || !u || ((uintptr_t)d & 15) || ((uintptr_t)a & 1) || ((uintptr_t)u & 3))
                return -EFAULT;
        q->desc = d;
        q->avail = a;
        q->used = u;
        return 0;
}

static uint16_t load16(const void *p)
{
        return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

/* Append [gpa, gpa+len) to iov, one entry per region crossed. */
static int add_seg(const struct vu_mem *m, uint64_t gpa, uint32_t len, struct iovec *iov, unsigned *n)
{
        while (len > 0) {
                const struct vu_region *r = NULL;
                for (unsigned i = 0; i < m->n; i++)
                        if (gpa >= m->r[i].gpa && gpa - m->r[i].gpa < m->r[i].size) {
                                r = &m->r[i];
                                break;
                        }
                if (!r || *n >= VU_MAX_SEGS)
                        return -EIO;
                uint64_t off = gpa - r->gpa;
                uint64_t chunk = r->size - off < len ? r->size - off : len;
                iov[*n] = (struct iovec){.iov_base = r->host + off, .iov_len = chunk};
                (*n)++;
                gpa += chunk;
                len -= (uint32_t)chunk;
        }
        return 0;
}

static int walk(const struct vu_mem *m, const struct vring_desc *table, uint32_t tsize, uint16_t first, bool indirect,
                bool nested, struct vu_elem *e, unsigned *budget)
{
        uint32_t i = first;
        for (;;) {
                if (i >= tsize || (*budget)-- == 0)
                        return -EIO; /* out of range or a loop */
                struct vring_desc d;
                memcpy(&d, &table[i], sizeof(d));
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                if (d.flags & VRING_DESC_F_INDIRECT) {
                        if (!indirect || nested || (d.flags & VRING_DESC_F_NEXT) || d.len == 0 || d.len % 16 ||
                            d.len / 16 > VU_MAX_QUEUE_SIZE)
                                return -EIO;
                        const struct vring_desc *t = vu_gpa(m, d.addr, d.len);
                        if (!t || ((uintptr_t)t & 7))
                                return -EIO;
                        unsigned ib = d.len / 16;
                        return walk(m, t, d.len / 16, 0, indirect, true, e, &ib);
                }
                if (d.flags & VRING_DESC_F_WRITE) {
                        if (add_seg(m, d.addr, d.len, e->out, &e->nout) < 0)
                                return -EIO;
                        e->out_len += d.len;
                } else {
                        /* the driver puts all readable parts first */
                        if (e->nout || add_seg(m, d.addr, d.len, e->in, &e->nin) < 0)
                                return -EIO;
                        e->in_len += d.len;
                }
                if (e->in_len + e->out_len > (64u << 20))
                        return -EIO;
                if (!(d.flags & VRING_DESC_F_NEXT))
                        return 0;
                i = d.next;
        }
}

int vq_pop(struct vu_vq *q, const struct vu_mem *m, bool indirect, struct vu_elem *e)
{
        if (q->broken || !q->desc)
                return -EIO;
        const uint8_t *avail = q->avail;
        uint16_t idx = load16(avail + 2);
        if (idx == q->last_avail)
                return 0;
        if ((uint16_t)(idx - q->last_avail) > q->num) {
                q->broken = true;
                return -EIO;
        }
        uint16_t head;
        memcpy(&head, avail + 4 + 2 * (q->last_avail % q->num), 2);
        q->last_avail++;
        e->head = head;
        e->nin = e->nout = 0;
        e->in_len = e->out_len = 0;
        unsigned budget = q->num;
        if (head >= q->num || walk(m, q->desc, q->num, head, indirect, false, e, &budget) < 0) {
                q->broken = true;
                return -EIO;
        }
        return 1;
}

void vq_push(struct vu_vq *q, uint16_t head, uint32_t len)
{
        uint8_t *used = q->used;
        struct vring_used_elem ue = {.id = head, .len = len};
        memcpy(used + 4 + 8 * (q->used_idx % q->num), &ue, sizeof(ue));
        q->used_idx++;
        __atomic_store_n((uint16_t *)(used + 2), q->used_idx, __ATOMIC_RELEASE);
}

void vq_notify(struct vu_vq *q)
{
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint16_t flags = load16(q->avail);
        if (!(flags & VRING_AVAIL_F_NO_INTERRUPT) && q->call_fd >= 0)
                eventfd_write(q->call_fd, 1);
}

static size_t gather(const struct vu_elem *e, uint8_t *buf, size_t max)
{
        size_t n = 0;
        for (unsigned i = 0; i < e->nin && n < max; i++) {
                size_t c = e->in[i].iov_len < max - n ? e->in[i].iov_len : max - n;
                memcpy(buf + n, e->in[i].iov_base, c);
                n += c;
        }
        return n;
}

static size_t scatter(const struct vu_elem *e, const uint8_t *buf, size_t len)
{
        size_t n = 0;
        for (unsigned i = 0; i < e->nout && n < len; i++) {
                size_t c = e->out[i].iov_len < len - n ? e->out[i].iov_len : len - n;
                memcpy(e->out[i].iov_base, buf + n, c);
                n += c;
        }
        return n;
}

int vq_process(struct vu_vq *q, const struct vu_mem *m, bool indirect, vu_handler h, void *ctx, uint8_t *inbuf,
               size_t inmax, uint8_t *outbuf, size_t outmax)
{
        static struct vu_elem e; /* large; one request at a time */
        int done = 0, r;
        while ((r = vq_pop(q, m, indirect, &e)) > 0) {
                /* a request larger than the buffer is passed truncated; the
                 * handler sees its header's length disagree and refuses it
                 * (or, for bulk data, reads the rest from e) */
                size_t inlen = gather(&e, inbuf, e.in_len > VU_COPY_MAX ? VU_COPY_PREFIX : inmax);
                size_t cap = e.out_len < outmax ? e.out_len : outmax;
                size_t outlen = h(ctx, inbuf, inlen, &e, outbuf, cap);
                if (outlen > cap)
                        outlen = cap;
                vq_push(q, e.head, (uint32_t)scatter(&e, outbuf, outlen));
                done++;
        }
        if (done)
                vq_notify(q);
        return r < 0 ? r : done;
}

uint16_t vq_used_idx(const struct vu_vq *q)
{
        return load16((const uint8_t *)q->used + 2);
}
