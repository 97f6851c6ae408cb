/* SPDX-License-Identifier: Apache-2.0 */
/* msb info: what a run would use, and where msb keeps things. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_info(int argc, char **argv)
{
        if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
                puts("Usage: msb info\n\nShow the guest kernel, accelerator, QEMU, virtio-fs server and passt a run "
                     "would use, and msb's directories.");
                return 0;
        }
        if (argc > 1) {
                cli_error("info: unexpected argument '%s'; see 'msb info --help'", argv[1]);
                return 125;
        }
        struct msb_error err = {0};
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        struct msb_info *i;
        int r = msb_info_get(ctx, &i, &err);
        msb_ctx_free(ctx);
        if (r < 0) {
                cli_error("%s", err.message);
                return 125;
        }
        printf("msb:            %s\n", MSB_VERSION);
        printf("kernel:         %s\n", i->kernel);
        printf("kernel release: %s\n", i->kernel_release);
        printf("kernel kit:     %s\n", i->kernel_flavor);
        printf("initramfs:      %s\n", i->initramfs);
        printf("accelerator:    %s (%s)\n", i->accel, i->accel_why);
        printf("qemu:           %s\n", i->qemu_version);
        printf("fs server:      %s, %s\n", i->fs_server, i->fs_server_version);
        if (i->passt)
                printf("passt:          %s, %s\n", i->passt, i->passt_version);
        else
                printf("passt:          none (apt-get install passt, or ./setup.sh): only --net none works\n");
        printf("data dir:       %s (yours: kernels you built)\n", i->data_dir);
        printf("image store:    %s/images (yours: what you pull, import or load)\n", i->data_dir);
        printf("system dir:     %s (every user's, read-only: kernels and images, looked up after yours)\n",
               i->system_dir);
        printf("cache dir:      %s/cache (initramfs, accelerator verdict, TSC rate)\n", i->data_dir);
        printf("runtime dir:    %s\n", i->runtime_dir);
        msb_info_free(i);
        return 0;
}
