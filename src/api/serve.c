/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb serve's life: the unix socket (<runtime dir>/.api/api.sock, 0600, in
 * a 0700 directory, its peers' uid checked per request), an optional TCP
 * listener whose every request carries the bearer token of --token-file
 * (made 0600 with 32 random bytes if missing; TLS from --tls-cert/--tls-key,
 * required off loopback unless --insecure), one libmicrohttpd daemon per
 * listener in thread-per-connection mode, and the signals that end it.
 *
 * The server holds no sandbox state, so ending it (SIGINT, SIGTERM, or a
 * kill) stops no sandbox: its socket and lock go, connections close, and a
 * new msb serve finds everything where it was.  One server per user: a
 * second gets a clear error while the lock is held.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/http.h"
#include "common/error.h"
#include "common/util.h"

#define TOKEN_BYTES 32
#define TOKEN_MIN 16
#define TOKEN_MAX 1024
#define HEADER_MEMORY (64u * 1024u) /* a connection's headers and buffers: a bound on header size */
#define SHUTDOWN_WAIT_MS 2000

static bool quiet;

int64_t api_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void api_log(const char *fmt, ...)
{
        if (quiet)
                return;
        char line[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        char ts[32];
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(stderr, "%s msb serve: %s\n", ts, line);
}

void api_log_line(const char *line, void *ud)
{
        api_log("%s", line);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char line[1024];
        vsnprintf(line, sizeof(line), fmt, ap);
        line[strcspn(line, "\n")] = 0;
        api_log("http: %s", line);
}

static char *api_dir(struct msb_ctx *ctx)
{
        return xasprintf("%s/.api", msb_ctx_runtime_dir(ctx));
}

char *api_default_socket(struct msb_ctx *ctx)
{
        _cleanup_free_ char *d = api_dir(ctx);
        return xasprintf("%s/api.sock", d);
}

/* ---- the token ---- */

static int token_load(const char *path, char **ret)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT) {
                char hex[TOKEN_BYTES * 2 + 2];
                if (random_hex(hex, TOKEN_BYTES) < 0) {
                        fprintf(stderr, "msb serve: %s\n", errno_msg(errno, "cannot make a token").s);
                        return -1;
                }
                int w = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                strcat(hex, "\n");
                if (w < 0 || write_all(w, hex, strlen(hex)) < 0) {
                        fprintf(stderr, "msb serve: %s\n", errno_msg(errno, "--token-file %s: cannot create it", path).s);
                        if (w >= 0) {
                                close(w);
                                unlink(path);
                        }
                        return -1;
                }
                close(w);
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        }
        if (fd < 0) {
                fprintf(stderr, "msb serve: %s\n", errno_msg(errno, "--token-file %s", path).s);
                return -1;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_uid != getuid()) {
                fprintf(stderr, "msb serve: --token-file %s: must be a regular file of yours that only you can read "
                        "(chmod 600 %s)\n", path, path);
                close(fd);
                return -1;
        }
        char buf[TOKEN_MAX + 2];
        ssize_t n = read_all(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n < 0)
                n = 0;
        buf[n] = 0;
        buf[strcspn(buf, "\r\n")] = 0;
        size_t len = strlen(buf);
        bool printable = true;
        for (size_t i = 0; i < len; i++)
                printable &= buf[i] > ' ' && buf[i] < 0x7f;
        if (len < TOKEN_MIN || len > TOKEN_MAX || !printable) {
                fprintf(stderr, "msb serve: --token-file %s: the token must be %d to %d printable characters with no "
                        "space on its first line (remove the file and msb serve makes one)\n", path, TOKEN_MIN,
                        TOKEN_MAX);
                return -1;
        }
        *ret = xstrdup(buf);
        return 0;
}

/* ---- listeners ---- */

