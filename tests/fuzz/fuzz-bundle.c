/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: msb-runtime's readers of an OCI bundle's config.json
 * and of `exec --process` JSON (src/runtime/bundle.c).  The bundle comes
 * from the caller, but its process, mounts and annotations come from the
 * image: untrusted text.  The input is written as both files in turn.
 *
 * A bundle names host paths (root.path, bind sources) and a read-only one
 * makes mount points in its root, so the target first chroots into the
 * scratch directory $FUZZ_BUNDLE_ROOT (root only; it refuses to run
 * otherwise): whatever a bundle names, only that directory can change.
 * Corpus and artifact paths are then inside it (tests/run-all.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "runtime/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        /* LeakSanitizer reads /proc: a procfs in the scratch directory, in
         * a mount namespace of our own so it goes when we do */
        const char *dir = getenv("FUZZ_BUNDLE_ROOT");
        if (!dir || dir[0] != '/' || chdir(dir) < 0 || unshare(CLONE_NEWNS) < 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 || (mkdir("proc", 0555) < 0 && errno != EEXIST) ||
            mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 || chroot(".") < 0) {
                fprintf(stderr, "fuzz-bundle: set FUZZ_BUNDLE_ROOT to a scratch directory and run as root (the "
                                "target chroots into it)\n");
                exit(1);
        }
        mkdir("/b", 0755);
        mkdir("/b/rootfs", 0755);
        mkdir("/tmp", 01777);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (write_file_atomic_at(AT_FDCWD, "/b/config.json", data, size, 0644) < 0)
                return 0;
        struct rt_bundle b;
        if (rt_bundle_load("/b", &b) == 0)
                rt_bundle_free(&b);
        struct rt_process p;
        if (rt_process_parse_file("/b/config.json", &p) == 0)
                rt_process_free(&p);
        return 0;
}
