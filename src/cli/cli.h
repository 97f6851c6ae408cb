/* SPDX-License-Identifier: Apache-2.0 */
/* What the CLI's verbs share: their entry points, messages, the run options they parse. */
#pragma once
#include "msb.h"

/* Each verb: returns the process exit status. */
int cmd_run(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_kill(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_rmi(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_login(int argc, char **argv);
int cmd_logout(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_pool(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_mcp(int argc, char **argv);
int cmd_events(int argc, char **argv);

/* Print "msb: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A context, or NULL after printing why not. */
struct msb_ctx *cli_ctx(void);
/* Log callback for libmsb (prints "msb: " lines to stderr). */
void cli_log(const char *line, void *userdata);
/* Progress callback for libmsb pulls: one line per layer on stderr, redrawn
 * in place (for a terminal). */
void cli_pull_progress(const struct msb_layer_progress *layers, size_t n, double secs, bool first, void *userdata);
/* "512 B", "2.1 MB": decimal units, as docker prints sizes. */
void cli_human_size(uint64_t b, char *out, size_t n);

/* What run and create parsed. */
struct run_cli {
        struct msb_run_opts *o;
        const char *name;
        bool verbose, detach, rm, tty, interactive, has_command, disk_set, lifetime_set;
        bool rootfs; /* --rootfs given: no IMAGE operand */
        unsigned timeout;
};
int cli_parse_uint(const char *s, unsigned long max, unsigned *ret);
/* Attach to a sandbox's main process on this terminal until it ends (its
 * status) or the user detaches (0). */
int cli_attach(struct msb_ctx *ctx, const char *name, bool forward_stdin, bool tty, unsigned timeout);
