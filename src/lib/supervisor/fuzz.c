/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fuzzer's way into the supervisor (tests/fuzz/fuzz-supervisor.c):
 * guest and client frames through the same handlers as in the loop.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "supervisor.h"

/* A supervisor with no VM behind it: frames from a hostile guest and from
 * three clients, interleaved as data says (each chunk: one selector byte,
 * a little-endian u16 length, the bytes), go through the same handlers as
 * in the loop.  Nothing is read from or written to a real fd. */
void sup_fuzz(const uint8_t *data, size_t size)
{
        struct vm vm = {0};
        char *argv[] = {"sh", NULL}, *env[] = {"A=b", NULL};
        vm.main = (struct msb_exec_msg){.id = VM_MAIN_ID, .flags = MSB_EXEC_MAIN | MSB_EXEC_STDIN, .workdir = "",
                                        .user = "", .argc = 1, .argv = argv, .envc = 1, .env = env, .home = "",
                                        .exec_path = ""};
        vm.env = env;
        vm.user = "";
        vm.boot_deadline = INT64_MAX;
        struct msb_run_opts o = {0};
        struct sup s = {.name = "fuzz", .vm = &vm, .o = &o, .lfd = -1, .sfd = -1, .lock_fd = -1, .ready_fd = -1,
                        .log_fd = -1, .next_id = VM_MAIN_ID + 1, .status = -1, .main_pending = size && (data[0] & 1)};
        if (!s.main_pending)
                sup_proc_new(&s, VM_MAIN_ID, true)->stdin = true;
        struct msb_ctx quiet = {0}; /* no log function: msb_log says nothing */
        s.ctx = &quiet;
        struct conn *cl[3];
        for (int i = 0; i < 3; i++) {
                cl[i] = xcalloc(1, sizeof(*cl[i]));
                cl[i]->fd = -1;
                cl[i]->next = s.conns;
                s.conns = cl[i];
                s.nconns++;
        }
        size_t off = size ? 1 : 0;
        while (off + 3 <= size && !s.done) {
                unsigned sel = data[off] % 4;
                size_t n = (size_t)(data[off + 1] | data[off + 2] << 8);
                off += 3;
                if (n > size - off)
                        n = size - off;
                struct msb_reader *rd = NULL;
                struct conn *c = NULL;
                if (sel == 0)
                        rd = &s.rd;
                else {
                        for (struct conn *x = s.conns; x; x = x->next)
                                if (x == cl[sel - 1])
                                        c = x;
                        if (c)
                                rd = &c->rd;
                }
                if (rd) {
                        msb_reader_feed(rd, data + off, n);
                        struct msb_msg m;
                        int q;
                        while (!s.done && (q = msb_reader_next(rd, &m)) == 1) {
                                int r = c ? sup_client_msg(&s, c, &m) : sup_guest_msg(&s, &m);
                                msb_msg_free(&m);
                                if (r < 0)
                                        break;
                        }
                }
                off += n;
                /* what the loop does between rounds */
                sup_idle_update(&s, mono_ms());
                for (int i = 0; i < 3; i++)
                        for (struct conn *x = s.conns; x; x = x->next)
                                if (x == cl[i] && x->closing) {
                                        sup_conn_close(&s, x);
                                        cl[i] = NULL;
                                        break;
                                }
                if (msb_buf_pending(&vm.out) > GUEST_OUTQ_HIGH)
                        msb_buf_free(&vm.out); /* the guest read it */
        }
        sup_farewell(&s, 0);
        while (s.procs)
                sup_proc_free(&s, s.procs);
        kept_ended_free(&s);
        msb_buf_free(&vm.out);
        msb_reader_free(&s.rd);
        free(s.error);
}
