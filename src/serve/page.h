/* SPDX-License-Identifier: MIT */
/* The web chat page (GET /): one hand-written, self-contained HTML file
 * (src/serve/page.html: inline CSS and JS, no CDN) embedded in the binary
 * at build time. */
#ifndef WHALE_PAGE_H
#define WHALE_PAGE_H

#include <stddef.h>

/* The page's bytes (static, not NUL-terminated) and their count. */
const char *serve_page(size_t *len);

#endif