static int unix_listen(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "msb serve: socket path %s is longer than %zu bytes: use --socket with a shorter one\n",
                        path, sizeof(sa.sun_path) - 1);
                return -1;
        }
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        (void)unlink(path); /* ours, stale: the lock says no server has it */
        mode_t old = umask(0177);
        int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r < 0 || listen(fd, 128) < 0) {
                fprintf(stderr, "msb serve: %s\n", errno_msg(errno, "cannot listen on %s", path).s);
                close(fd);
                return -1;
        }
        return fd;
}

/* "ADDR:PORT", "[V6]:PORT", "localhost:PORT" or ":PORT" (loopback). */
static int tcp_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len, bool *loopback)
{
        _cleanup_free_ char *s = xstrdup(spec);
        char *colon = strrchr(s, ':');
        if (!colon)
                return -1;
        *colon = 0;
        char *host = s, *end;
        errno = 0;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (!colon[1] || *end || errno || port == 0 || port > 65535)
                return -1;
        if (host[0] == '[') {
                size_t n = strlen(host);
                if (n < 3 || host[n - 1] != ']')
                        return -1;
                host[n - 1] = 0;
                host++;
        }
        memset(ss, 0, sizeof(*ss));
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (!*host || !strcmp(host, "localhost"))
                host = "127.0.0.1";
        if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
                a4->sin_family = AF_INET;
                a4->sin_port = htons((uint16_t)port);
                *len = sizeof(*a4);
                *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
                return 0;
        }
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
                a6->sin6_family = AF_INET6;
                a6->sin6_port = htons((uint16_t)port);
                *len = sizeof(*a6);
                *loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
                return 0;
        }
        return -1;
}

static int tcp_listen(const char *spec, bool *loopback)
{
        struct sockaddr_storage ss;
        socklen_t len;
        if (tcp_parse(spec, &ss, &len, loopback) < 0) {
                fprintf(stderr, "msb serve: --listen '%s': expected ADDR:PORT, e.g. 127.0.0.1:7070 or [::1]:7070\n",
                        spec);
                return -1;
        }
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0) {
                fprintf(stderr, "msb serve: %s\n", errno_msg(errno, "--listen %s", spec).s);
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

static int read_pem(const char *flag, const char *path, char **ret)
{
        size_t n;
        if (read_file_at(AT_FDCWD, path, 1u << 20, ret, &n) < 0) {
                fprintf(stderr, "msb serve: %s\n", errno_msg(errno, "%s %s", flag, path).s);
                return -1;
        }
        return 0;
}

static struct MHD_Daemon *daemon_start(int fd, struct api_listener *l, const char *cert, const char *key)
{
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                         MHD_USE_ITC | MHD_USE_POLL | (cert ? MHD_USE_TLS : 0);
        struct MHD_OptionItem tls[] = {
                {cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)cert},
                {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key},
                {MHD_OPTION_END, 0, NULL},
        };
        return MHD_start_daemon(flags, 0, NULL, NULL, api_access, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                MHD_OPTION_LISTEN_SOCKET, fd,
                                MHD_OPTION_NOTIFY_COMPLETED, api_completed, NULL, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned)API_CONN_MAX, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEMORY,
                                MHD_OPTION_CONNECTION_TIMEOUT, l->unix_socket ? API_IDLE_S : API_PREAUTH_IDLE_S, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                l->unix_socket ? 0u : API_CONN_PER_IP, MHD_OPTION_THREAD_STACK_SIZE,
                                (size_t)(512u * 1024u), MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
}

/* ---- the server ---- */

struct server {
        char *dir, *sock_path, *lock_path, *token, *cert, *key;
        int lock_fd, ufd, tfd;
        struct MHD_Daemon *ud, *td;
        struct api_listener ul, tl;
};

