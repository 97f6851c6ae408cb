/* SPDX-License-Identifier: Apache-2.0 */
/* msb cp: files and trees between the host and a sandbox (docker cp's
 * syntax and rules; the work is msb_sandbox_copy_in/out's). */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CP_USAGE "msb cp [-a] NAME:SRC_PATH DEST_PATH | SRC_PATH NAME:DEST_PATH"

/* docker's rule: "NAME:PATH" is a sandbox's path; a path that starts with
 * "/" or ".", or has a '/' before its first ':', is the host's (a host
 * file with a ':' in its name is "./a:b"). */
static bool sandbox_side(const char *arg, char **ret_name, const char **ret_path)
{
        const char *colon = strchr(arg, ':');
        if (!colon || arg[0] == '/' || arg[0] == '.' || memchr(arg, '/', (size_t)(colon - arg)))
                return false;
        *ret_name = strndup(arg, (size_t)(colon - arg));
        *ret_path = colon + 1;
        return *ret_name != NULL;
}

static int cp_usage_error(const char *what)
{
        cli_error("cp: %s; usage: %s", what, CP_USAGE);
        return 125;
}

static void cp_help(void)
{
        printf("Usage: %s\n\n"
               "Copy files and directories between a sandbox and the host (a stopped sandbox is booted\n"
               "for the copy, without its main process, and stopped again).\n\n"
               "  A file goes to DEST_PATH, or into it when it is a directory; a directory becomes\n"
               "  DEST_PATH when that does not exist, else goes into it under its own name;\n"
               "  SRC_PATH/. copies a directory's contents.  Modes and times are kept, symlinks are\n"
               "  copied as symlinks, devices, fifos and sockets are left out.  \"-\" as DEST_PATH\n"
               "  writes a tar to stdout; as SRC_PATH it reads one from stdin into a directory.\n\n"
               "  -a, --archive  copying in: keep the files' owners (default: root's)\n",
               CP_USAGE);
}

/* The copy itself, once the arguments are known: its exit status. */
static int cp_run(const char *name, const char *src, const char *dst, bool in, unsigned flags)
{
        struct msb_ctx *ctx = cli_ctx();
        if (!ctx)
                return 125;
        struct msb_error err = {0};
        struct msb_copy_stats st = {0};
        int r;
        /* "-": a tar on stdout or from stdin */
        if (in && !strcmp(src, "-"))
                r = msb_sandbox_copy_in_tar(ctx, name, 0, dst, flags, &err);
        else if (!in && !strcmp(dst, "-"))
                r = msb_sandbox_copy_out_tar(ctx, name, src, 1, flags, &err);
        else
                r = in ? msb_sandbox_copy_in(ctx, name, src, dst, flags, &st, &err)
                       : msb_sandbox_copy_out(ctx, name, src, dst, flags, &st, &err);
        msb_ctx_free(ctx);
        if (r < 0) {
                cli_error("%s", err.message);
                return 125;
        }
        if (st.skipped)
                cli_error("cp: %llu special file%s (devices, fifos, sockets) not copied", (unsigned long long)st.skipped,
                          st.skipped == 1 ? "" : "s");
        return 0;
}

int cmd_cp(int argc, char **argv)
{
        static const struct option lo[] = {{"archive", no_argument, NULL, 'a'}, {"help", no_argument, NULL, 'h'}, {0}};
        unsigned flags = 0;
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+ah", lo, NULL)) != -1) {
                if (c == 'a')
                        flags |= MSB_COPY_ARCHIVE;
                else if (c == 'h') {
                        cp_help();
                        return 0;
                } else {
                        if (optopt)
                                cli_error("cp: unknown option '-%c'; see 'msb cp --help'", optopt);
                        else
                                cli_error("cp: unknown option '%s'; see 'msb cp --help'", argv[optind - 1]);
                        return 125;
                }
        }
        if (argc - optind != 2)
                return cp_usage_error("expected a source and a destination");
        const char *src = argv[optind], *dst = argv[optind + 1], *spath = NULL, *dpath = NULL;
        char *sname = NULL, *dname = NULL;
        bool s_in = sandbox_side(src, &sname, &spath), d_in = sandbox_side(dst, &dname, &dpath);
        int status;
        if (s_in && d_in)
                status = cp_usage_error("copying between sandboxes is not supported");
        else if (!s_in && !d_in)
                status = cp_usage_error("one of the two must be a sandbox's path, NAME:PATH");
        else if (s_in && (flags & MSB_COPY_ARCHIVE))
                status = cp_usage_error("-a applies to copies into a sandbox");
        else
                status = s_in ? cp_run(sname, spath, dst, false, flags) : cp_run(dname, src, dpath, true, flags);
        free(sname);
        free(dname);
        return status;
}
