/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor's teardown: the starter and every client hear how it
 * ended, the VM goes, and state.json says stopped or crashed (or, for a
 * sandbox booted only for a copy, what it said before).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

/* Booted for a copy: the sandbox is left as it was found (a "created" one
 * has still never run; a stopped one keeps its exit code and times). */
static void state_restore(struct sup *s)
{
        snprintf(s->st.status, sizeof(s->st.status), "%s",
                 !strcmp(s->before.status, "running") ? "crashed" : s->before.status);
        s->st.started = s->before.started;
        s->st.finished = s->before.finished;
        s->st.exit_code = s->before.exit_code;
        free(s->error);
        s->error = s->before.error ? xstrdup(s->before.error) : NULL;
}

static void state_final(struct sup *s)
{
        snprintf(s->st.status, sizeof(s->st.status), "%s", s->crashed ? "crashed" : "stopped");
        s->st.finished = time(NULL);
        s->st.exit_code = s->status >= 0 ? s->status : (s->crashed ? 255 : 0);
        if (s->no_main && !s->crashed)
                state_restore(s);
        s->st.pid = 0;
        s->st.qemu_pid = 0;
        s->st.net_pid = 0;
        free(s->st.server_pids);
        s->st.server_pids = NULL;
        free(s->st.runtime);
        free(s->st.socket);
        s->st.runtime = s->st.socket = NULL;
        free(s->st.error);
        s->st.error = s->error ? xstrdup(s->error) : NULL;
        sb_state_write(s->dir, &s->st);
}

/* After the loop: nobody new gets in, the starter and every client hear
 * how it ended, the VM goes, the state says so. */
void sup_end(struct sup *s)
{
        close(s->lfd);
        s->lfd = -1;
        if (s->st.socket)
                unlink(s->st.socket);
        if (s->ready_fd >= 0) {
                /* a VM that died or never came up: its console says why */
                const char *what = s->error ? s->error : "the VM stopped during start";
                _cleanup_free_ char *msg = s->crashed ? vm_failure(s->vm, what) : xstrdup(what);
                sup_ready(s, msg);
        }
        sup_farewell(s, FAREWELL_MS);
        vm_free(s->vm);
        s->vm = NULL;
        if (s->log_fd >= 0)
                close(s->log_fd);
        while (s->procs)
                sup_proc_free(s, s->procs);
        kept_ended_free(s);
        state_final(s);
        /* one that was stopped stays, whatever it was made with */
        if (s->o->auto_remove && !s->no_main)
                sb_remove_files(s->ctx, s->name);
}

void sup_free(struct sup *s)
{
        vm_free(s->vm);
        msb_run_opts_free(s->o);
        if (s->sfd >= 0)
                close(s->sfd);
        if (s->lfd >= 0)
                close(s->lfd);
        msb_reader_free(&s->rd);
        sb_state_free(&s->st);
        sb_state_free(&s->before);
        free(s->error);
        free(s->dir);
}
