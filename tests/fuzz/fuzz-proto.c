/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the control-protocol decoder, as fed by a hostile peer. */
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

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
        /* 2: every payload decoder on the raw bytes */
        if (size >= 1) {
                uint16_t type = (uint16_t)(data[0] % (MSB_MSG_TYPE_MAX + 2));
                if (msb_msg_decode(type, data + 1, size - 1, &m) == 0) {
                        /* re-encode what decoded: must be accepted again */
                        struct msb_buf b = {0};
                        if (m.type == MSB_MSG_RUN)
                                msb_enc_run(&b, &m.u.run);
                        msb_buf_free(&b);
                        msb_msg_free(&m);
                }
        }
        return 0;
}
