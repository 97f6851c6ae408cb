/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
#include "msb.h"

/* Each verb: returns the process exit status. */
int cmd_run(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_rmi(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_login(int argc, char **argv);
int cmd_logout(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_info(int argc, char **argv);

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
