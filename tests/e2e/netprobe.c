/* netprobe: the guest side of the network tests and bench/net, for what
 * busybox cannot do (its nc has no UDP and spawns a process per
 * connection).  Built static by tests/e2e/net-rig.sh and shared into the
 * guest with -v; addresses are numeric only (no NSS in a static binary).
 *
 *   netprobe udp HOST PORT MSG        send MSG, print the answer (3 s wait)
 *   netprobe udp-echo PORT SECS       answer each datagram D with "guest:D"
 *   netprobe tcp HOST PORT N          N connects and closes; "ok N NANOSECONDS"
 *   netprobe send HOST PORT BYTES     send "BYTES\n" and BYTES zeros, print the answer line
 *   netprobe accept PORT SECS         accept, write "x", read to EOF, close; for SECS seconds
 *   netprobe sink PORT SECS           per connection: read "N\n" and N bytes, answer "N\n"
 *   netprobe udp-hold HOST PORT LPORT SECS
 *                                     from local port LPORT send "hello", print "sent", then
 *                                     "from ADDR MSG" for each datagram in SECS seconds
 *   netprobe udp-ports HOST PORT N SECS
 *                                     one datagram from each of N new sockets (N source
 *                                     ports), kept open SECS seconds; "sent N"
 *   netprobe udp-flood HOST SECS      datagrams to HOST's ports 1, 2, ... (a new flow
 *                                     each) for SECS seconds; "sent N"
 *
 * Failures print "netprobe: WHAT: strerror" and exit 1; no answer to a
 * datagram exits 2.  Servers listen on [::] (both families). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int die(const char *what)
{
        fprintf(stderr, "netprobe: %s: %s\n", what, strerror(errno));
        return 1;
}

static int connect_to(const char *host, const char *port, int type)
{
        struct addrinfo hints = {.ai_socktype = type, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
        struct addrinfo *ai;
        int r = getaddrinfo(host, port, &hints, &ai);
        if (r) {
                fprintf(stderr, "netprobe: %s: %s\n", host, gai_strerror(r));
                exit(1);
        }
        int fd = socket(ai->ai_family, type | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                freeaddrinfo(ai);
                return -1;
        }
        freeaddrinfo(ai);
        return fd;
}

static int listen_on(const char *port, int type)
{
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((unsigned short)atoi(port))};
        int fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0), one = 1, zero = 0;
        if (fd < 0)
                return -1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -1;
        if (type == SOCK_STREAM && listen(fd, 128) < 0)
                return -1;
        return fd;
}

/* copy one line from fd to stdout */
static int answer_line(int fd)
{
        char c;
        ssize_t n;
        while ((n = read(fd, &c, 1)) == 1) {
                putchar(c);
                if (c == '\n')
                        return 0;
        }
        return n < 0 ? die("read") : 1;
}

static int udp(char **a)
{
        char buf[2048];
        struct timeval tv = {.tv_sec = 3};
        int fd = connect_to(a[0], a[1], SOCK_DGRAM);
        if (fd < 0)
                return die("connect");
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (send(fd, a[2], strlen(a[2]), 0) < 0)
                return die("send");
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                fprintf(stderr, "netprobe: udp: no answer\n");
                return 2;
        }
        if (n < 0)
                return die("recv");
        buf[n] = 0;
        printf("%s\n", buf);
        return 0;
}

static int udp_echo(char **a)
{
        char buf[2048];
        struct sockaddr_storage peer;
        int fd = listen_on(a[0], SOCK_DGRAM);
        if (fd < 0)
                return die("bind");
        alarm((unsigned)atoi(a[1]));
        for (;;) {
                socklen_t len = sizeof(peer);
                ssize_t n = recvfrom(fd, buf + 6, sizeof(buf) - 6, 0, (struct sockaddr *)&peer, &len);
                if (n < 0)
                        return die("recvfrom");
                memcpy(buf, "guest:", 6);
                sendto(fd, buf, (size_t)n + 6, 0, (struct sockaddr *)&peer, len);
        }
}

static long long now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int tcp(char **a)
{
        long n = atol(a[2]);
        long long t0 = now_ns();
        for (long i = 0; i < n; i++) {
                int fd = connect_to(a[0], a[1], SOCK_STREAM);
                if (fd < 0)
                        return die("connect");
                close(fd);
        }
        printf("ok %ld %lld\n", n, now_ns() - t0);
        return 0;
}

/* "N\n", N zero bytes, then the answer's first line.  Never half-closes:
 * passt (0.0~git20230309) often loses the peer's FIN to a guest that has
 * sent its own (test-net.sh t_16b), so waiting for EOF could hang. */
