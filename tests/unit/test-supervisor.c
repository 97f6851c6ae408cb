/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor's process handling without a VM: kept processes (backlog,
 * readers, one stdin writer, records after the end, caps), requests by id,
 * and that processes not kept keep their one client's flow control. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "check.h"
#include "lib/supervisor/supervisor.h"

static struct vm vm;
static struct sup s;
static struct msb_ctx quiet;
static struct msb_run_opts o;
static char *main_argv[] = {"sleep", "inf", NULL}, *env[] = {"A=b", NULL};

static void setup(void)
{
        vm = (struct vm){0};
        vm.main = (struct msb_exec_msg){.id = VM_MAIN_ID, .flags = MSB_EXEC_MAIN, .workdir = "", .user = "",
                                        .argc = 2, .argv = main_argv, .envc = 1, .env = env, .home = "",
                                        .exec_path = ""};
        vm.env = env;
        vm.user = "";
        vm.boot_deadline = INT64_MAX;
        s = (struct sup){.name = "t", .vm = &vm, .o = &o, .lfd = -1, .sfd = -1, .lock_fd = -1, .ready_fd = -1,
                         .log_fd = -1, .next_id = VM_MAIN_ID + 1, .status = -1, .ctx = &quiet, .have_hello = true};
        sup_proc_new(&s, VM_MAIN_ID, true);
}

static void teardown(void)
{
        while (s.conns)
                sup_conn_close(&s, s.conns);
        while (s.procs)
                sup_proc_free(&s, s.procs);
        kept_ended_free(&s);
        msb_buf_free(&vm.out);
        msb_reader_free(&s.rd);
        free(s.error);
}

static struct conn *conn_new(void)
{
        struct conn *c = xcalloc(1, sizeof(*c));
        c->fd = -1;
        c->hello = true;
        c->next = s.conns;
        s.conns = c;
        s.nconns++;
        return c;
}

/* Every frame in b through the handlers (c's, or the guest's for NULL):
 * the first negative result, else 0. */
static int feed(struct conn *c, struct msb_buf *b)
{
        struct msb_reader *rd = c ? &c->rd : &s.rd;
        msb_reader_feed(rd, msb_buf_head(b), msb_buf_pending(b));
        msb_buf_free(b);
        struct msb_msg m;
        int q, r = 0;
        while (r == 0 && (q = msb_reader_next(rd, &m)) == 1) {
                r = c ? sup_client_msg(&s, c, &m) : sup_guest_msg(&s, &m);
                msb_msg_free(&m);
        }
        return r;
}

static int send_u32(struct conn *c, uint16_t type, uint32_t id, uint32_t v)
{
        struct msb_buf b = {0};
        msb_enc_u32(&b, type, id, v);
        return feed(c, &b);
}

static int send_data(struct conn *c, uint16_t type, uint32_t id, const void *d, size_t n)
{
        struct msb_buf b = {0};
        msb_enc_data(&b, type, id, d, n);
        return feed(c, &b);
}

static int send_id(struct conn *c, uint16_t type, uint32_t id)
{
        struct msb_buf b = {0};
        msb_enc_id(&b, type, id);
        return feed(c, &b);
}

static int send_exit(uint32_t id, uint32_t code)
{
        struct msb_buf b = {0};
        msb_enc_exit(&b, id, MSB_EXIT_CODE, code);
        return feed(NULL, &b);
}

static int exec_on(struct conn *c, uint32_t flags, const char *cmd)
{
        char *argv[] = {"sh", "-c", (char *)cmd, NULL};
        struct msb_exec_msg ex = {.id = 1, .flags = flags, .workdir = "", .user = "", .argc = 3, .argv = argv,
                                  .home = "", .exec_path = ""};
        struct msb_buf b = {0};
        msb_enc_exec(&b, &ex);
        return feed(c, &b);
}

/* What a queue held, by type; the queue is emptied. */
struct got {
        unsigned n[MSB_MSG_TYPE_MAX + 1];
        size_t data;        /* STDOUT + STDERR (or STDIN) bytes */
        char text[512];     /* the first of them */
        uint32_t ack;       /* ACK bytes, summed */
        uint32_t exec_flags, exec_id;
        int err;            /* the last ERROR's errno */
        char errmsg[256];
        uint32_t exit_value, signo;
        struct {
                uint32_t id, pid, flags, exit_value;
                uint64_t dropped;
        } info[128];
        unsigned ninfo;
};

