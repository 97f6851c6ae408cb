/* SPDX-License-Identifier: Apache-2.0 */
/* msb serve and msb mcp: the API server's flags, the MCP server on stdio (both are src/api/'s). */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cli.h"
#include "common/util.h"

static void serve_usage(FILE *f)
{
        fputs("Usage: msb serve [OPTIONS]\n"
              "\n"
              "Serve msb's HTTP API (docs/api.md) in the foreground, logging to stderr.\n"
              "It listens on a unix socket only you can reach (msb serve --print-socket\n"
              "says where); the SDKs find it there and start msb serve when none runs.\n"
              "Sandboxes belong to their supervisors, not to the server: stopping or\n"
              "restarting it stops none, and the CLI and the API see the same ones.\n"
              "\n"
              "Options:\n"
              "      --socket PATH      the unix socket (default <runtime dir>/.api/api.sock)\n"
              "      --listen ADDR:PORT also serve TCP (127.0.0.1:7070, [::1]:7070); every\n"
              "                         request must then carry the bearer token\n"
              "      --token-file FILE  the token for TCP (default <data dir>/api.token),\n"
              "                         made with 32 random bytes, mode 0600, if missing\n"
              "      --tls-cert FILE    serve TCP over TLS with this PEM certificate...\n"
              "      --tls-key FILE     ...and this PEM key (required off loopback)\n"
              "      --insecure         allow a non-loopback --listen without TLS (warns)\n"
              "  -q, --quiet            no request log\n"
              "      --print-socket     print the default socket's path and exit\n"
              "      --routes           print every route (METHOD PATH) and exit\n"
              "  -h, --help             this help\n",
              f);
}

int cmd_mcp(int argc, char **argv)
{
        if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
                fputs("Usage: msb mcp\n\nAn MCP server (Model Context Protocol) on stdin and stdout, for an agent\n"
                      "that starts it: tools to create, list, get, stop and remove sandboxes, run\n"
                      "commands, read logs and metrics. msb serve answers the same on POST /mcp.\n",
                      stdout);
                return 0;
        }
        if (argc > 1) {
                cli_error("mcp: takes no arguments ('%s'); see 'msb mcp --help'", argv[1]);
                return 125;
        }
        return api_mcp_stdio() == 0 ? 0 : 125;
}

int cmd_serve(int argc, char **argv)
{
        enum { O_SOCKET = 256, O_LISTEN, O_TOKEN, O_CERT, O_KEY, O_INSECURE, O_PRINT, O_ROUTES };
        static const struct option longopts[] = {
                {"socket", required_argument, NULL, O_SOCKET},  {"listen", required_argument, NULL, O_LISTEN},
                {"token-file", required_argument, NULL, O_TOKEN}, {"tls-cert", required_argument, NULL, O_CERT},
                {"tls-key", required_argument, NULL, O_KEY},    {"insecure", no_argument, NULL, O_INSECURE},
                {"quiet", no_argument, NULL, 'q'},              {"print-socket", no_argument, NULL, O_PRINT},
                {"routes", no_argument, NULL, O_ROUTES},        {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        struct api_serve_opts o = {0};
        bool print = false, routes = false;
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
                switch (c) {
                case O_SOCKET:
                        if (optarg[0] != '/') {
                                cli_error("serve: --socket '%s': expected an absolute path", optarg);
                                return 125;
                        }
                        o.socket_path = optarg;
                        break;
                case O_LISTEN:
                        o.listen = optarg;
                        break;
                case O_TOKEN:
                        o.token_file = optarg;
                        break;
                case O_CERT:
                        o.tls_cert = optarg;
                        break;
                case O_KEY:
                        o.tls_key = optarg;
                        break;
                case O_INSECURE:
                        o.insecure = true;
                        break;
                case 'q':
                        o.quiet = true;
                        break;
                case O_PRINT:
                        print = true;
                        break;
                case O_ROUTES:
                        routes = true;
                        break;
                case 'h':
                        serve_usage(stdout);
                        return 0;
                default:
                        cli_error("serve: unknown option '%s'; see 'msb serve --help'", argv[optind - 1]);
                        return 125;
                }
        }
        if (optind < argc) {
                cli_error("serve: takes no operands ('%s'); see 'msb serve --help'", argv[optind]);
                return 125;
        }
        if ((o.token_file || o.tls_cert || o.tls_key || o.insecure) && !o.listen) {
                cli_error("serve: --token-file, --tls-cert, --tls-key and --insecure are for --listen");
                return 125;
        }
        if (routes) {
                size_t n;
                const struct api_route *r = api_routes(&n);
                for (size_t i = 0; i < n; i++)
                        printf("%s %s\n", r[i].method, r[i].pattern);
                return 0;
        }
        if (print) {
                struct msb_ctx *ctx = cli_ctx();
                if (!ctx)
                        return 125;
                char *p = api_default_socket(ctx);
                printf("%s\n", p);
                free(p);
                msb_ctx_free(ctx);
                return 0;
        }
        return api_serve(&o) == 0 ? 0 : 125;
}