static int send_bytes(char **a)
{
        static char buf[1 << 16];
        long long left = atoll(a[2]);
        int fd = connect_to(a[0], a[1], SOCK_STREAM);
        if (fd < 0)
                return die("connect");
        dprintf(fd, "%lld\n", left);
        while (left > 0) {
                ssize_t n = write(fd, buf, left < (long long)sizeof(buf) ? (size_t)left : sizeof(buf));
                if (n < 0)
                        return die("write");
                left -= n;
        }
        return answer_line(fd);
}

static int serve(char **a, int sink)
{
        static char buf[1 << 16];
        int fd = listen_on(a[0], SOCK_STREAM);
        if (fd < 0)
                return die("listen");
        alarm((unsigned)atoi(a[1]));
        for (;;) {
                int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        return die("accept");
                if (sink) {
                        /* "N\n" then N bytes; answered after the N-th */
                        char line[32];
                        size_t len = 0;
                        long long want, total = 0;
                        while (len < sizeof(line) - 1 && read(c, line + len, 1) == 1 && line[len] != '\n')
                                len++;
                        line[len] = 0;
                        want = atoll(line);
                        while (total < want) {
                                ssize_t n = read(c, buf, want - total < (long long)sizeof(buf) ? (size_t)(want - total) : sizeof(buf));
                                if (n <= 0)
                                        break;
                                total += n;
                        }
                        dprintf(c, "%lld\n", total);
                } else {
                        /* one byte, so the client can tell the guest
                         * itself answered (passt accepts on the host side
                         * before the guest has) */
                        (void)!write(c, "x", 1);
                        /* then the client's bytes, to its close: a close
                         * with them unread would be a reset, which can
                         * overtake the "x" */
                        shutdown(c, SHUT_WR);
                        struct pollfd pf = {.fd = c, .events = POLLIN};
                        while (poll(&pf, 1, 2000) == 1 && read(c, buf, sizeof(buf)) > 0) {
                        }
                }
                close(c);
        }
}

static int udp_hold(char **a)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(a[2]))};
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return die("bind");
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(a[1]))};
        if (inet_pton(AF_INET, a[0], &to.sin_addr) != 1 ||
            sendto(fd, "hello", 5, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
                return die("sendto");
        printf("sent\n");
        fflush(stdout);
        time_t end = time(NULL) + atoi(a[3]);
        for (time_t now; (now = time(NULL)) < end;) {
                struct timeval tv = {.tv_sec = end - now};
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                char buf[512], ip[64];
                struct sockaddr_in from;
                socklen_t fl = sizeof(from);
                ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &fl);
                if (n < 0)
                        continue;
                buf[n] = 0;
                inet_ntop(AF_INET, &from.sin_addr, ip, sizeof(ip));
                printf("from %s:%u %s\n", ip, ntohs(from.sin_port), buf);
                fflush(stdout);
        }
        return 0;
}

static int udp_ports(char **a)
{
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(a[1]))};
        if (inet_pton(AF_INET, a[0], &to.sin_addr) != 1)
                return die("address");
        int n = atoi(a[2]), sent = 0;
        for (int i = 0; i < n; i++) {
                int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return die("socket");
                sent += sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)) == 1;
        }
        printf("sent %d\n", sent);
        fflush(stdout);
        sleep((unsigned)atoi(a[3]));
        return 0;
}

static int udp_flood(char **a)
{
        struct sockaddr_in to = {.sin_family = AF_INET};
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || inet_pton(AF_INET, a[0], &to.sin_addr) != 1)
                return die("socket");
        long sent = 0;
        time_t end = time(NULL) + atoi(a[1]);
        for (unsigned port = 1; time(NULL) < end; port = port % 65535 + 1) {
                to.sin_port = htons((unsigned short)port);
                sent += sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)) == 1;
        }
        printf("sent %ld\n", sent);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct {
                const char *name;
                int args;
        } cmds[] = {{"udp", 3}, {"udp-echo", 2}, {"tcp", 3}, {"send", 3}, {"accept", 2}, {"sink", 2},
                     {"udp-hold", 4}, {"udp-ports", 4}, {"udp-flood", 2}};
        for (size_t i = 0; argc > 1 && i < sizeof(cmds) / sizeof(cmds[0]); i++) {
                if (strcmp(argv[1], cmds[i].name) || argc != cmds[i].args + 2)
                        continue;
                switch (i) {
                case 0: return udp(argv + 2);
                case 1: return udp_echo(argv + 2);
                case 2: return tcp(argv + 2);
                case 3: return send_bytes(argv + 2);
                case 4: return serve(argv + 2, 0);
                case 5: return serve(argv + 2, 1);
                case 6: return udp_hold(argv + 2);
                case 7: return udp_ports(argv + 2);
                default: return udp_flood(argv + 2);
                }
        }
        fprintf(stderr, "usage: netprobe udp|udp-echo|tcp|send|accept|sink|udp-hold|udp-ports|udp-flood ARGS (see the source)\n");
        return 64;
}
