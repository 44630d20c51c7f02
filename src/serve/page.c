/* SPDX-License-Identifier: MIT */
/* The web chat page's bytes (page.h). src/serve/page.html is pulled into
 * .rodata by the assembler's .incbin at build time, so the binary serves
 * the page with no file beside it and no generated C array. The path is
 * relative to the repository root, where the Makefile runs the compiler;
 * the Makefile also makes page.o depend on page.html. */
#include "serve/page.h"

__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        ".globl whale_page_html\n"
        ".hidden whale_page_html\n"
        ".type whale_page_html, @object\n"
        "whale_page_html:\n"
        ".incbin \"src/serve/page.html\"\n"
        ".globl whale_page_html_end\n"
        ".hidden whale_page_html_end\n"
        "whale_page_html_end:\n"
        ".size whale_page_html, whale_page_html_end - whale_page_html\n"
        ".popsection\n");

extern const char whale_page_html[], whale_page_html_end[];

const char *serve_page(size_t *len) {
    *len = (size_t)(whale_page_html_end - whale_page_html);
    return whale_page_html;
}
