/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Just enough ELF to know what a dynamically linked executable will load
 * first: its program interpreter (PT_INTERP) and the libraries it names
 * (DT_NEEDED).  msb prefetches them in the guest (docs/startup.md).  The
 * bytes come from an image, so they are untrusted: only bounded pieces are
 * read (headers, the interpreter's name, the dynamic section, the string
 * table), every offset and size is checked before use, structures are
 * copied out (no alignment assumptions), and anything odd yields nothing
 * rather than an error: this is a hint.  Fuzzed by tests/fuzz/fuzz-elf.c.
 */
#include <elf.h>
#include <string.h>

#include "common/util.h"
#include "elf.h"

#define HDR_MAX (64u << 10)   /* ELF header and program headers */
#define DYN_MAX (64u << 10)   /* the dynamic section */
#define STR_MAX (1u << 20)    /* the dynamic string table */

/* Read exactly [off, off+n) of the file, or fail. */
static uint8_t *piece(const struct elf_src *src, uint64_t off, uint64_t n)
{
        if (n == 0 || off > src->size || n > src->size - off)
                return NULL;
        uint8_t *b = xmalloc((size_t)n + 1);
        if (src->pread(src->ctx, b, (size_t)n, off) != (ssize_t)n) {
                free(b);
                return NULL;
        }
        b[n] = 0;
        return b;
}

/* File offset of virtual address va, through the PT_LOAD segments. */
static bool va_to_off(const Elf64_Phdr *ph, unsigned n, uint64_t va, uint64_t *ret)
{
        for (unsigned i = 0; i < n; i++) {
                if (ph[i].p_type != PT_LOAD || va < ph[i].p_vaddr || va - ph[i].p_vaddr >= ph[i].p_filesz)
                        continue;
                uint64_t off = ph[i].p_offset + (va - ph[i].p_vaddr);
                if (off < ph[i].p_offset)
                        return false;
                *ret = off;
                return true;
        }
        return false;
}

/* A name of 1..255 bytes, NUL-terminated inside [s, s+room). */
static bool name_ok(const uint8_t *s, uint64_t room)
{
        const uint8_t *nul = memchr(s, 0, room < 256 ? (size_t)room : 256);
        return nul && nul != s;
}

void elf_deps(const struct elf_src *src, size_t max_needed, char **ret_interp, char ***ret_needed)
{
        *ret_interp = NULL;
        *ret_needed = NULL;
        Elf64_Ehdr eh;
        _cleanup_free_ uint8_t *h = piece(src, 0, sizeof(eh));
        if (!h)
                return;
        memcpy(&eh, h, sizeof(eh));
        if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
            eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64 ||
            eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
            (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > HDR_MAX)
                return;
        _cleanup_free_ uint8_t *pb = piece(src, eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr));
        if (!pb)
                return;
        _cleanup_free_ Elf64_Phdr *ph = xcalloc(eh.e_phnum, sizeof(*ph));
        memcpy(ph, pb, (size_t)eh.e_phnum * sizeof(*ph));
        const Elf64_Phdr *dyn = NULL;
        for (unsigned i = 0; i < eh.e_phnum; i++) {
                if (ph[i].p_type == PT_INTERP && !*ret_interp) {
                        uint64_t n = ph[i].p_filesz < 256 ? ph[i].p_filesz : 256;
                        _cleanup_free_ uint8_t *s = piece(src, ph[i].p_offset, n);
                        if (s && name_ok(s, n) && s[0] == '/')
                                *ret_interp = xstrdup((char *)s);
                } else if (ph[i].p_type == PT_DYNAMIC && !dyn) {
                        dyn = &ph[i];
                }
        }
        if (!dyn)
                return;
        uint64_t dsize = dyn->p_filesz < DYN_MAX ? dyn->p_filesz : DYN_MAX;
        dsize -= dsize % sizeof(Elf64_Dyn);
        _cleanup_free_ uint8_t *db = piece(src, dyn->p_offset, dsize);
        if (!db)
                return;
        uint64_t strtab = 0, strsz = 0, needed[64];
        size_t nneeded = 0;
        bool have_strtab = false;
        for (uint64_t o = 0; o + sizeof(Elf64_Dyn) <= dsize; o += sizeof(Elf64_Dyn)) {
                Elf64_Dyn d;
                memcpy(&d, db + o, sizeof(d));
                if (d.d_tag == DT_NULL)
                        break;
                if (d.d_tag == DT_STRTAB) {
                        strtab = d.d_un.d_ptr;
                        have_strtab = true;
                } else if (d.d_tag == DT_STRSZ) {
                        strsz = d.d_un.d_val;
                } else if (d.d_tag == DT_NEEDED && nneeded < ARRAY_SIZE(needed)) {
                        needed[nneeded++] = d.d_un.d_val;
                }
        }
        uint64_t stroff;
        if (!have_strtab || !nneeded || !va_to_off(ph, eh.e_phnum, strtab, &stroff))
                return;
        if (strsz > STR_MAX)
                strsz = STR_MAX;
        if (stroff < src->size && strsz > src->size - stroff)
                strsz = src->size - stroff;
        _cleanup_free_ uint8_t *sb = piece(src, stroff, strsz);
        if (!sb)
                return;
        for (size_t i = 0; i < nneeded && strv_len(*ret_needed) < max_needed; i++) {
                if (needed[i] >= strsz || !name_ok(sb + needed[i], strsz - needed[i]))
                        continue;
                const char *s = (const char *)sb + needed[i];
                if (!strchr(s, '/') && strcmp(s, ".") && strcmp(s, ".."))
                        strv_push(ret_needed, s);
        }
}

struct elf_mem {
        const uint8_t *p;
        size_t n;
};

static ssize_t mem_pread(void *ctx, void *buf, size_t n, uint64_t off)
{
        const struct elf_mem *m = ctx;
        if (off > m->n)
                return 0;
        size_t k = m->n - (size_t)off < n ? m->n - (size_t)off : n;
        memcpy(buf, m->p + off, k);
        return (ssize_t)k;
}

void elf_deps_mem(const uint8_t *p, size_t n, uint64_t size, size_t max_needed, char **ret_interp,
                  char ***ret_needed)
{
        struct elf_mem m = {p, n};
        struct elf_src src = {.ctx = &m, .size = size, .pread = mem_pread};
        elf_deps(&src, max_needed, ret_interp, ret_needed);
}
