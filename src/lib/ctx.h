/* SPDX-License-Identifier: Apache-2.0 */
/* A context's state (ctx.c): where msb keeps its files, how it logs. */
#pragma once
#include <stdbool.h>

#include "msb.h"

struct msb_ctx {
        char *data_dir;    /* images, kernels, caches */
        char *runtime_dir; /* one dir per running sandbox */
        char *sandboxes_dir; /* named sandboxes: <data>/sandboxes unless set */
        char *system_dir;  /* kernels and images installed for every user, or NULL */
        int log_level;
        void (*log_fn)(const char *line, void *userdata);
        void *log_ud;
        bool progress;     /* pull summaries at log level 0 */
        void (*progress_fn)(const struct msb_layer_progress *, size_t, double, bool, void *);
        void *progress_ud;
        bool insecure;     /* pull over plain HTTP (msb pull --insecure) */
        bool detached;     /* a supervisor's: its stderr is a file no one reads live */
        bool no_signals;   /* a server's: relays leave signals alone */
};
void msb_log(const struct msb_ctx *ctx, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
