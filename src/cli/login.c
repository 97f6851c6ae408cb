/* SPDX-License-Identifier: Apache-2.0 */
/* msb login [-u USER] [--password-stdin] REGISTRY; msb logout REGISTRY */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

static char *read_line(FILE *f, bool echo)
{
        struct termios old, quiet;
        bool tty = !echo && isatty(fileno(f)) && tcgetattr(fileno(f), &old) == 0;
        if (tty) {
                quiet = old;
                quiet.c_lflag &= (tcflag_t)~ECHO;
                tcsetattr(fileno(f), TCSAFLUSH, &quiet);
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, f);
        if (tty) {
                tcsetattr(fileno(f), TCSAFLUSH, &old);
                fputc('\n', stderr);
        }
        if (n < 0) {
                free(line);
                return NULL;
        }
        line[strcspn(line, "\r\n")] = 0;
        return line;
}

int cmd_login(int argc, char **argv)
{
        const char *user = NULL, *registry = NULL;
        bool from_stdin = false;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                        puts("Usage: msb login [-u USER] [--password-stdin] REGISTRY\n\n"
                             "Check the credentials against REGISTRY (host[:port], or docker.io) and keep them in\n"
                             "~/.docker/config.json, where msb pull looks for them.");
                        return 0;
                }
                if ((!strcmp(argv[i], "-u") || !strcmp(argv[i], "--username")) && i + 1 < argc)
                        user = argv[++i];
                else if (!strcmp(argv[i], "--password-stdin"))
                        from_stdin = true;
                else if (argv[i][0] != '-' && !registry)
                        registry = argv[i];
                else {
                        cli_error("login: unexpected argument '%s'; see 'msb login --help'", argv[i]);
                        return 125;
                }
        }
        if (!registry) {
                cli_error("login: name the registry, e.g. 'msb login -u me registry.example.com'");
                return 125;
        }
        char *u = user ? strdup(user) : NULL;
        if (!u) {
                if (from_stdin) {
                        cli_error("login: --password-stdin needs -u USER");
                        return 125;
                }
                fprintf(stderr, "Username: ");
                u = read_line(stdin, true);
        }
        if (!from_stdin)
                fprintf(stderr, "Password: ");
        char *pw = read_line(stdin, from_stdin);
        struct msb_error err = {0};
        struct msb_ctx *ctx;
        int status = 0;
        if (msb_ctx_new(&ctx, &err) < 0) {
                cli_error("%s", err.message);
                status = 125;
        } else {
                if (msb_registry_login(ctx, registry, u, pw, &err) < 0) {
                        cli_error("login %s: %s", registry, err.message);
                        status = 125;
                } else
                        printf("logged in to %s\n", registry);
                msb_ctx_free(ctx);
        }
        if (pw)
                explicit_bzero(pw, strlen(pw));
        free(pw);
        free(u);
        return status;
}

int cmd_logout(int argc, char **argv)
{
        if (argc != 2 || argv[1][0] == '-') {
                puts("Usage: msb logout REGISTRY");
                return argc == 2 ? 0 : 125;
        }
        struct msb_error err = {0};
        if (msb_registry_logout(argv[1], &err) < 0) {
                cli_error("logout %s: %s", argv[1], err.message);
                return 125;
        }
        printf("logged out of %s\n", argv[1]);
        return 0;
}
