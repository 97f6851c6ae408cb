/* SPDX-License-Identifier: Apache-2.0 */
/* msb version */
#include <stdio.h>

#include "cli.h"

int cmd_version(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        printf("msb %s\n", MSB_VERSION);
        return 0;
}
