/* SPDX-License-Identifier: Apache-2.0 */
/* QEMU command-line construction. */
#include <stdlib.h>

#include "check.h"
#include "common/util.h"
#include "lib/vmm.h"

static int find(char **v, const char *s)
{
        for (int i = 0; v[i]; i++)
                if (!strcmp(v[i], s))
                        return i;
        return -1;
}

static const char *after(char **v, const char *flag, int nth)
{
        for (int i = 0; v[i]; i++)
                if (!strcmp(v[i], flag) && nth-- == 0)
                        return v[i + 1];
        return NULL;
}

static bool has_sub(char **v, const char *s)
{
        for (int i = 0; v[i]; i++)
                if (strstr(v[i], s))
                        return true;
        return false;
}

int main(void)
{
        struct vmm_share shares[] = {{"msbroot", "/run/msb/x/fs0.sock"}, {"msbvol", "/run/msb/x/fs1.sock"}};
        struct vmm_config c = {.qemu = "qemu-system-x86_64", .kernel = "/k", .initramfs = "/i",
                               .console_fd = 4, .accel = MSB_ACCEL_TCG, .cpus = 2,
                               .memory_mib = 768, .ctl_fd = 3, .shares = shares, .nshares = 2, .tsc_khz = 2595898};
        char **v = vmm_qemu_argv(&c);
        CHECK_STR(v[0], "qemu-system-x86_64");
        CHECK_STR(after(v, "-M", 0), "microvm,x-option-roms=off,acpi=off");
        CHECK_STR(after(v, "-accel", 0), "tcg,tb-size=32");
        CHECK_STR(after(v, "-smp", 0), "2");
        CHECK_STR(after(v, "-m", 0), "768M");
        /* vhost-user needs shared memory of the same size */
        CHECK_STR(after(v, "-object", 0), "memory-backend-memfd,id=mem,size=768M,share=on");
        CHECK_STR(after(v, "-numa", 0), "node,memdev=mem");
        CHECK_STR(after(v, "-global", 0), "virtio-mmio.force-legacy=false");
        CHECK(find(v, "-no-reboot") > 0);
        CHECK(find(v, "-nodefaults") > 0);
        CHECK_STR(after(v, "-kernel", 0), "/k");
        CHECK_STR(after(v, "-initrd", 0), "/i");
        CHECK(strstr(after(v, "-append", 0), "tsc_early_khz=2595898") != NULL);
        CHECK(strstr(after(v, "-append", 0), "panic=-1") != NULL);
        /* the console goes to msb, which bounds its log (console.c) */
        CHECK_STR(after(v, "-chardev", 0), "socket,id=con,fd=4");
        CHECK_STR(after(v, "-chardev", 1), "socket,id=ctl,fd=3");
        CHECK_STR(after(v, "-device", 1), "virtserialport,chardev=ctl,name=msb.ctl");
        CHECK_STR(after(v, "-chardev", 2), "socket,id=fs0,path=/run/msb/x/fs0.sock");
        CHECK_STR(after(v, "-device", 2), "vhost-user-fs-device,chardev=fs0,tag=msbroot,queue-size=1024");
        CHECK_STR(after(v, "-device", 3), "vhost-user-fs-device,chardev=fs1,tag=msbvol,queue-size=1024");
        CHECK(!has_sub(v, "msb.debug"));
        strv_free(v);

        c.accel = MSB_ACCEL_KVM;
        c.debug = true;
        c.acpi = true;
        v = vmm_qemu_argv(&c);
        CHECK_STR(after(v, "-accel", 0), "kvm");
        CHECK_STR(after(v, "-cpu", 0), "host");
        /* the Debian kernel finds its virtio devices through ACPI */
        CHECK_STR(after(v, "-M", 0), "microvm,x-option-roms=off");
        /* the TSC hint is for TCG only; KVM guests have kvmclock */
        CHECK(strstr(after(v, "-append", 0), "tsc_early_khz") == NULL);
        CHECK(strstr(after(v, "-append", 0), "msb.debug=1") != NULL);
        strv_free(v);
        CHECK_DONE();
}