static void take(struct msb_buf *q, struct got *g)
{
        memset(g, 0, sizeof(*g));
        if (!msb_buf_pending(q))
                return;
        struct msb_reader rd = {0};
        msb_reader_feed(&rd, msb_buf_head(q), msb_buf_pending(q));
        msb_buf_free(q);
        struct msb_msg m;
        while (msb_reader_next(&rd, &m) == 1) {
                g->n[m.type]++;
                if (m.type == MSB_MSG_STDOUT || m.type == MSB_MSG_STDERR || m.type == MSB_MSG_STDIN) {
                        size_t k = strlen(g->text), left = sizeof(g->text) - 1 - k;
                        memcpy(g->text + k, m.u.data.data, m.u.data.len < left ? m.u.data.len : left);
                        g->data += m.u.data.len;
                } else if (m.type == MSB_MSG_ACK)
                        g->ack += m.u.ack;
                else if (m.type == MSB_MSG_EXEC) {
                        g->exec_flags = m.u.exec.flags;
                        g->exec_id = m.id;
                } else if (m.type == MSB_MSG_ERROR) {
                        g->err = m.u.error.err;
                        snprintf(g->errmsg, sizeof(g->errmsg), "%s", m.u.error.message);
                } else if (m.type == MSB_MSG_EXIT)
                        g->exit_value = m.u.exit.value;
                else if (m.type == MSB_MSG_SIGNAL)
                        g->signo = m.u.signo;
                else if (m.type == MSB_MSG_PROC_INFO && g->ninfo < ARRAY_SIZE(g->info)) {
                        g->info[g->ninfo].id = m.id;
                        g->info[g->ninfo].pid = m.u.proc_info.pid;
                        g->info[g->ninfo].flags = m.u.proc_info.flags;
                        g->info[g->ninfo].exit_value = m.u.proc_info.exit_value;
                        g->info[g->ninfo++].dropped = m.u.proc_info.dropped;
                }
                msb_msg_free(&m);
        }
        msb_reader_free(&rd);
}

/* A kept `cat` (id 2): started, read, left; its output acknowledged by
 * the supervisor; a later reader gets the backlog; the exec never told
 * the guest of KEEP and nothing ends it when its client goes. */
static void test_kept_outlives_client(void)
{
        setup();
        struct got g;
        struct conn *c = conn_new();
        CHECK_INT(exec_on(c, MSB_EXEC_STDIN | MSB_EXEC_KEEP, "cat"), 0);
        take(&c->out, &g);
        CHECK_INT(g.ninfo, 1);
        CHECK_INT(g.info[0].id, 2);
        CHECK_INT(g.info[0].flags, MSB_PROC_KEPT | MSB_PROC_STDIN);
        take(&vm.out, &g);
        CHECK_INT(g.n[MSB_MSG_EXEC], 1);
        CHECK_INT(g.exec_id, 2);
        CHECK(!(g.exec_flags & MSB_EXEC_KEEP));
        CHECK(g.exec_flags & MSB_EXEC_STDIN);
        CHECK_INT(send_u32(NULL, MSB_MSG_STARTED, 2, 77), 0);
        CHECK_INT(send_data(NULL, MSB_MSG_STDOUT, 2, "one\n", 4), 0);
        take(&c->out, &g);
        CHECK_INT(g.n[MSB_MSG_STARTED], 1);
        CHECK_STR(g.text, "one\n");
        sup_conn_close(&s, c);
        take(&vm.out, &g);
        CHECK_INT(g.n[MSB_MSG_STDIN_EOF] + g.n[MSB_MSG_SIGNAL], 0);
        CHECK_INT(s.nkept, 1);
        /* nobody reads: the supervisor acknowledges, half a window at a time */
        static char chunk[MSB_PROTO_DATA_CHUNK];
        memset(chunk, 'x', sizeof(chunk));
        for (int i = 0; i < 7; i++)
                CHECK_INT(send_data(NULL, MSB_MSG_STDERR, 2, chunk, sizeof(chunk)), 0);
        take(&vm.out, &g);
        CHECK_INT(g.ack, 4 + 4 * sizeof(chunk)); /* the rest is less than half a window */
        /* a later reader: its record (pid known), then what it missed */
        c = conn_new();
        CHECK_INT(send_u32(c, MSB_MSG_ATTACH, 2, MSB_ATTACH_INFO), 0);
        take(&c->out, &g);
        CHECK_INT(g.ninfo, 1);
        CHECK_INT(g.info[0].pid, 77);
        CHECK_INT(g.info[0].dropped, 0);
        CHECK_INT(g.n[MSB_MSG_STDOUT], 1);
        CHECK_INT(g.n[MSB_MSG_STDERR], 7);
        CHECK(!strncmp(g.text, "one\nxxx", 7));
        /* and live output after it, to it and a second reader */
        struct conn *c2 = conn_new();
        CHECK_INT(send_u32(c2, MSB_MSG_ATTACH, 2, MSB_ATTACH_NO_BACKLOG), 0);
        CHECK_INT(send_data(NULL, MSB_MSG_STDOUT, 2, "two\n", 4), 0);
        take(&c2->out, &g);
        CHECK_STR(g.text, "two\n");
        CHECK_INT(g.ninfo, 0);
        take(&c->out, &g);
        CHECK_STR(g.text, "two\n");
        /* readers' ACKs are taken and ignored */
        CHECK_INT(send_u32(c, MSB_MSG_ACK, 1, 4), 0);
        teardown();
}

