/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The error every msb layer fills: the library (through msb.h), the
 * daemons and the front ends.  A leaf: it includes nothing of msb's, so
 * src/common can use it without reaching up into the library.
 */
#ifndef MSB_ERROR_H
#define MSB_ERROR_H

struct msb_error {
        int code;           /* positive errno of the failure */
        char message[2048]; /* one line, no trailing newline */
};

#endif
