/* SPDX-License-Identifier: Apache-2.0 */
/* Blocking a set of signals for a signalfd: the one mask set-up that the
 * supervisor, the pool daemon and the client relay share (sigmask.h). */
#include <stdarg.h>

#include "sigmask.h"

void signals_block(sigset_t *ret_mask, sigset_t *ret_old, ...)
{
        va_list ap;
        sigemptyset(ret_mask);
        va_start(ap, ret_old);
        for (int sig; (sig = va_arg(ap, int)) != 0;)
                sigaddset(ret_mask, sig);
        va_end(ap);
        sigprocmask(SIG_BLOCK, ret_mask, ret_old);
}