/* The backlog keeps the newest SUP_BACKLOG_MAX bytes, and says how much
 * it let go; a reader that stops reading is dropped, the process goes on. */
static void test_backlog_and_slow_reader(void)
{
        setup();
        struct got g;
        struct conn *c = conn_new();
        CHECK_INT(exec_on(c, MSB_EXEC_KEEP, "yes"), 0);
        CHECK_INT(send_u32(NULL, MSB_MSG_STARTED, 2, 9), 0);
        msb_buf_free(&c->out);
        static char chunk[MSB_PROTO_DATA_CHUNK];
        memset(chunk, 'y', sizeof(chunk));
        /* 1.5 MiB while c reads nothing */
        for (int i = 0; i < 48; i++)
                CHECK_INT(send_data(NULL, MSB_MSG_STDOUT, 2, chunk, sizeof(chunk)), 0);
        CHECK(c->closing);
        CHECK(c->p == NULL);
        CHECK_INT(msb_buf_pending(&c->out), 0);
        CHECK(msb_buf_pending(&sup_proc_find(&s, 2)->kept->backlog) <= SUP_BACKLOG_MAX);
        take(&vm.out, &g);
        CHECK_INT(g.ack, 48 * sizeof(chunk)); /* never held back */
        struct conn *r = conn_new();
        CHECK_INT(send_u32(r, MSB_MSG_ATTACH, 2, MSB_ATTACH_INFO), 0);
        take(&r->out, &g);
        CHECK_INT(g.ninfo, 1);
        CHECK(g.info[0].dropped > 0);
        CHECK(g.data <= SUP_BACKLOG_MAX);
        CHECK(g.data >= SUP_BACKLOG_MAX - MSB_PROTO_DATA_CHUNK);
        CHECK_INT(g.info[0].dropped + g.data, 48 * sizeof(chunk));
        teardown();
}

/* One writer at a time; a writer that goes leaves stdin open, and what it
 * had in flight never lets the next push the guest past its window. */
