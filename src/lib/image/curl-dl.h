/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl, loaded when a registry is first contacted rather than at every
 * start: libcurl pulls in some thirty libraries (TLS, Kerberos, LDAP...),
 * and the dynamic loader spent ~5 ms on them in every `msb run`, which
 * never talks to a registry when the image is present.  The systemd
 * dlopen-on-demand pattern: typed pointers, one loader, a clear error.
 *
 * Include this instead of <curl/curl.h>; calls keep their curl names.
 */
#pragma once

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

extern CURLcode (*sym_curl_global_init)(long flags);
extern CURL *(*sym_curl_easy_init)(void);
extern void (*sym_curl_easy_cleanup)(CURL *c);
extern void (*sym_curl_easy_reset)(CURL *c);
extern CURLcode (*sym_curl_easy_setopt)(CURL *c, CURLoption option, ...);
extern CURLcode (*sym_curl_easy_getinfo)(CURL *c, CURLINFO info, ...);
extern CURLcode (*sym_curl_easy_perform)(CURL *c);
extern const char *(*sym_curl_easy_strerror)(CURLcode code);
extern char *(*sym_curl_easy_escape)(CURL *c, const char *s, int len);
extern void (*sym_curl_free)(void *p);
extern struct curl_slist *(*sym_curl_slist_append)(struct curl_slist *l, const char *s);
extern void (*sym_curl_slist_free_all)(struct curl_slist *l);

/* Load libcurl once.  0, or -errno with *ret_why saying what is missing. */
int curl_dl_load(const char **ret_why);

#define curl_global_init sym_curl_global_init
#define curl_easy_init sym_curl_easy_init
#define curl_easy_cleanup sym_curl_easy_cleanup
#define curl_easy_reset sym_curl_easy_reset
/* curl.h wraps these two in argument-count checking macros */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_setopt sym_curl_easy_setopt
#define curl_easy_getinfo sym_curl_easy_getinfo
#define curl_easy_perform sym_curl_easy_perform
#define curl_easy_strerror sym_curl_easy_strerror
#define curl_easy_escape sym_curl_easy_escape
#define curl_free sym_curl_free
#define curl_slist_append sym_curl_slist_append
#define curl_slist_free_all sym_curl_slist_free_all