static int lock_dir(struct server *s, const char *dir)
{
        if (mkdir_p(dir, 0700) < 0 || chmod(dir, 0700) < 0) {
                fprintf(stderr, "msb serve: %s\n", errno_msg(errno, "cannot make %s", dir).s);
                return -1;
        }
        s->lock_path = xasprintf("%s/lock", dir);
        s->lock_fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->lock_fd < 0) {
                fprintf(stderr, "msb serve: %s\n", errno_msg(errno, "cannot open %s", s->lock_path).s);
                return -1;
        }
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                char pid[32] = "";
                ssize_t n = pread(s->lock_fd, pid, sizeof(pid) - 1, 0);
                pid[n > 0 ? n : 0] = 0;
                pid[strcspn(pid, "\n")] = 0;
                fprintf(stderr, "msb serve: a server already runs for this user%s%s (socket %s): stop it first, or use "
                        "it\n", *pid ? ", pid " : "", pid, s->sock_path);
                close(s->lock_fd);
                s->lock_fd = -1;
                return -1;
        }
        char pid[32];
        snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
        if (ftruncate(s->lock_fd, 0) == 0)
                if (pwrite(s->lock_fd, pid, strlen(pid), 0) < 0) { /* only a hint for the next server's message */
                }
        return 0;
}

static void server_free(struct server *s)
{
        if (s->td)
                MHD_stop_daemon(s->td);
        if (s->ud)
                MHD_stop_daemon(s->ud);
        if (s->ufd >= 0)
                close(s->ufd);
        if (s->tfd >= 0)
                close(s->tfd);
        if (s->lock_fd >= 0) {
                /* the socket goes before the lock: a new server never
                 * sees its own socket removed */
                if (s->sock_path)
                        unlink(s->sock_path);
                unlink(s->lock_path);
                close(s->lock_fd);
                (void)rmdir(s->dir); /* the runtime dir holds only sandboxes' dirs when no server runs */
        }
        free(s->dir);
        free(s->sock_path);
        free(s->lock_path);
        free(s->token);
        free(s->cert);
        free(s->key);
}

/* --listen and its TLS flags make sense together: checked before anything is taken. */
static int tcp_check(const struct api_serve_opts *o)
{
        struct sockaddr_storage ss;
        socklen_t len;
        bool loopback;
        if (tcp_parse(o->listen, &ss, &len, &loopback) < 0) {
                fprintf(stderr, "msb serve: --listen '%s': expected ADDR:PORT, e.g. 127.0.0.1:7070 or [::1]:7070\n",
                        o->listen);
                return -1;
        }
        if ((!o->tls_cert) != (!o->tls_key)) {
                fprintf(stderr, "msb serve: --tls-cert and --tls-key go together\n");
                return -1;
        }
        if (!loopback && !o->tls_cert && !o->insecure) {
                fprintf(stderr, "msb serve: --listen %s is not a loopback address: give --tls-cert and --tls-key, or "
                        "--insecure to send the token in clear text\n", o->listen);
                return -1;
        }
        if (!loopback && !o->tls_cert)
                fprintf(stderr, "msb serve: WARNING: --insecure: %s is served without TLS; the token and everything "
                        "else cross the network in clear text\n", o->listen);
        return 0;
}

static int tcp_setup(struct server *s, const struct api_serve_opts *o, struct msb_ctx *ctx)
{
        bool loopback = false;
        if ((s->tfd = tcp_listen(o->listen, &loopback)) < 0)
                return -1;
        _cleanup_free_ char *def = xasprintf("%s/api.token", msb_ctx_data_dir(ctx));
        const char *tf = o->token_file ? o->token_file : def;
        if (!o->token_file && mkdir_p(msb_ctx_data_dir(ctx), 0700) < 0) {
                fprintf(stderr, "msb serve: %s\n", errno_msg(errno, "cannot make %s", msb_ctx_data_dir(ctx)).s);
                return -1;
        }
        if (token_load(tf, &s->token) < 0)
                return -1;
        if (o->tls_cert && (read_pem("--tls-cert", o->tls_cert, &s->cert) < 0 ||
                            read_pem("--tls-key", o->tls_key, &s->key) < 0))
                return -1;
        s->tl = (struct api_listener){.unix_socket = false, .token = s->token};
        if (!(s->td = daemon_start(s->tfd, &s->tl, s->cert, s->key))) {
                fprintf(stderr, "msb serve: cannot serve %s (libmicrohttpd refused%s)\n", o->listen,
                        s->cert ? "; is the certificate and key a valid PEM pair?" : "");
                return -1;
        }
        s->tfd = -1;
        api_log("listening on %s://%s (bearer token in %s)", s->cert ? "https" : "http", o->listen, tf);
        return 0;
}