static void test_one_writer(void)
{
        setup();
        struct got g;
        struct conn *c = conn_new();
        CHECK_INT(exec_on(c, MSB_EXEC_STDIN | MSB_EXEC_KEEP, "cat"), 0);
        sup_conn_close(&s, c);
        take(&vm.out, &g);
        struct conn *a = conn_new(), *b = conn_new();
        CHECK_INT(send_u32(a, MSB_MSG_ATTACH, 2, MSB_ATTACH_STDIN | MSB_ATTACH_NO_OUTPUT | MSB_ATTACH_INFO), 0);
        CHECK_INT(send_u32(b, MSB_MSG_ATTACH, 2, MSB_ATTACH_STDIN), 0);
        take(&b->out, &g);
        CHECK_INT(g.err, EBUSY);
        CHECK(strstr(g.errmsg, "process 2 has a stdin writer already") != NULL);
        sup_conn_close(&s, b);
        /* a fills the window; the guest takes none of it; a goes */
        static char chunk[MSB_PROTO_DATA_CHUNK];
        memset(chunk, 'a', sizeof(chunk));
        for (unsigned i = 0; i < MSB_PROTO_WINDOW / sizeof(chunk); i++)
                CHECK_INT(send_data(a, MSB_MSG_STDIN, 1, chunk, sizeof(chunk)), 0);
        take(&vm.out, &g);
        CHECK_INT(g.data, MSB_PROTO_WINDOW);
        sup_conn_close(&s, a);
        take(&vm.out, &g);
        CHECK_INT(g.n[MSB_MSG_STDIN_EOF], 0);
        /* the next writer's bytes wait for the guest's room */
        b = conn_new();
        CHECK_INT(send_u32(b, MSB_MSG_ATTACH, 2, MSB_ATTACH_STDIN | MSB_ATTACH_NO_OUTPUT), 0);
        CHECK_INT(send_data(b, MSB_MSG_STDIN, 1, "bb", 2), 0);
        CHECK_INT(send_id(b, MSB_MSG_STDIN_EOF, 1), 0);
        take(&vm.out, &g);
        CHECK_INT(g.data, 0);
        CHECK_INT(g.n[MSB_MSG_STDIN_EOF], 0);
        /* the guest took a's: b's go, then EOF; b hears of its own only */
        CHECK_INT(send_u32(NULL, MSB_MSG_ACK, 2, MSB_PROTO_WINDOW), 0);
        take(&b->out, &g);
        CHECK_INT(g.ack, 0);
        take(&vm.out, &g);
        CHECK_STR(g.text, "bb");
        CHECK_INT(g.n[MSB_MSG_STDIN_EOF], 1);
        CHECK_INT(send_u32(NULL, MSB_MSG_ACK, 2, 2), 0);
        take(&b->out, &g);
        CHECK_INT(g.ack, 2);
        /* an ACK beyond what is in flight breaks the protocol */
        CHECK_INT(send_u32(NULL, MSB_MSG_ACK, 2, 1), -EPROTO);
        /* closed: no writer may come */
        sup_conn_close(&s, b);
        c = conn_new();
        CHECK_INT(send_u32(c, MSB_MSG_ATTACH, 2, MSB_ATTACH_STDIN), 0);
        take(&c->out, &g);
        CHECK_INT(g.err, EPIPE);
        teardown();
}

/* The end: readers hear it, the record stays with its status and output,
 * later readers get both; signals then say it exited. */
static void test_after_the_end(void)
{
        setup();
        struct got g;
        struct conn *c = conn_new();
        CHECK_INT(exec_on(c, MSB_EXEC_KEEP, "echo hi; exit 3"), 0);
        CHECK_INT(send_u32(NULL, MSB_MSG_STARTED, 2, 50), 0);
        CHECK_INT(send_data(NULL, MSB_MSG_STDOUT, 2, "hi\n", 3), 0);
        CHECK_INT(send_exit(2, 3), 0);
        take(&c->out, &g);
        CHECK_INT(g.n[MSB_MSG_EXIT], 1);
        CHECK_INT(g.exit_value, 3);
        CHECK(c->closing && !c->p);
        CHECK_INT(s.nkept, 0);
        CHECK_INT(s.nended, 1);
        struct conn *l = conn_new();
        struct msb_buf b = {0};
        msb_enc_empty(&b, MSB_MSG_PROCS);
        CHECK_INT(feed(l, &b), 0);
        take(&l->out, &g);
        CHECK_INT(g.ninfo, 2);
        CHECK_INT(g.info[0].id, 1);
        CHECK_INT(g.info[0].flags, MSB_PROC_MAIN);
        CHECK_INT(g.info[1].id, 2);
        CHECK_INT(g.info[1].pid, 50);
        CHECK_INT(g.info[1].flags, MSB_PROC_KEPT | MSB_PROC_EXITED);
        CHECK_INT(g.info[1].exit_value, 3);
        CHECK_INT(g.n[MSB_MSG_EXIT], 1);
        struct conn *r = conn_new();
        CHECK_INT(send_u32(r, MSB_MSG_ATTACH, 2, MSB_ATTACH_INFO), 0);
        take(&r->out, &g);
        CHECK_STR(g.text, "hi\n");
        CHECK_INT(g.n[MSB_MSG_EXIT], 1);
        CHECK_INT(g.exit_value, 3);
        CHECK(r->closing);
        struct conn *k = conn_new();
        CHECK_INT(send_u32(k, MSB_MSG_SIGNAL, 2, SIGTERM), 0);
        take(&k->out, &g);
        CHECK_INT(g.err, ESRCH);
        struct conn *k2 = conn_new();
        CHECK_INT(send_u32(k2, MSB_MSG_SIGNAL, 99, SIGTERM), 0);
        take(&k2->out, &g);
        CHECK_INT(g.err, ENOENT);
        CHECK(strstr(g.errmsg, "no process 99") != NULL);
        /* stdin ACKs agentd sends after the EXIT are no error */
        CHECK_INT(send_u32(NULL, MSB_MSG_ACK, 2, 5), 0);
        teardown();
}

