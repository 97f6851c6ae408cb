/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the control-protocol decoder, as fed by a hostile peer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

/* Encode m again with its type's encoder. */
static int reencode(struct msb_buf *b, const struct msb_msg *m)
{
        switch (m->type) {
        case MSB_MSG_HELLO:
                return msb_enc_hello(b, m->u.hello.version, m->u.hello.peer);
        case MSB_MSG_SETUP:
                return msb_enc_setup(b, &m->u.setup);
        case MSB_MSG_EXEC:
                return msb_enc_exec(b, &m->u.exec);
        case MSB_MSG_STDIN:
        case MSB_MSG_STDOUT:
        case MSB_MSG_STDERR:
                return msb_enc_data(b, m->type, m->id, m->u.data.data, m->u.data.len);
        case MSB_MSG_STDIN_EOF:
                return msb_enc_id(b, m->type, m->id);
        case MSB_MSG_SHUTDOWN:
        case MSB_MSG_WAIT:
        case MSB_MSG_PROCS:
                return msb_enc_empty(b, m->type);
        case MSB_MSG_PROC_INFO:
                return msb_enc_proc_info(b, m->id, &m->u.proc_info);
        case MSB_MSG_SIGNAL:
                return msb_enc_u32(b, m->type, m->id, m->u.signo);
        case MSB_MSG_ACK:
                return msb_enc_u32(b, m->type, m->id, m->u.ack);
        case MSB_MSG_STARTED:
                return msb_enc_u32(b, m->type, m->id, m->u.pid);
        case MSB_MSG_ATTACH:
                return msb_enc_u32(b, m->type, m->id, m->u.flags);
        case MSB_MSG_STOP:
                return msb_enc_u32(b, m->type, m->id, m->u.grace_ms);
        case MSB_MSG_RESIZE:
                return msb_enc_resize(b, m->id, m->u.resize.rows, m->u.resize.cols);
        case MSB_MSG_EXIT:
                return msb_enc_exit(b, m->id, m->u.exit.kind, m->u.exit.value);
        case MSB_MSG_ERROR:
                return msb_enc_error(b, m->id, m->u.error.step, m->u.error.err, m->u.error.message);
        }
        return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* 1: the stream path, fed in two uneven pieces */
        struct msb_reader rd = {0};
        size_t cut = size ? data[0] % (size + 1) : 0;
        msb_reader_feed(&rd, data, cut);
        struct msb_msg m;
        int r;
        while ((r = msb_reader_next(&rd, &m)) == 1)
                msb_msg_free(&m);
        if (r == 0) {
                msb_reader_feed(&rd, data + cut, size - cut);
                while ((r = msb_reader_next(&rd, &m)) == 1)
                        msb_msg_free(&m);
        }
        msb_reader_free(&rd);
        /* 2: every payload decoder on the raw bytes; what decodes must
         * encode again to the very same bytes (the decoder accepts one
         * layout only), which decode again */
        if (size >= 1) {
                uint16_t type = (uint16_t)(data[0] % (MSB_MSG_TYPE_MAX + 2));
                const uint8_t *pl = data + 1;
                size_t plen = size - 1;
                if (msb_msg_decode(type, pl, plen, &m) == 0) {
                        struct msb_buf b = {0};
                        if (reencode(&b, &m) != 0 || msb_buf_pending(&b) != MSB_PROTO_HDR_SIZE + plen ||
                            memcmp(msb_buf_head(&b) + MSB_PROTO_HDR_SIZE, pl, plen) != 0)
                                abort();
                        struct msb_msg again;
                        if (msb_msg_decode(type, msb_buf_head(&b) + MSB_PROTO_HDR_SIZE, plen, &again) != 0)
                                abort();
                        msb_msg_free(&again);
                        msb_buf_free(&b);
                        msb_msg_free(&m);
                }
        }
        return 0;
}
