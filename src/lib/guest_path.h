/* SPDX-License-Identifier: Apache-2.0 */
/* Guest paths as the user gives them (parse.c): checked and normalized. */
#pragma once

/* Validate a guest path: absolute, no "..", not "/", not under /proc /sys /dev. */
int guest_path_check(const char *path, const char **ret_why);
/* Collapse "//" and "/./", drop a trailing "/" (caller frees). */
char *guest_path_normalize(const char *path);
