/* SPDX-License-Identifier: Apache-2.0 */
/* Child processes and threads (proc.c): spawned in a session of their
 * own, dying with msb, killed and reaped; signals blocked. */
#pragma once
#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

/* Spawn argv with the given fds as the child's 0,1,2 and keep_fd (if >= 0)
 * at the same number without CLOEXEC.  The child gets its own session (so a
 * terminal's Ctrl-C reaches only msb) and dies with us (PDEATHSIG). */
int proc_spawn(char *const argv[], int in_fd, int out_fd, int err_fd, int keep_fd, pid_t *ret_pid, int *ret_pidfd);
/* The same with nkeep fds kept, as the child's 3, 4, ... */
#define PROC_KEEP_MAX 4
int proc_spawn_fds(char *const argv[], int in_fd, int out_fd, int err_fd, const int *keep, int nkeep, pid_t *ret_pid,
                   int *ret_pidfd);
/* A thread running with every signal blocked: signals are the caller's
 * signalfd's to take.  0 or -errno. */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg);
/* Block the signals listed (ending in 0) in this thread: the set they form
 * in *ret_mask (for a signalfd), the mask before in *ret_old (may be
 * NULL).  proc_block_signals(&m, &old, SIGINT, SIGTERM, 0). */
void proc_block_signals(sigset_t *ret_mask, sigset_t *ret_old, ...);
/* SIGKILL and reap, if still running. */
void proc_kill(pid_t pid, int pidfd);
void proc_kill_wait(pid_t pid, int *pidfd);
