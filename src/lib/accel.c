/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Accelerator choice.  "/dev/kvm exists" does not mean "KVM is fast": on
 * nested or emulated hosts it can run guest code thousands of times slower
 * than TCG.  So auto mode boots a 64 KiB firmware that spins 32M iterations
 * and exits through isa-debug-exit; KVM is used only if that finishes within
 * PROBE_DEADLINE_MS.  The verdict is cached per (host kernel, QEMU binary).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#include "common/util.h"
#include "vmm.h"
#include "proc.h"
#include "settings.h"

/* Native speed does this in ~20 ms plus QEMU start-up; the slow KVM seen on
 * build machines needed ~18 s. */
#define PROBE_DEADLINE_MS 1500

static void write_probe_firmware(uint8_t img[65536])
{
        /* real mode at the reset vector:
         *   mov ecx, 0x2000000; l: dec ecx; jnz l; mov al, 0; out 0xf4, al; hlt */
        static const uint8_t code[] = {0x66, 0xb9, 0x00, 0x00, 0x00, 0x02, 0x66, 0x49, 0x75,
                                       0xfc, 0xb0, 0x00, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd};
        memset(img, 0xf4, 65536);
        memcpy(img, code, sizeof(code));
        /* reset vector F000:FFF0 -> jmp far F000:0000 */
        static const uint8_t jmp[] = {0xea, 0x00, 0x00, 0x00, 0xf0};
        memcpy(img + 0xfff0, jmp, sizeof(jmp));
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns 1 if KVM ran the probe fast, 0 if not, <0 on error; *why explains. */
static int kvm_probe(struct msb_ctx *ctx, char **why)
{
        _cleanup_free_ char *dir = xasprintf("%s/cache", ctx->data_dir);
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        _cleanup_free_ char *fw = xasprintf("%s/kvm-probe.bin", dir);
        uint8_t *img = xmalloc(65536);
        write_probe_firmware(img);
        r = write_file_atomic_at(AT_FDCWD, fw, img, 65536, 0644);
        free(img);
        if (r < 0)
                return r;
        char *argv[] = {(char *)vmm_qemu_binary(), "-M", "microvm,x-option-roms=off,rtc=off", "-accel", "kvm",
                        "-nodefaults", "-no-user-config", "-display", "none", "-m", "16", "-bios", fw,
                        "-device", "isa-debug-exit,iobase=0xf4,iosize=1", NULL};
        pid_t pid;
        int pidfd;
        int64_t t0 = now_ms();
        r = proc_spawn(argv, -1, -1, -1, -1, &pid, &pidfd);
        if (r < 0)
                return r;
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        int n = poll(&p, 1, PROBE_DEADLINE_MS);
        int64_t dt = now_ms() - t0;
        if (n == 0) {
                proc_kill_wait(pid, &pidfd);
                *why = xasprintf("KVM probe did not finish within %d ms (KVM present but slow)", PROBE_DEADLINE_MS);
                return 0;
        }
        int st = 0;
        waitpid(pid, &st, 0);
        close(pidfd);
        unlink(fw);
        /* isa-debug-exit: exit status is (value << 1) | 1 */
        if (WIFEXITED(st) && WEXITSTATUS(st) == 1) {
                *why = xasprintf("KVM probe ran 32M iterations in %lld ms", (long long)dt);
                return 1;
        }
        *why = xasprintf("KVM probe failed (QEMU status %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return 0;
}

static char *cache_key(void)
{
        struct utsname u;
        uname(&u);
        struct stat st = {0};
        const char *q = vmm_qemu_binary();
        _cleanup_free_ char *qpath = NULL;
        if (!strchr(q, '/')) {
                const char *path = msb_setting(SET_PATH);
                _cleanup_free_ char *pcopy = xstrdup(path ? path : "/usr/bin:/bin");
                char *save = NULL;
                for (char *d = strtok_r(pcopy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                        char *c = xasprintf("%s/%s", d, q);
                        if (access(c, X_OK) == 0) {
                                qpath = c;
                                break;
                        }
                        free(c);
                }
        } else
                qpath = xstrdup(q);
        if (qpath)
                stat(qpath, &st);
        return xasprintf("%s %s %lld %lld", u.release, qpath ? qpath : q, (long long)st.st_size,
                         (long long)st.st_mtime);
}

int msb_accel_resolve(struct msb_ctx *ctx, enum msb_accel want, enum msb_accel *ret_accel, char **ret_why,
                      struct msb_error *err)
{
        if (want == MSB_ACCEL_AUTO) {
                const char *e = msb_setting(SET_MSB_ACCEL);
                if (e && *e && msb_accel_parse(e, &want) < 0)
                        return msb_err(err, EINVAL, "MSB_ACCEL '%s': expected auto, kvm or tcg", e);
        }
        if (want == MSB_ACCEL_TCG) {
                *ret_accel = MSB_ACCEL_TCG;
                *ret_why = xstrdup("TCG requested");
                return 0;
        }
        bool kvm_dev = access("/dev/kvm", R_OK | W_OK) == 0;
        if (want == MSB_ACCEL_KVM) {
                if (!kvm_dev)
                        return msb_err(err, ENODEV, "--accel kvm: /dev/kvm is not usable (%s); use --accel tcg",
                                       errno_text(errno));
                *ret_accel = MSB_ACCEL_KVM;
                *ret_why = xstrdup("KVM requested");
                return 0;
        }
        if (!kvm_dev) {
                *ret_accel = MSB_ACCEL_TCG;
                *ret_why = xstrdup("no usable /dev/kvm");
                return 0;
        }
        _cleanup_free_ char *key = cache_key();
        _cleanup_free_ char *cpath = xasprintf("%s/cache/accel", ctx->data_dir);
        _cleanup_free_ char *cached = NULL;
        if (read_file_at(AT_FDCWD, cpath, 4096, &cached, NULL) == 0) {
                /* format: key \n verdict \n reason */
                char *nl = strchr(cached, '\n');
                if (nl) {
                        *nl = '\0';
                        char *verdict = nl + 1, *reason = strchr(verdict, '\n');
                        if (reason) {
                                *reason++ = '\0';
                                reason[strcspn(reason, "\n")] = '\0';
                        }
                        if (!strcmp(cached, key) && (!strcmp(verdict, "kvm") || !strcmp(verdict, "tcg"))) {
                                *ret_accel = !strcmp(verdict, "kvm") ? MSB_ACCEL_KVM : MSB_ACCEL_TCG;
                                *ret_why = xasprintf("%s (cached verdict)", reason ? reason : verdict);
                                return 0;
                        }
                }
        }
        char *why = NULL;
        int r = kvm_probe(ctx, &why);
        if (r < 0) {
                *ret_accel = MSB_ACCEL_TCG;
                *ret_why = xasprintf("KVM probe could not run (%s)", errno_text(r));
                return 0;
        }
        *ret_accel = r ? MSB_ACCEL_KVM : MSB_ACCEL_TCG;
        *ret_why = why;
        _cleanup_free_ char *line = xasprintf("%s\n%s\n%s\n", key, r ? "kvm" : "tcg", why);
        write_file_atomic_at(AT_FDCWD, cpath, line, strlen(line), 0644);
        return 0;
}

/*
 * Under TCG the guest's TSC ticks at the host's TSC rate, but the guest
 * kernel calibrates it against an emulated PIT, which fails when the host is
 * busy ("tsc: Unable to calibrate against PIT") and then boot can stall.  So
 * we measure the host TSC rate once per host boot and hand it to the guest as
 * tsc_early_khz.
 */
unsigned msb_host_tsc_khz(struct msb_ctx *ctx)
{
#if defined(__x86_64__)
        _cleanup_free_ char *boot_id = NULL;
        if (read_file_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", 128, &boot_id, NULL) < 0)
                return 0;
        boot_id[strcspn(boot_id, "\n")] = '\0';
        _cleanup_free_ char *cpath = xasprintf("%s/cache/tsc-khz", ctx->data_dir);
        _cleanup_free_ char *cached = NULL;
        if (read_file_at(AT_FDCWD, cpath, 256, &cached, NULL) == 0) {
                char id[64];
                unsigned khz;
                if (sscanf(cached, "%63s %u", id, &khz) == 2 && !strcmp(id, boot_id) && khz > 0)
                        return khz;
        }
        /* best of three 20 ms windows: preemption only makes a window longer */
        uint64_t best = 0;
        for (int i = 0; i < 3; i++) {
                struct timespec a, b;
                clock_gettime(CLOCK_MONOTONIC_RAW, &a);
                uint64_t t0 = __builtin_ia32_rdtsc();
                struct timespec d = {0, 20 * 1000 * 1000};
                nanosleep(&d, NULL);
                uint64_t t1 = __builtin_ia32_rdtsc();
                clock_gettime(CLOCK_MONOTONIC_RAW, &b);
                uint64_t ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u + (uint64_t)(b.tv_nsec - a.tv_nsec);
                uint64_t khz = (t1 - t0) * 1000000u / ns;
                if (i == 0 || khz > best)
                        best = khz;
        }
        if (best == 0 || best > 100000000u)
                return 0;
        _cleanup_free_ char *line = xasprintf("%s %u\n", boot_id, (unsigned)best);
        _cleanup_free_ char *cdir = xasprintf("%s/cache", ctx->data_dir);
        mkdir_p(cdir, 0755);
        write_file_atomic_at(AT_FDCWD, cpath, line, strlen(line), 0644);
        return (unsigned)best;
#else
        (void)ctx;
        return 0;
#endif
}
