/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a VM is made of on the host: the guest kit, kernel plus initramfs
 * (kit.c), the accelerator (accel.c), QEMU's command line (vmm.c) and the
 * virtio-fs server backends (fsd.c).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "ctx.h"
#include "settings.h"
#include "msb.h"

/* ---- kit.c ---- */
struct msb_kit {
        char *kernel;       /* path to the kernel image */
        char *initramfs;    /* path to the initramfs built for it */
        char *release;      /* kernel release, e.g. 6.1.0-26-cloud-amd64 */
        const char *flavor; /* "msb" (tailored), "debian" or "custom" */
        bool acpi;          /* false: virtio-mmio devices on the command line */
};
int msb_kit_prepare(struct msb_ctx *ctx, struct msb_kit *ret_kit, struct msb_error *err);
void msb_kit_free(struct msb_kit *kit);

/* ---- accel.c ---- */
/* Decide the accelerator; *ret_why says why (static string or owned). */
int msb_accel_resolve(struct msb_ctx *ctx, enum msb_accel want, enum msb_accel *ret_accel, char **ret_why,
                      struct msb_error *err);

/* Host TSC rate in kHz (cached per host boot), 0 if unknown. */
unsigned msb_host_tsc_khz(struct msb_ctx *ctx);

/* ---- vmm.c: QEMU backend ---- */
struct vmm_share {
        char *tag;
        char *socket_path;
};
struct vmm_config {
        const char *qemu;      /* binary */
        const char *kernel;
        const char *initramfs;
        enum msb_accel accel;  /* KVM or TCG, resolved */
        unsigned cpus;
        unsigned memory_mib;
        int ctl_fd;            /* fd number in the child for the control chardev */
        int console_fd;        /* and for the serial console's (console.c) */
        bool debug;            /* agentd debug logging, kernel messages on */
        unsigned tsc_khz;      /* TCG: host TSC rate for the guest, 0 = let it calibrate */
        bool acpi;             /* false for kernels taking virtio-mmio devices from the cmdline */
        const char *root_tag;  /* the image root's share, for agentd to mount early; or NULL */
        bool warm;             /* a pool's VM: agentd waits for its sandbox without a deadline */
        struct vmm_share *shares;
        size_t nshares;
        const char *disk;      /* raw disk image for virtio-blk (/dev/vda), or NULL */
        const char *net_socket; /* msb-netd's socket for virtio-net, or NULL */
        const char *net_tap;    /* or a tap device's name; neither: no network device */
        const char *net_mac;    /* the guest's MAC on it */
};
/* Build QEMU's argv (NULL-terminated, owned by caller). */
char **vmm_qemu_argv(const struct vmm_config *c);
const char *vmm_qemu_binary(void);

/* ---- fsd.c: virtio-fs server backends ---- */
struct fsd_share {
        const char *path;        /* directory, or a regular file when file is set */
        bool file;
        bool read_only;
        bool rootfs;             /* the image root: never changes under the guest */
        bool owner_passthrough;  /* guest chmod/chown reach the host inode */
};
struct fsd_backend {
        const char *name;
        /* argv for a server of share s on the listening socket passed as
         * fd listen_fd */
        char **(*argv)(const struct fsd_share *s, int listen_fd);
        /* argv for one server of n shares behind one device, entry "K" of
         * its root being share K; NULL if the backend cannot */
        char **(*argv_multi)(const struct fsd_share *s, size_t n, int listen_fd);
        bool enforces_ro;  /* else read-only is the guest's mount flag only */
        bool needs_root;
        bool files;        /* can share a single file */
};
/* Backend by name; NULL or "" means $MSB_FS_BACKEND, else "msb".  NULL if
 * there is no such backend. */
const struct fsd_backend *fsd_backend_find(const char *name);
/* The backend name asked for: name, else $MSB_FS_BACKEND (may be NULL). */
const char *fsd_backend_asked(const char *name);
/* Whether $MSB_VIRTIOFSD names a virtiofsd of the caller's own. */
bool fsd_virtiofsd_given(void);

/* A helper program: $env if set, else name next to the running binary or in
 * ../libexec/msb/ from it; NULL if none is found. */
char *msb_find_helper(enum msb_setting env, const char *name);
