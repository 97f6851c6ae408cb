/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentd's process manager.  After SETUP, one poll() loop runs every process
 * the host starts with EXEC (up to MSB_PROTO_MAX_PROCS at once), each with
 * its own streams and flow-control windows:
 *
 *   STDIN(id)  queued, written to the process without blocking, ACKed once
 *              written; STDIN_EOF closes its stdin when the queue is empty
 *              (a terminal gets its VEOF character instead)
 *   output     read only while the process has less than MSB_PROTO_WINDOW
 *              unacknowledged by the host and the channel's queue is short:
 *              a process whose reader is slow stops alone
 *   exit       reaped (as PID 1, orphans too); what its pipes hold at that
 *              moment is sent, then EXIT; the main process's end kills the
 *              rest and syncs before its EXIT
 *
 * A process that cannot start is an ERROR for its id only; the host decides
 * what that means for the sandbox.  A host that breaks the protocol ends it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/error.h"
#include "common/users.h"
#include "common/util.h"

/* After a terminal's process ended: the most to take from its master.  The
 * bytes written to a terminal reach the master through a kernel work item
 * (which a read runs first, so reading finds them where FIONREAD may not);
 * a pty holds at most its 64 KiB of flip buffers and n_tty's 4 KiB. */
#define TTY_DRAIN_MAX (128u * 1024u)
/* Output chunks taken from one stream per wakeup: a busy process must not
 * hold the loop while others wait. */
#define PUMP_ROUNDS 4
/* The stack a command's clone() runs on until it execs. */
#define CHILD_STACK (256u * 1024u)

enum { OUT, ERR, IN, CTL, SIG }; /* what a poll entry watches */

struct proc {
        uint32_t id;
        pid_t pid; /* its process group too; 0 once reaped */
        bool main, tty;
        int in;               /* our end of its stdin (with tty: a dup of the master), or -1 */
        int out[2];           /* stdout, stderr pipes; with tty: out[OUT] is the master */
        struct msb_buf inq;   /* STDIN not yet written to it */
        uint32_t in_ack;      /* STDIN bytes written (or dropped), not yet ACKed */
        bool in_eof;          /* STDIN_EOF: end its stdin once inq is empty */
        uint32_t out_unacked; /* STDOUT/STDERR sent, not yet ACKed by the host */
        bool exited;
        int status;
        size_t drain[2]; /* once exited: bytes still to take from out[i] */
};

static struct proc *procs[MSB_PROTO_MAX_PROCS];
static uint32_t nprocs;
static const struct msb_setup_msg *setup;
static bool main_started;
/* the main process ended: EXEC is refused, and SHUTDOWN awaited until stop_at */
static bool stopping;
static int64_t stop_at;
/* agentd's own file limit is raised to hold MAX_PROCS × 3 fds; commands get
 * the one they would have had */
static struct rlimit nofile;
static bool nofile_raised;

/* ---- the table ---- */

static struct proc *proc_find(uint32_t id)
{
        for (uint32_t i = 0; i < nprocs; i++)
                if (procs[i]->id == id)
                        return procs[i];
        return NULL;
}

static struct proc *proc_by_pid(pid_t pid)
{
        for (uint32_t i = 0; i < nprocs; i++)
                if (procs[i]->pid == pid)
                        return procs[i];
        return NULL;
}

static struct proc *proc_new(uint32_t id)
{
        struct proc *p = xcalloc(1, sizeof(*p));
        p->id = id;
        p->in = p->out[OUT] = p->out[ERR] = -1;
        procs[nprocs++] = p;
        return p;
}

static void close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

static void proc_free(struct proc *p)
{
        close_fd(&p->in);
        close_fd(&p->out[OUT]);
        close_fd(&p->out[ERR]);
        msb_buf_free(&p->inq);
        for (uint32_t i = 0; i < nprocs; i++)
                if (procs[i] == p) {
                        procs[i] = procs[--nprocs];
                        break;
                }
        free(p);
}

