/* SPDX-License-Identifier: Apache-2.0 */
/* Signal names as runc takes them: KILL, SIGKILL, 9, RTMIN+3. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "runtime.h"

int rt_parse_signal(const char *s)
{
        static const struct {
                const char *n;
                int v;
        } sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},   {"TRAP", SIGTRAP},
                    {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},     {"FPE", SIGFPE},   {"KILL", SIGKILL},
                    {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},     {"USR2", SIGUSR2},   {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},
                    {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CONT", SIGCONT}, {"STOP", SIGSTOP},
                    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},   {"URG", SIGURG},   {"XCPU", SIGXCPU},
                    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},   {"WINCH", SIGWINCH}, {"IO", SIGIO},
                    {"POLL", SIGPOLL}, {"PWR", SIGPWR},       {"SYS", SIGSYS}};
        char *end;
        long n = strtol(s, &end, 10);
        if (*s && !*end)
                return n >= 1 && n <= 64 ? (int)n : -1;
        if (!strncasecmp(s, "SIG", 3))
                s += 3;
        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
                if (!strcasecmp(s, sigs[i].n))
                        return sigs[i].v;
        if (!strncasecmp(s, "RTMIN+", 6) && (n = strtol(s + 6, &end, 10)) >= 0 && !*end && SIGRTMIN + n <= SIGRTMAX)
                return SIGRTMIN + (int)n;
        return -1;
}
