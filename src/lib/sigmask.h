/* SPDX-License-Identifier: Apache-2.0 */
/* Blocking a set of signals, for a process that takes them through a
 * signalfd (sigmask.c). */
#pragma once

#include <signal.h>

/* Block the signals listed (ending with 0) and give them as *ret_mask,
 * for signalfd(); the mask before goes to *ret_old unless it is NULL. */
void signals_block(sigset_t *ret_mask, sigset_t *ret_old, ...);
