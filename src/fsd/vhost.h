/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device side of vhost-user, as much as QEMU's vhost-user-fs-device uses
 * (vhost.c), and split virtqueues over guest memory received as fds
 * (vring.c).
 *
 * Everything the guest writes into its memory (ring indexes, descriptors,
 * addresses, lengths) is read once into local variables and checked against
 * the memory table before use; a malformed chain marks the queue broken and
 * nothing more is taken from it.  The guest can only hurt itself.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define VU_MAX_REGIONS 8
#define VU_MAX_QUEUES 2      /* hiprio + one request queue */
#define VU_MAX_QUEUE_SIZE 1024
#define VU_MAX_SEGS 1024     /* iovecs per request, both directions together */

struct vu_region {
        uint64_t gpa, size, uaddr;
        uint8_t *host;       /* gpa maps here */
        void *map;           /* what munmap gets */
        size_t map_len;
};

struct vu_mem {
        struct vu_region r[VU_MAX_REGIONS];
        unsigned n;
};

/* Host pointer for [addr, addr+len) in guest-physical (vu_gpa) or QEMU
 * virtual (vu_uva) terms, or NULL unless one region holds all of it. */
void *vu_gpa(const struct vu_mem *m, uint64_t gpa, uint64_t len);
void *vu_uva(const struct vu_mem *m, uint64_t uva, uint64_t len);
void vu_mem_unmap(struct vu_mem *m);

struct vu_vq {
        uint16_t num;             /* queue size, a power of two */
        uint64_t desc_ua, avail_ua, used_ua;
        bool addr_set;
        void *desc, *avail, *used; /* host pointers, set by vq_map */
        uint16_t last_avail, used_idx;
        int kick_fd, call_fd;
        bool enabled, broken;
};

struct vu_elem {
        uint16_t head;
        struct iovec in[VU_MAX_SEGS]; /* device-readable (the request) */
        unsigned nin;
        struct iovec out[VU_MAX_SEGS]; /* device-writable (the reply) */
        unsigned nout;
        size_t in_len, out_len;
};

/* Resolve the ring addresses through the memory table; -EFAULT if any ring
 * is not wholly inside one region. */
int vq_map(struct vu_vq *q, const struct vu_mem *m);
/* Take the next chain: 1 taken, 0 ring empty, -EIO malformed (the queue is
 * then marked broken). */
int vq_pop(struct vu_vq *q, const struct vu_mem *m, bool indirect, struct vu_elem *e);
/* Return a chain with len bytes written into its device-writable part. */
void vq_push(struct vu_vq *q, uint16_t head, uint32_t len);
/* Interrupt the driver unless it asked not to be. */
void vq_notify(struct vu_vq *q);
/* The used index the driver's ring shows now (a ring just set up). */
uint16_t vq_used_idx(const struct vu_vq *q);

/* Turns one request (bytes copied out of guest memory) into a reply written
 * to out (capacity outcap); returns the reply length, 0 for no reply.  For a
 * request larger than VU_COPY_MAX only its first VU_COPY_PREFIX bytes are
 * copied (inlen < e->in_len): the handler may read the rest (bulk data such
 * as a write's payload, which the guest may change without harm) straight
 * from e->in.  e is NULL when a handler is called directly. */
typedef size_t (*vu_handler)(void *ctx, const uint8_t *in, size_t inlen, const struct vu_elem *e, uint8_t *out,
                             size_t outcap);
#define VU_COPY_MAX (256u << 10)
#define VU_COPY_PREFIX 4096u

/* Take and answer everything the ring holds.  Request bytes are copied out
 * of guest memory before they are parsed, so the guest cannot change them
 * underneath; buffers are sized for inmax/outmax bytes. */
int vq_process(struct vu_vq *q, const struct vu_mem *m, bool indirect, vu_handler h, void *ctx, uint8_t *inbuf,
               size_t inmax, uint8_t *outbuf, size_t outmax);

struct vu_dev {
        int sock;
        uint64_t features, protocol_features;
        struct vu_mem mem;
        struct vu_vq vq[VU_MAX_QUEUES];
        int epfd;                 /* kick fds are added here, data.u32 = queue */
        bool owner;
};

void vu_dev_init(struct vu_dev *d, int sock, int epfd);
void vu_dev_fini(struct vu_dev *d);
/* Read and answer one vhost-user message: 0 handled, 1 peer closed, <0 a
 * protocol error (the connection should be dropped). */
int vu_dispatch(struct vu_dev *d);