/* ERROR for one process: it did not start.  The sandbox goes on. */
static void proc_error(uint32_t id, const char *step, int err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void proc_error(uint32_t id, const char *step, int err, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (err)
                logmsg("process %u: %s: %s", id, step, errno_msg(err, "%s", msg).s);
        else
                logmsg("process %u: %s: %s", id, step, msg);
        msb_enc_error(&outq, id, step, err, msg);
}

/* ---- starting a process ---- */

/* The host resolves the user from the image's files (MSB_EXEC_IDS); when a
 * volume may cover /etc/passwd or /etc/group it leaves that to us, reading
 * the files the command will see. */
static int resolve_user(const struct msb_exec_msg *ex, struct ids *u)
{
        if (ex->flags & MSB_EXEC_IDS) {
                memset(u, 0, sizeof(*u));
                u->uid = ex->uid;
                u->gid = ex->gid;
                u->ngroups = ex->ngroups;
                memcpy(u->groups, ex->groups, ex->ngroups * sizeof(u->groups[0]));
                snprintf(u->home, sizeof(u->home), "%s", ex->home);
                return 0;
        }
        _cleanup_free_ char *passwd = NULL, *group = NULL;
        int r = read_file_at(AT_FDCWD, "/etc/passwd", 4u << 20, &passwd, NULL);
        if (r < 0 && r != -ENOENT) {
                proc_error(ex->id, "user", -r, "cannot read the image's /etc/passwd");
                return -1;
        }
        r = read_file_at(AT_FDCWD, "/etc/group", 4u << 20, &group, NULL);
        if (r < 0 && r != -ENOENT) {
                proc_error(ex->id, "user", -r, "cannot read the image's /etc/group");
                return -1;
        }
        struct msb_error why = {0};
        if (ids_resolve(ex->user, passwd, group, u, &why) < 0) {
                proc_error(ex->id, "user", 0, "%s", why.message);
                return -1;
        }
        return 0;
}

static bool env_has(char **env, const char *key)
{
        size_t k = strlen(key);
        for (; env && *env; env++)
                if (!strncmp(*env, key, k) && (*env)[k] == '=')
                        return true;
        return false;
}

/* EXEC's environment, with PATH, HOME and HOSTNAME where it has none. */
static char **proc_env(const struct msb_exec_msg *ex, const struct ids *u)
{
        char **env = NULL;
        for (uint32_t i = 0; i < ex->envc; i++)
                strv_push(&env, ex->env[i]);
        if (!env_has(env, "PATH"))
                strv_push(&env, "PATH=" MSB_DEFAULT_PATH);
        if (!env_has(env, "HOME"))
                strv_push_take(&env, xasprintf("HOME=%s", u->home));
        if (!env_has(env, "HOSTNAME") && setup->hostname[0])
                strv_push_take(&env, xasprintf("HOSTNAME=%s", setup->hostname));
        return env;
}

/* The working directory, created if missing (as docker does). */
static int make_workdir(const struct msb_exec_msg *ex, const char **ret_wd)
{
        const char *wd = ex->workdir[0] ? ex->workdir : "/";
        if (!path_ok(wd)) {
                proc_error(ex->id, "workdir", EINVAL, "working directory '%s' must be absolute", wd);
                return -1;
        }
        int r = mkdir_p(wd, 0755);
        if (r < 0) {
                proc_error(ex->id, "workdir", -r, "cannot create working directory '%s'", wd);
                return -1;
        }
        *ret_wd = wd;
        return 0;
}

/* Pipes for a command without a terminal; its stdin is /dev/null unless
 * the host sends it.  child[] gets the command's 0, 1, 2.  0 or -errno. */
static int open_pipes(struct proc *p, bool want_stdin, int child[3])
{
        int fds[2];
        if (want_stdin) {
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return -errno;
                child[0] = fds[0];
                p->in = fds[1];
        } else if ((child[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
                return -errno;
        }
        for (int i = 0; i < 2; i++) {
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return -errno;
                p->out[i] = fds[0];
                child[1 + i] = fds[1];
        }
        return 0;
}

/* A terminal of EXEC's size from the guest's devpts: the command gets the
 * slave as 0, 1, 2 (and as its controlling terminal); we keep the master
 * for its output and a dup of it for its input, which ends on its own.
 * The slave is opened through the master (TIOCGPTPEER), not by a name in
 * /dev/pts that a guest process could have replaced.  0 or -errno. */
static int open_tty(struct proc *p, const struct msb_exec_msg *ex, uid_t uid, int child[3])
{
        int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m < 0)
                return -errno;
        p->out[OUT] = m;
        struct winsize ws = {.ws_row = (unsigned short)ex->rows, .ws_col = (unsigned short)ex->cols};
        if (grantpt(m) < 0 || unlockpt(m) < 0 || ioctl(m, TIOCSWINSZ, &ws) < 0)
                return -errno;
        int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s < 0)
                return -errno;
        child[0] = child[1] = child[2] = s;
        /* its user's, as login and sshd leave it (group tty, mode 0620) */
        (void)!fchown(s, uid, (gid_t)-1);
        if ((ex->flags & MSB_EXEC_STDIN) && (p->in = fcntl(m, F_DUPFD_CLOEXEC, 3)) < 0)
                return -errno;
        return 0;
}

/* The command's ends, once it has them (a terminal's are one fd thrice). */
static void close_child(int child[3])
{
        for (int i = 0; i < 3; i++)
                if (child[i] >= 0 && (i == 0 || child[i] != child[i - 1]))
                        close(child[i]);
}

struct child_args {
        const struct msb_exec_msg *ex;
        char **env;
        const char *wd;
        const struct ids *u;
        int fds[3];
        bool tty;
        bool internal; /* a routine of agentd's (tarcp.c), not a program */
        int report; /* close-on-exec pipe: errno if it does not exec */
};

/* A routine of agentd's runs in a copy of it (fork, not clone(CLONE_VM)),
 * keeping nothing of agentd's but its 0, 1, 2: another process's pipe end
 * held here would keep that process from its end of file.  Closing the
 * report pipe with the rest tells agentd it started. */
static __attribute__((noreturn)) void run_internal(const struct child_args *c)
{
        if (close_range(3, ~0u, 0) < 0)
                for (int fd = 3; fd < 4096; fd++)
                        close(fd);
        environ = c->env;
        int argc = (int)c->ex->argc;
        _exit(str_has_prefix(c->ex->argv[0], "fs-") ? fsops_main(argc, c->ex->argv) : tarcp_main(argc, c->ex->argv));
}

static int load_seccomp(const struct msb_exec_msg *ex)
{
        struct sock_fprog prog = {.len = (unsigned short)ex->nseccomp, .filter = (struct sock_filter *)ex->seccomp};
        return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* An OCI process's confinement, in runc's order: the bounding set while
 * still root, capabilities kept across the change of uid, then set.
 * Without no_new_privs the filter goes in first (loading one needs
 * CAP_SYS_ADMIN then), with it last, so that it has only execve to let
 * through.  Raw system calls: we run in agentd's memory. */
static int confine_before_ids(const struct msb_exec_msg *ex)
{
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                return -1;
        for (unsigned cap = 0; cap < 64; cap++)
                if (!(ex->caps[MSB_CAP_BOUNDING] & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
                    errno != EINVAL)
                        return -1;
        if (!(ex->flags & MSB_EXEC_NO_NEW_PRIVS) && ex->nseccomp && load_seccomp(ex) < 0)
                return -1;
        return 0;
}

static int confine_after_ids(const struct msb_exec_msg *ex)
{
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2];
        for (int i = 0; i < 2; i++)
                d[i] = (struct __user_cap_data_struct){
                        .effective = (uint32_t)(ex->caps[MSB_CAP_EFFECTIVE] >> (32 * i)),
                        .permitted = (uint32_t)(ex->caps[MSB_CAP_PERMITTED] >> (32 * i)),
                        .inheritable = (uint32_t)(ex->caps[MSB_CAP_INHERITABLE] >> (32 * i)),
                };
        if (syscall(SYS_capset, &h, d) < 0 || prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
                return -1;
        /* one that is not also inheritable and permitted cannot be
         * ambient: left out, as runc does (runc spec's default asks for
         * ambient capabilities without inheritable ones) */
        for (unsigned cap = 0; cap < 64; cap++)
                if (ex->caps[MSB_CAP_AMBIENT] & (1ull << cap))
                        (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
        if ((ex->flags & MSB_EXEC_NO_NEW_PRIVS) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -1;
        if ((ex->flags & MSB_EXEC_NO_NEW_PRIVS) && ex->nseccomp && load_seccomp(ex) < 0)
                return -1;
        return 0;
}

/* Runs on its own stack in our memory until execve: only system calls and
 * exec, no allocation. */
static int child_main(void *arg)
{
        const struct child_args *c = arg;
        for (int s = 1; s < NSIG; s++)
                signal(s, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (nofile_raised)
                setrlimit(RLIMIT_NOFILE, &nofile);
        /* the process's own limits (an OCI bundle's rlimits), while still
         * root: raising a hard limit needs it */
        for (uint32_t i = 0; i < c->ex->nrlimits; i++) {
                const struct msb_rlimit *l = &c->ex->rlimits[i];
                struct rlimit rl = {.rlim_cur = l->soft == UINT64_MAX ? RLIM_INFINITY : (rlim_t)l->soft,
                                    .rlim_max = l->hard == UINT64_MAX ? RLIM_INFINITY : (rlim_t)l->hard};
                if (setrlimit((int)l->resource, &rl) < 0)
                        goto fail;
        }
        setsid();
        if (c->tty && ioctl(c->fds[0], TIOCSCTTY, 0) < 0)
                goto fail;
        for (int i = 0; i < 3; i++)
                if (dup2(c->fds[i], i) < 0)
                        goto fail;
        if (chdir(c->wd) < 0)
                goto fail;
        bool confine = c->ex->flags & MSB_EXEC_CONFINE;
        if (confine && confine_before_ids(c->ex) < 0)
                goto fail;
        /* raw calls: glibc's wrappers would try to tell other threads */
        if (syscall(SYS_setgroups, (size_t)c->u->ngroups, c->u->groups) < 0 || syscall(SYS_setgid, c->u->gid) < 0 ||
            syscall(SYS_setuid, c->u->uid) < 0)
                goto fail;
        if (confine && confine_after_ids(c->ex) < 0)
                goto fail;
        else if (!confine && (c->ex->flags & MSB_EXEC_NO_NEW_PRIVS) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                goto fail;
        if (c->internal)
                run_internal(c);
        /* execvp searches the PATH of environ, which is now the command's
         * own environment, as docker does */
        environ = c->env;
        if (c->ex->exec_path[0])
                execv(c->ex->exec_path, c->ex->argv);
        /* and if the host's find does not run (a script without #!, a
         * volume changed things), execvp's own search and errors decide,
         * as without it */
        execvp(c->ex->argv[0], c->ex->argv);
fail:;
        int e = errno;
        (void)!write(c->report, &e, sizeof(e));
        _exit(127);
}

/* clone(CLONE_VM | CLONE_VFORK) on a stack of its own: the pid, or -1. */
static pid_t clone_child(struct child_args *ca)
{
        void *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED)
                return -1;
        char **saved_environ = environ;
        pid_t pid = clone(child_main, (uint8_t *)stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, ca);
        int e = errno;
        environ = saved_environ; /* the child set it for execvp, in our memory */
        munmap(stack, CHILD_STACK);
        errno = e;
        return pid;
}

/*
 * vfork-style: the child borrows our memory until it execs, so no page
 * tables are copied and nothing is copied on write (measured ~4 ms for
 * fork() under TCG); we wait meanwhile.  A routine of ours forks instead
 * (run_internal()).  Returns the pid, or -1 with the failed step and errno.
 */
static pid_t start_child(struct child_args *ca, const char **ret_step, int *ret_err)
{
        int rep[2];
        *ret_step = "spawn";
        *ret_err = 0;
        if (pipe2(rep, O_CLOEXEC) < 0) {
                *ret_err = errno;
                return -1;
        }
        ca->report = rep[1];
        pid_t pid = ca->internal ? fork() : clone_child(ca);
        if (pid == 0)
                child_main(ca); /* fork()'s child: does not return */
        *ret_err = errno;
        close(rep[1]);
        int e = 0;
        if (pid > 0 && read_all(rep[0], &e, sizeof(e)) == (ssize_t)sizeof(e)) {
                waitpid(pid, NULL, 0);
                *ret_step = "exec";
                *ret_err = e;
                pid = -1;
        }
        close(rep[0]);
        return pid;
}

static void set_nonblock(int fd)
{
        int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
        if (fl >= 0)
                fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Start EXEC's process in p: 0, or -1 once its ERROR is queued. */
static int spawn(struct proc *p, const struct msb_exec_msg *ex)
{
        struct ids u;
        const char *wd;
        if (resolve_user(ex, &u) < 0)
                return -1;
        if (debug)
                logmsg("user resolved");
        if (make_workdir(ex, &wd) < 0)
                return -1;
        int child[3] = {-1, -1, -1};
        int r = p->tty ? open_tty(p, ex, u.uid, child) : open_pipes(p, ex->flags & MSB_EXEC_STDIN, child);
        if (r < 0) {
                close_child(child);
                proc_error(ex->id, "spawn", -r, p->tty ? "cannot open a terminal" : "cannot make pipes");
                return -1;
        }
        _cleanup_strv_ char **env = proc_env(ex, &u);
        struct child_args ca = {.ex = ex, .env = env, .wd = wd, .u = &u, .tty = p->tty,
                                .internal = ex->flags & MSB_EXEC_INTERNAL};
        memcpy(ca.fds, child, sizeof(child));
        const char *step = "spawn";
        int err = 0;
        p->pid = start_child(&ca, &step, &err);
        close_child(child);
        if (p->pid < 0) {
                p->pid = 0;
                proc_error(ex->id, step, err, "cannot run '%s'", ex->argv[0]);
                return -1;
        }
        set_nonblock(p->in);
        set_nonblock(p->out[OUT]);
        set_nonblock(p->out[ERR]);
        return 0;
}

/* ---- stdin ---- */

static void stdin_close(struct proc *p)
{
        /* what it will never read is dropped, but acknowledged: the host's
         * count of bytes in flight stays right */
        p->in_ack += (uint32_t)msb_buf_pending(&p->inq);
        msb_buf_free(&p->inq);
        close_fd(&p->in);
}

/* STDIN_EOF, once the queue is written: a pipe is closed; a terminal gets
 * its end-of-file character (normally ^D), as typing it would, since
 * closing our end of the master would hang the terminal up. */
static void stdin_end(struct proc *p)
{
        if (p->tty) {
                struct termios t;
                char eof = tcgetattr(p->in, &t) == 0 && t.c_cc[VEOF] != _POSIX_VDISABLE ? (char)t.c_cc[VEOF] : 4;
                if (write(p->in, &eof, 1) < 0 && (errno == EAGAIN || errno == EINTR))
                        return; /* again when writable */
        }
        stdin_close(p);
}

static void write_stdin(struct proc *p)
{
        if (p->in < 0)
                return;
        if (msb_buf_pending(&p->inq)) {
                ssize_t w = write(p->in, msb_buf_head(&p->inq), msb_buf_pending(&p->inq));
                if (w > 0) {
                        msb_buf_consume(&p->inq, (size_t)w);
                        p->in_ack += (uint32_t)w;
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                        /* EPIPE: it closed its stdin; EIO: its terminal is gone */
                        stdin_close(p);
                        return;
                }
        }
        if (p->in_eof && !msb_buf_pending(&p->inq))
                stdin_end(p);
}

static void flush_ack(struct proc *p)
{
        if (p->in_ack) {
                msb_enc_u32(&outq, MSB_MSG_ACK, p->id, p->in_ack);
                p->in_ack = 0;
        }
}

/* ---- output ---- */

enum pump { PUMP_MORE, PUMP_WAIT, PUMP_END };

static bool may_send(const struct proc *p)
{
        return p->out_unacked < MSB_PROTO_WINDOW && msb_buf_pending(&outq) < OUTQ_HIGH;
}

/* One read from out[i] into a frame, within the window (and, once the
 * process has exited, within what its pipe held then). */
static enum pump pump_out(struct proc *p, int i)
{
        uint8_t buf[MSB_PROTO_DATA_CHUNK];
        size_t room = MSB_PROTO_WINDOW - p->out_unacked;
        if (room > sizeof(buf))
                room = sizeof(buf);
        if (p->exited && room > p->drain[i])
                room = p->drain[i];
        if (room == 0)
                return PUMP_END;
        ssize_t n = read(p->out[i], buf, room);
        if (n < 0 && errno == EINTR)
                return PUMP_MORE;
        if (n < 0 && errno == EAGAIN)
                return PUMP_WAIT;
        if (n <= 0)
                return PUMP_END; /* EOF; EIO from a master whose terminal nobody holds */
        msb_enc_data(&outq, i == ERR ? MSB_MSG_STDERR : MSB_MSG_STDOUT, p->id, buf, (size_t)n);
        p->out_unacked += (uint32_t)n;
        if (p->exited)
                p->drain[i] -= (size_t)n;
        return PUMP_MORE;
}

static void pump_live(struct proc *p, int i)
{
        for (int k = 0; k < PUMP_ROUNDS && p->out[i] >= 0 && may_send(p); k++) {
                enum pump r = pump_out(p, i);
                if (r == PUMP_END)
                        close_fd(&p->out[i]);
                if (r != PUMP_MORE)
                        break;
        }
}

/* ---- the end of a process ---- */

/* What out[] holds right now: that much is sent after the process ended,
 * and no more (background children that keep the pipe open and write on
 * must not keep its EXIT back). */
static size_t buffered(int fd, bool tty)
{
        int n = 0;
        if (fd < 0)
                return 0;
        if (tty)
                return TTY_DRAIN_MAX;
        return ioctl(fd, FIONREAD, &n) == 0 && n > 0 ? (size_t)n : 0;
}

static void proc_exited(struct proc *p, int status)
{
        if (debug)
                logmsg("child exited: process %u", p->id);
        p->pid = 0;
        p->exited = true;
        p->status = status;
        for (int i = 0; i < 2; i++)
                p->drain[i] = buffered(p->out[i], p->tty);
        /* nothing outlives the main process (PID 1's kill(-1) spares only us) */
        if (p->main)
                kill(-1, SIGKILL);
        stdin_close(p);
}

static void reap(int sfd)
{
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof(si)) > 0) {
        }
        int st;
        pid_t w;
        /* PID 1: orphans are ours to reap too, and simply gone */
        while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
                struct proc *p = proc_by_pid(w);
                if (p)
                        proc_exited(p, st);
        }
}

/* EXIT, after all its output; the main process's also after every process
 * is killed and the writable file systems are synced: the host may stop the
 * VM the moment it has it. */
static void finish(struct proc *p)
{
        flush_ack(p);
        if (p->main) {
                root_sync();
                if (debug)
                        logmsg("volumes synced");
                stopping = true;
                stop_at = now_ms() + SHUTDOWN_WAIT_MS;
        }
        if (WIFSIGNALED(p->status))
                msb_enc_exit(&outq, p->id, MSB_EXIT_SIGNAL, (uint32_t)WTERMSIG(p->status));
        else
                msb_enc_exit(&outq, p->id, MSB_EXIT_CODE, (uint32_t)WEXITSTATUS(p->status));
        proc_free(p);
}

/* An exited process: send what its outputs held when it ended, as the
 * window allows, then EXIT. */
static void drain(struct proc *p)
{
        for (int i = 0; i < 2; i++)
                while (p->out[i] >= 0 && (p->drain[i] == 0 || may_send(p)))
                        if (pump_out(p, i) != PUMP_MORE)
                                close_fd(&p->out[i]);
        if (p->out[OUT] < 0 && p->out[ERR] < 0)
                finish(p);
}

/* ---- messages from the host ---- */

static void on_exec(const struct msb_msg *m)
{
        const struct msb_exec_msg *ex = &m->u.exec;
        bool is_main = ex->flags & MSB_EXEC_MAIN;
        if (stopping) {
                proc_error(ex->id, "exec", ECANCELED, "the sandbox is stopping: its main process ended");
                return;
        }
        if (proc_find(ex->id) || (is_main && main_started)) {
                proc_error(ex->id, "exec", EEXIST, is_main && main_started ? "the sandbox has a main process already"
                                                                              : "process id in use");
                return;
        }
        if (nprocs >= MSB_PROTO_MAX_PROCS) {
                proc_error(ex->id, "exec", EAGAIN, "%u processes run already", nprocs);
                return;
        }
        struct proc *p = proc_new(ex->id);
        p->main = is_main;
        p->tty = ex->flags & MSB_EXEC_TTY;
        if (spawn(p, ex) < 0) {
                proc_free(p);
                return;
        }
        main_started |= is_main;
        msb_enc_u32(&outq, MSB_MSG_STARTED, p->id, (uint32_t)p->pid);
        if (debug)
                logmsg("command started: process %u, pid %d", p->id, (int)p->pid);
}

static void on_stdin(const struct msb_msg *m)
{
        struct proc *p = proc_find(m->id);
        size_t n = m->u.data.len;
        if (n == 0)
                return;
        if (!p) {
                /* gone (its EXIT or ERROR is on the way): dropped, ACKed */
                msb_enc_u32(&outq, MSB_MSG_ACK, m->id, (uint32_t)n);
                return;
        }
        if (msb_buf_pending(&p->inq) + p->in_ack + n > MSB_PROTO_WINDOW)
                fail("protocol", EPROTO, "the host sent process %u more stdin than its window", p->id);
        if (p->in >= 0 && !p->in_eof)
                msb_buf_append(&p->inq, m->u.data.data, n);
        else
                p->in_ack += (uint32_t)n; /* no stdin (any more): dropped */
}

static void on_stdin_eof(const struct msb_msg *m)
{
        struct proc *p = proc_find(m->id);
        if (!p || p->in < 0 || p->in_eof)
                return;
        p->in_eof = true;
        if (!msb_buf_pending(&p->inq))
                stdin_end(p);
}

static void on_signal(const struct msb_msg *m)
{
        struct proc *p = proc_find(m->id);
        if (!p || p->exited)
                return;
        /* to the whole process group, as a terminal's Ctrl-C would */
        if (kill(-p->pid, (int)m->u.signo) < 0)
                kill(p->pid, (int)m->u.signo);
}

static void on_resize(const struct msb_msg *m)
{
        struct proc *p = proc_find(m->id);
        if (!p || !p->tty || p->exited || p->out[OUT] < 0)
                return; /* only a terminal has a size */
        struct winsize ws = {.ws_row = (unsigned short)m->u.resize.rows, .ws_col = (unsigned short)m->u.resize.cols};
        /* the kernel sends SIGWINCH to the terminal's foreground group */
        ioctl(p->out[OUT], TIOCSWINSZ, &ws);
}

static void on_ack(const struct msb_msg *m)
{
        struct proc *p = proc_find(m->id);
        if (!p)
                return; /* its EXIT went out before the host's ACK came back */
        if (m->u.ack > p->out_unacked)
                fail("protocol", EPROTO, "the host acknowledged more output of process %u than was sent", p->id);
        p->out_unacked -= m->u.ack;
}

static void on_shutdown(const struct msb_msg *m)
{
        if (debug)
                logmsg("SHUTDOWN received");
        halt();
}

typedef void msg_handler(const struct msb_msg *m);
/* What the host may send once the sandbox is set up; anything else breaks
 * the protocol. */
static msg_handler *const handlers[MSB_MSG_TYPE_MAX + 1] = {
        [MSB_MSG_EXEC] = on_exec,     [MSB_MSG_STDIN] = on_stdin, [MSB_MSG_STDIN_EOF] = on_stdin_eof,
        [MSB_MSG_SIGNAL] = on_signal, [MSB_MSG_RESIZE] = on_resize, [MSB_MSG_ACK] = on_ack,
        [MSB_MSG_SHUTDOWN] = on_shutdown,
};

static void dispatch(const struct msb_msg *m)
{
        msg_handler *h = m->type <= MSB_MSG_TYPE_MAX ? handlers[m->type] : NULL;
        if (!h)
                fail("protocol", EPROTO, "the host sent %s, which agentd does not take now",
                     msb_msg_type_name(m->type));
        h(m);
}

static void take_messages(void)
{
        struct msb_msg m;
        int r;
        while ((r = msb_reader_next(&rd, &m)) == 1) {
                dispatch(&m);
                msb_msg_free(&m);
        }
        if (r < 0)
                fail("protocol", -r, "malformed frame from host");
}

/* ---- the loop ---- */

struct watch {
        struct proc *p;
        int what;
};
#define MAX_WATCHES (2 + 3 * MSB_PROTO_MAX_PROCS)
static struct pollfd pfds[MAX_WATCHES];
static struct watch watches[MAX_WATCHES];

static nfds_t watch(nfds_t n, struct proc *p, int what, int fd, short events)
{
        pfds[n] = (struct pollfd){.fd = fd, .events = events};
        watches[n] = (struct watch){.p = p, .what = what};
        return n + 1;
}

static nfds_t watch_procs(nfds_t n)
{
        for (uint32_t i = 0; i < nprocs; i++) {
                struct proc *p = procs[i];
                if (p->in >= 0 && (msb_buf_pending(&p->inq) || p->in_eof))
                        n = watch(n, p, IN, p->in, POLLOUT);
                /* an exited process's outputs are drained, not waited for */
                if (p->exited || !may_send(p))
                        continue;
                for (int k = OUT; k <= ERR; k++)
                        if (p->out[k] >= 0)
                                n = watch(n, p, k, p->out[k], POLLIN);
        }
        return n;
}

/* Before sleeping: the host's messages, exited processes' last output and
 * EXIT, the ACKs for stdin written. */
static void service(void)
{
        take_messages();
        /* downwards: finish() moves the last entry into the freed slot */
        for (uint32_t i = nprocs; i-- > 0;) {
                flush_ack(procs[i]);
                if (procs[i]->exited)
                        drain(procs[i]);
        }
}

static void handle(nfds_t n, int sfd)
{
        for (nfds_t i = 0; i < n; i++) {
                short ev = pfds[i].revents;
                if (!ev)
                        continue;
                struct watch *w = &watches[i];
                if (w->what == CTL)
                        ctl_io(ev);
                else if (w->what == SIG)
                        reap(sfd);
                else if (w->what == IN)
                        write_stdin(w->p);
                else
                        pump_live(w->p, w->what);
        }
}

static int sigchld_fd(void)
{
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        int fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (fd < 0)
                fail("spawn", errno, "signalfd");
        return fd;
}

static void raise_nofile(void)
{
        if (getrlimit(RLIMIT_NOFILE, &nofile) < 0)
                return;
        struct rlimit r = nofile;
        if (r.rlim_max < 4 * MSB_PROTO_MAX_PROCS)
                r.rlim_max = 4 * MSB_PROTO_MAX_PROCS;
        r.rlim_cur = r.rlim_max;
        nofile_raised = setrlimit(RLIMIT_NOFILE, &r) == 0;
}

void procs_run(const struct msb_setup_msg *su, struct msb_msg *first)
{
        setup = su;
        int sfd = sigchld_fd();
        raise_nofile();
        if (first) {
                dispatch(first);
                msb_msg_free(first);
        }
        for (;;) {
                service();
                nfds_t n = watch(0, NULL, CTL, ctl_fd, (short)(POLLIN | (msb_buf_pending(&outq) ? POLLOUT : 0)));
                n = watch(n, NULL, SIG, sfd, POLLIN);
                n = watch_procs(n);
                int64_t left = stop_at - now_ms();
                int r = poll(pfds, n, stopping ? (int)(left > 0 ? left : 0) : -1);
                if (r < 0 && errno != EINTR)
                        fail("relay", errno, "poll");
                if (r == 0 && stopping && now_ms() >= stop_at)
                        halt(); /* no SHUTDOWN came: the backstop */
                if (r > 0)
                        handle(n, sfd);
        }
}