/* At most SUP_MAX_KEPT run, at most SUP_MAX_ENDED are remembered. */
static void test_caps(void)
{
        setup();
        struct got g;
        for (unsigned i = 0; i < SUP_MAX_KEPT; i++) {
                struct conn *c = conn_new();
                CHECK_INT(exec_on(c, MSB_EXEC_KEEP, "sleep 9"), 0);
                sup_conn_close(&s, c);
        }
        struct conn *c = conn_new();
        CHECK_INT(exec_on(c, MSB_EXEC_KEEP, "sleep 9"), 0);
        take(&c->out, &g);
        CHECK_INT(g.err, EAGAIN);
        CHECK(strstr(g.errmsg, "256 kept processes") != NULL);
        sup_conn_close(&s, c);
        /* not kept: still fine */
        c = conn_new();
        CHECK_INT(exec_on(c, 0, "true"), 0);
        take(&c->out, &g);
        CHECK_INT(g.ninfo, 1);
        CHECK_INT(g.info[0].flags, 0);
        for (uint32_t id = 2; id < 2 + SUP_MAX_KEPT; id++)
                CHECK_INT(send_exit(id, 0), 0);
        CHECK_INT(s.nended, SUP_MAX_ENDED);
        CHECK_INT(s.nkept, 0);
        /* the oldest went */
        struct conn *r = conn_new();
        CHECK_INT(send_u32(r, MSB_MSG_ATTACH, 2, 0), 0);
        take(&r->out, &g);
        CHECK_INT(g.err, ENOENT);
        r = conn_new();
        CHECK_INT(send_u32(r, MSB_MSG_ATTACH, 1 + SUP_MAX_KEPT, 0), 0);
        take(&r->out, &g);
        CHECK_INT(g.n[MSB_MSG_EXIT], 1);
        teardown();
}

/* A process not kept: its own client's, as before (end-to-end ACKs, EOF
 * when the client goes); by id it can be signalled, not attached to. */
static void test_not_kept_unchanged(void)
{
        setup();
        struct got g;
        struct conn *c = conn_new();
        CHECK_INT(exec_on(c, MSB_EXEC_STDIN, "cat"), 0);
        CHECK_INT(send_u32(NULL, MSB_MSG_STARTED, 2, 60), 0);
        take(&vm.out, &g);
        CHECK_INT(send_data(NULL, MSB_MSG_STDOUT, 2, "z", 1), 0);
        take(&vm.out, &g);
        CHECK_INT(g.ack, 0); /* waits for its client */
        CHECK_INT(send_u32(c, MSB_MSG_ACK, 1, 1), 0);
        take(&vm.out, &g);
        CHECK_INT(g.ack, 1);
        struct conn *r = conn_new();
        CHECK_INT(send_u32(r, MSB_MSG_ATTACH, 2, 0), 0);
        take(&r->out, &g);
        CHECK_INT(g.err, EBUSY);
        struct conn *k = conn_new();
        CHECK_INT(send_u32(k, MSB_MSG_SIGNAL, 2, SIGINT), 0);
        take(&k->out, &g);
        CHECK_INT(g.n[MSB_MSG_EXIT], 1);
        take(&vm.out, &g);
        CHECK_INT(g.signo, SIGINT);
        struct conn *z = conn_new();
        struct msb_buf b = {0};
        msb_enc_resize(&b, 2, 30, 100);
        CHECK_INT(feed(z, &b), 0);
        take(&z->out, &g);
        CHECK_INT(g.err, ENOTTY);
        sup_conn_close(&s, c);
        take(&vm.out, &g);
        CHECK_INT(g.n[MSB_MSG_STDIN_EOF], 1);
        teardown();
}

int main(void)
{
        test_kept_outlives_client();
        test_backlog_and_slow_reader();
        test_one_writer();
        test_after_the_end();
        test_caps();
        test_not_kept_unchanged();
        CHECK_DONE();
}