/* Wait for SIGINT/SIGTERM/SIGHUP, which every thread has blocked. */
static int wait_signal(void)
{
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGINT);
        sigaddset(&m, SIGTERM);
        sigaddset(&m, SIGHUP);
        for (;;) {
                int sig = sigwaitinfo(&m, NULL);
                if (sig > 0)
                        return sig;
        }
}

static int server_start(struct server *s, const struct api_serve_opts *o)
{
        struct msb_ctx *ctx;
        struct msb_error err = {0};
        if (msb_ctx_new(&ctx, &err) < 0) {
                fprintf(stderr, "msb serve: %s\n", err.message);
                return -1;
        }
        if (o->listen && tcp_check(o) < 0) {
                msb_ctx_free(ctx);
                return -1;
        }
        s->dir = api_dir(ctx);
        s->sock_path = o->socket_path ? xstrdup(o->socket_path) : api_default_socket(ctx);
        int r = -1;
        if (lock_dir(s, s->dir) < 0 || (s->ufd = unix_listen(s->sock_path)) < 0)
                goto out;
        s->ul = (struct api_listener){.unix_socket = true};
        if (!(s->ud = daemon_start(s->ufd, &s->ul, NULL, NULL))) {
                fprintf(stderr, "msb serve: cannot serve %s (libmicrohttpd refused)\n", s->sock_path);
                goto out;
        }
        s->ufd = -1; /* libmicrohttpd's now */
        api_log("listening on unix:%s", s->sock_path);
        if (o->listen && tcp_setup(s, o, ctx) < 0)
                goto out;
        r = 0;
out:
        msb_ctx_free(ctx);
        return r;
}

int api_serve(const struct api_serve_opts *o)
{
        quiet = o->quiet;
        /* signals are this thread's to wait for; every other thread
         * (libmicrohttpd's, the relays') starts with them blocked */
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGINT);
        sigaddset(&m, SIGTERM);
        sigaddset(&m, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &m, NULL);
        signal(SIGPIPE, SIG_IGN);
        struct server s = {.lock_fd = -1, .ufd = -1, .tfd = -1};
        if (server_start(&s, o) < 0) {
                server_free(&s);
                return 1;
        }
        int sig = wait_signal();
        api_log("%s: stopping (sandboxes keep running)", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP");
        /* no new connections; the socket and lock go now, so a new server
         * can start at once */
        s.ufd = MHD_quiesce_daemon(s.ud);
        if (s.td)
                s.tfd = MHD_quiesce_daemon(s.td);
        unlink(s.sock_path);
        unlink(s.lock_path);
        (void)rmdir(s.dir);
        /* requests in flight get a moment; a stream (a wait, a follow) is cut */
        int64_t until = api_now_ms() + SHUTDOWN_WAIT_MS;
        while (api_now_ms() < until) {
                const union MHD_DaemonInfo *ui = MHD_get_daemon_info(s.ud, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
                const union MHD_DaemonInfo *ti =
                        s.td ? MHD_get_daemon_info(s.td, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
                if ((!ui || !ui->num_connections) && (!ti || !ti->num_connections)) {
                        server_free(&s);
                        return 0;
                }
                struct timespec ts = {0, 50 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        /* connections still open are closed by the exit; their sandboxes
         * see their clients go, as when a CLI is killed */
        fflush(stderr);
        _exit(0);
}
