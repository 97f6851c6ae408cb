/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the file routines' records (proto/filerec.c) as a hostile guest writes them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto/filerec.h"

/* The record decoded, encoded again: the same bytes (there is one way to write each). */
static void reencode(const struct filerec *r, const uint8_t *p, long n)
{
        struct msb_buf b = {0};
        struct stat st = {0};
        switch (r->kind) {
        case FILEREC_INFO:
                /* times past what a timespec turns back into exactly are clamped */
                if (r->mtime_ns > 9000000000000000000LL || r->mtime_ns < -9000000000000000000LL)
                        return;
                st.st_mode = r->mode;
                st.st_size = (off_t)r->size;
                st.st_uid = r->uid;
                st.st_gid = r->gid;
                st.st_mtim.tv_sec = (time_t)(r->mtime_ns / 1000000000);
                st.st_mtim.tv_nsec = (long)(r->mtime_ns % 1000000000);
                if (st.st_mtim.tv_nsec < 0) {
                        st.st_mtim.tv_sec--;
                        st.st_mtim.tv_nsec += 1000000000;
                }
                if (filerec_put_info(&b, r->path, &st, r->link) < 0)
                        abort();
                break;
        case FILEREC_EVENT:
                if (filerec_put_event(&b, r->op, r->type, r->path) < 0)
                        abort();
                break;
        case FILEREC_CUT:
                filerec_put_cut(&b);
                break;
        case FILEREC_SIZE:
                filerec_put_size(&b, r->size);
                break;
        default:
                abort();
        }
        if (msb_buf_pending(&b) != (size_t)n || memcmp(msb_buf_head(&b), p, (size_t)n))
                abort();
        msb_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* a stream of records, as the host reads them */
        for (size_t off = 0; off < size;) {
                struct filerec r;
                long k = filerec_decode(data + off, size - off, &r);
                if (k <= 0)
                        break;
                if ((size_t)k > size - off || (size_t)k > FILEREC_MAX + 4)
                        abort();
                if ((r.kind == FILEREC_INFO || r.kind == FILEREC_EVENT) &&
                    (r.path[0] != '/' || strlen(r.path) > FILEREC_MAX_PATH || !r.type))
                        abort();
                reencode(&r, data + off, k);
                off += (size_t)k;
        }
        return 0;
}
