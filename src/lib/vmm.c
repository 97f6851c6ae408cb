/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QEMU microvm backend: builds the command line.  See DESIGN.md for why each
 * flag is there; the comments below repeat the non-obvious ones.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "vmm.h"
#include "settings.h"

#define VMM_TCG_TB_MIB 32u /* TCG's translation cache, MiB */

const char *vmm_qemu_binary(void)
{
        const char *q = msb_setting(SET_MSB_QEMU);
        return q && *q ? q : "qemu-system-x86_64";
}

/* Appending to the argv being built, *v. */
#define A(s) strv_push(v, (s))
#define AF(...) strv_push_take(v, xasprintf(__VA_ARGS__))

/* The machine: microvm, the accelerator and CPU, memory, no defaults. */
static void qemu_machine(char ***v, const struct vmm_config *c)
{
        /* no option ROMs: less for the firmware to do.  Keep the RTC: without
         * it the kernel waits a second twice (reading the time, probing
         * rtc_cmos), measured as 2 s of a 4 s TCG boot. */
        A("-M");
        /* a kernel without ACPI-described devices gets virtio_mmio.device=
         * entries on its command line from QEMU when ACPI is off */
        A(c->acpi ? "microvm,x-option-roms=off" : "microvm,x-option-roms=off,acpi=off");
        if (c->accel == MSB_ACCEL_KVM) {
                A("-accel");
                A("kvm");
                A("-cpu");
                A("host");
        } else {
                /* the translation cache bounded at QEMU's pre-5.0 default:
                 * its 1 GiB default lets a long-running sandbox's QEMU
                 * grow by whatever code the guest ever ran (python's
                 * imports: 79 MiB anonymous, 52 MiB with this cap, no
                 * slower; 16 MiB was 30% slower) */
                A("-accel");
                AF("tcg,tb-size=%u", VMM_TCG_TB_MIB);
                /* every feature TCG can emulate, so modern userlands run */
                A("-cpu");
                A("max");
        }
        A("-smp");
        AF("%u", c->cpus);
        A("-m");
        AF("%uM", c->memory_mib);
        /* vhost-user needs guest memory shared with the server process */
        A("-object");
        AF("memory-backend-memfd,id=mem,size=%uM,share=on", c->memory_mib);
        A("-numa");
        A("node,memdev=mem");
        A("-nodefaults");
        A("-no-user-config");
        A("-display");
        A("none");
        /* agentd reboots at the end; this turns the reset into an exit */
        A("-no-reboot");
}

/* The serial console, the kernel, the initramfs and the kernel's command
 * line. */
static void qemu_kernel(char ***v, const struct vmm_config *c)
{
        A("-chardev");
        AF("socket,id=con,fd=%d", c->console_fd);
        A("-serial");
        A("chardev:con");
        A("-kernel");
        A(c->kernel);
        A("-initrd");
        A(c->initramfs);
        A("-append");
        char tsc[48] = "";
        if (c->accel == MSB_ACCEL_TCG && c->tsc_khz)
                snprintf(tsc, sizeof(tsc), " tsc_early_khz=%u", c->tsc_khz);
        /* reboot=t: triple-fault reset works on every kernel config;
         * panic=-1: a panicking guest resets at once, so QEMU exits */
        /* msb.root: agentd mounts the image root while its control port
         * comes up, instead of after RUN */
        char root[64] = "";
        if (c->root_tag)
                snprintf(root, sizeof(root), " msb.root=%s", c->root_tag);
        AF("console=ttyS0 reboot=t panic=-1 %s i8042.noaux i8042.nomux i8042.nopnp "
           "i8042.dumbkbd tsc=reliable no_timer_check%s%s%s%s",
           msb_setting(SET_MSB_DEBUG_KERNEL) ? "loglevel=7" : "quiet loglevel=3", c->debug ? " msb.debug=1" : "", tsc, root,
           c->warm ? " msb.warm=1" : "");
}

/* The devices: the control port, the disk, the network and one
 * vhost-user-fs device per share. */
static void qemu_devices(char ***v, const struct vmm_config *c)
{
        /* vhost-user refuses legacy virtio */
        A("-global");
        A("virtio-mmio.force-legacy=false");
        A("-device");
        A("virtio-serial-device,max_ports=2");
        A("-chardev");
        AF("socket,id=ctl,fd=%d", c->ctl_fd);
        A("-device");
        A("virtserialport,chardev=ctl,name=msb.ctl");
        if (c->disk) {
                /* QEMU's option syntax: a ',' in a value is written ",," */
                char *esc = xcalloc(2 * strlen(c->disk) + 1, 1);
                for (const char *p = c->disk, *q; *p; p = q) {
                        q = strchrnul(p, ',');
                        strncat(esc, p, (size_t)(q - p));
                        if (*q == ',') {
                                strcat(esc, ",,");
                                q++;
                        }
                }
                A("-drive");
                AF("file=%s,if=none,id=disk0,format=raw,discard=unmap", esc);
                free(esc);
                A("-device");
                A("virtio-blk-device,drive=disk0");
        }
        if (c->net_socket || c->net_tap) {
                /* passt's framing over a unix socket msb-netd listens on;
                 * the MAC is the same in every sandbox: each has a link of
                 * its own.  Or a tap of an OCI container's namespace, with
                 * its interface's MAC */
                A("-netdev");
                if (c->net_socket)
                        AF("stream,id=net0,server=off,addr.type=unix,addr.path=%s", c->net_socket);
                else
                        AF("tap,id=net0,ifname=%s,script=no,downscript=no", c->net_tap);
                A("-device");
                AF("virtio-net-device,netdev=net0,mac=%s", c->net_mac);
        }
        for (size_t i = 0; i < c->nshares; i++) {
                A("-chardev");
                AF("socket,id=fs%zu,path=%s", i, c->shares[i].socket_path);
                A("-device");
                AF("vhost-user-fs-device,chardev=fs%zu,tag=%s,queue-size=1024", i, c->shares[i].tag);
        }
}
#undef A
#undef AF

char **vmm_qemu_argv(const struct vmm_config *c)
{
        char **v = NULL;
        strv_push(&v, c->qemu);
        qemu_machine(&v, c);
        qemu_kernel(&v, c);
        qemu_devices(&v, c);
        return v;
}
