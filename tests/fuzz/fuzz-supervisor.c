/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: a sandbox supervisor's handlers, fed frames from a
 * hostile guest and from three clients, interleaved. */
#include <stddef.h>
#include <stdint.h>

#include "lib/sbstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        sup_fuzz(data, size);
        return 0;
}
