/* SPDX-License-Identifier: Apache-2.0 */
/* Parsers for user-facing values: sizes, signals, accelerators, guest paths. */
#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "msb.h"
#include "guest_path.h"

int msb_signal_parse(const char *s)
{
        static const struct {
                const char *n;
                int v;
        } sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
                    {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
                    {"WINCH", SIGWINCH}, {"ALRM", SIGALRM}, {"PIPE", SIGPIPE}};
        if (!s || !*s)
                return -EINVAL;
        if (isdigit((unsigned char)s[0])) {
                char *end;
                unsigned long n = strtoul(s, &end, 10);
                return *end || n < 1 || n > 64 ? -EINVAL : (int)n;
        }
        if (!strncasecmp(s, "SIG", 3))
                s += 3;
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                if (!strcasecmp(s, sigs[i].n))
                        return sigs[i].v;
        return -EINVAL;
}

int msb_parse_size(const char *s, uint64_t *ret_bytes)
{
        if (!s || !isdigit((unsigned char)s[0]))
                return -EINVAL;
        uint64_t v = 0;
        const char *p = s;
        for (; isdigit((unsigned char)*p); p++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        unsigned shift = 0;
        switch (tolower((unsigned char)*p)) {
        case '\0':
                break;
        case 'k':
                shift = 10;
                break;
        case 'm':
                shift = 20;
                break;
        case 'g':
                shift = 30;
                break;
        case 't':
                shift = 40;
                break;
        default:
                return -EINVAL;
        }
        if (*p) {
                p++;
                /* accept 512M, 512MB, 512MiB */
                if (!strcasecmp(p, "b") || !strcasecmp(p, "ib"))
                        p += strlen(p);
                if (*p)
                        return -EINVAL;
        }
        if (shift && v > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret_bytes = v << shift;
        return 0;
}

int msb_accel_parse(const char *s, enum msb_accel *ret)
{
        if (!s)
                return -EINVAL;
        if (!strcmp(s, "auto"))
                *ret = MSB_ACCEL_AUTO;
        else if (!strcmp(s, "kvm"))
                *ret = MSB_ACCEL_KVM;
        else if (!strcmp(s, "tcg"))
                *ret = MSB_ACCEL_TCG;
        else
                return -EINVAL;
        return 0;
}

int guest_path_check(const char *path, const char **ret_why)
{
        const char *why = NULL;
        if (!path[0])
                why = "is empty";
        else if (path[0] != '/')
                why = "must be absolute";
        else if (strlen(path) >= 4000)
                why = "is too long";
        else {
                bool only_slashes = true;
                for (const char *s = path; *s; s++)
                        if (*s != '/')
                                only_slashes = false;
                if (only_slashes)
                        why = "must not be /";
        }
        if (!why) {
                for (const char *s = path; *s;) {
                        while (*s == '/')
                                s++;
                        size_t n = strcspn(s, "/");
                        if (n == 2 && !strncmp(s, "..", 2))
                                why = "must not contain '..'";
                        s += n;
                }
        }
        if (!why) {
                static const char *const banned[] = {"/proc", "/sys", "/dev"};
                for (size_t i = 0; i < ARRAY_SIZE(banned); i++) {
                        size_t n = strlen(banned[i]);
                        if (!strncmp(path, banned[i], n) && (path[n] == '\0' || path[n] == '/'))
                                why = "must not be under /proc, /sys or /dev";
                }
        }
        if (why) {
                if (ret_why)
                        *ret_why = why;
                return -EINVAL;
        }
        return 0;
}

char *guest_path_normalize(const char *path)
{
        /* collapse "//", drop "." components and trailing "/"; ".." is kept
         * so that guest_path_check() can reject it */
        size_t n = strlen(path);
        char *out = xmalloc(n + 2);
        size_t o = 0;
        for (const char *s = path; *s;) {
                while (*s == '/')
                        s++;
                size_t k = strcspn(s, "/");
                if (k == 0)
                        break;
                if (!(k == 1 && s[0] == '.')) {
                        out[o++] = '/';
                        memcpy(out + o, s, k);
                        o += k;
                }
                s += k;
        }
        if (o == 0 && path[0] == '/')
                out[o++] = '/';
        else if (path[0] != '/' && o > 0) {
                /* keep relative paths relative so the check can reject them */
                memmove(out, out + 1, o - 1);
                o--;
        }
        out[o] = '\0';
        return out;
}
