/* SPDX-License-Identifier: MIT */
/* Scalar dtype conversions (base/dtype.h) against independent computations:
 * exhaustive bf16/f16 decoding and round-to-nearest-even at every midpoint,
 * known f16 bit patterns, and all 256 F8_E4M3 codes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/dtype.h"

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Decode f16 bits the textbook way, in double: (-1)^s 2^(e-15) (1 + m/1024),
 * subnormals 2^-14 (m/1024). */
static double f16_ref(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (e == 0x1f) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp(m / 1024.0, -14);
    else v = ldexp(1.0 + m / 1024.0, e - 15);
    return s ? -v : v;
}

/* F8 E4M3 ("fn"): 1 sign, 4 exponent bits with bias 7, 3 mantissa bits; no
 * infinities; S.1111.111 is NaN; exponent 0 is subnormal 2^-6 (m/8). */
static double f8_ref(unsigned b) {
    int s = (b >> 7) & 1, e = (b >> 3) & 0xf, m = b & 7;
    double v;
    if (e == 15 && m == 7) return NAN;
    if (e == 0) v = ldexp(m / 8.0, -6);
    else v = ldexp(1.0 + m / 8.0, e - 7);
    return s ? -v : v;
}

Test(dtype, names_sizes_parse) {
    static const struct {
        const char *name;
        size_t size;
    } want[DTYPE_COUNT] = {{"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1},
                           {"I32", 4}, {"I64", 8}, {"U8", 1}};
    for (int t = 0; t < DTYPE_COUNT; t++) {
        cr_assert_str_eq(dtype_name((DType)t), want[t].name, "dtype_name(%d): expected %s, got %s",
                         t, want[t].name, dtype_name((DType)t));
        cr_assert_eq(dtype_size((DType)t), want[t].size, "dtype_size(%s): expected %zu, got %zu",
                     want[t].name, want[t].size, dtype_size((DType)t));
        DType got = DTYPE_COUNT;
        cr_assert_eq(dtype_parse(want[t].name, strlen(want[t].name), &got), 0,
                     "dtype_parse(%s) failed", want[t].name);
        cr_assert_eq(got, (DType)t, "dtype_parse(%s): expected %d, got %d", want[t].name, t, got);
    }
    DType d;
    cr_assert_eq(dtype_parse("F64", 3, &d), -1, "F64 should be unknown");
    cr_assert_eq(dtype_parse("F3", 2, &d), -1, "prefix F3 of F32 should be unknown");
    cr_assert_eq(dtype_parse("F32x", 4, &d), -1, "F32x should be unknown");
    cr_assert_eq(dtype_parse("F32x", 3, &d), 0, "length 3 of F32x is F32");
    cr_assert_eq(dtype_parse("", 0, &d), -1, "empty string should be unknown");
}

Test(dtype, bf16_round_trip_all) {
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = bf16_to_f32((uint16_t)h);
        cr_assert_eq(bits_of(f), h << 16, "bf16_to_f32(0x%04x): expected bits 0x%08x, got 0x%08x",
                     h, h << 16, bits_of(f));
        uint16_t back = f32_to_bf16(f);
        if (isnan(f))
            cr_assert(isnan(bf16_to_f32(back)), "bf16 NaN 0x%04x came back as 0x%04x", h, back);
        else
            cr_assert_eq(back, h, "bf16 round trip 0x%04x: expected 0x%04x, got 0x%04x", h, h,
                         back);
    }
}

/* For every finite bf16 h (either sign), the float halfway to the next one
 * away from zero has bits (h << 16) | 0x8000; it must round to the even one of
 * the two, and one float either side of it to the nearer one. */
Test(dtype, bf16_round_nearest_even_every_midpoint) {
    for (uint32_t sign = 0; sign < 2; sign++) {
        for (uint32_t m = 0; m < 0x7f80; m++) {
            uint32_t h = (sign << 15) | m;
            uint32_t mid = (h << 16) | 0x8000;
            uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            uint16_t got = f32_to_bf16(float_of(mid));
            cr_assert_eq(got, even, "f32_to_bf16(0x%08x) tie: expected 0x%04x, got 0x%04x", mid,
                         even, got);
            got = f32_to_bf16(float_of(mid - 1));
            cr_assert_eq(got, h, "f32_to_bf16(0x%08x) below tie: expected 0x%04x, got 0x%04x",
                         mid - 1, h, got);
            got = f32_to_bf16(float_of(mid + 1));
            cr_assert_eq(got, h + 1, "f32_to_bf16(0x%08x) above tie: expected 0x%04x, got 0x%04x",
                         mid + 1, h + 1, got);
        }
    }
}

Test(dtype, bf16_known_values) {
    static const struct {
        float f;
        uint16_t h;
    } cases[] = {
        {1.0f, 0x3f80},
        {-2.0f, 0xc000},
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {1.0f + 0x1p-8f, 0x3f80},         /* tie, 0x3f80 is even */
        {1.0f + 3 * 0x1p-8f, 0x3f82},     /* tie, 0x3f81 is odd */
        {1.0f + 0x1p-8f + 0x1p-20f, 0x3f81},
        {3.14159265f, 0x4049},
        {INFINITY, 0x7f80},
        {-INFINITY, 0xff80},
        {3.4028235e38f, 0x7f80},          /* FLT_MAX is past bf16's max + half ulp */
        {0x1p-133f, 0x0001},              /* smallest bf16 subnormal */
        {0x1p-134f, 0x0000},              /* tie between 0 and 2^-133: even is 0 */
        {3 * 0x1p-134f, 0x0002},          /* tie between 1 and 2 units: 2 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = f32_to_bf16(cases[i].f);
        cr_assert_eq(got, cases[i].h, "f32_to_bf16(%a): expected 0x%04x, got 0x%04x",
                     (double)cases[i].f, cases[i].h, got);
    }
    uint16_t q = f32_to_bf16(NAN);
    cr_assert((q & 0x7f80) == 0x7f80 && (q & 0x7f), "f32_to_bf16(NaN) gave 0x%04x, not a NaN", q);
    /* A signalling NaN whose payload lies only in the low 16 bits must not
     * truncate to infinity. */
    q = f32_to_bf16(float_of(0x7f800001u));
    cr_assert((q & 0x7f80) == 0x7f80 && (q & 0x7f), "sNaN 0x7f800001 gave 0x%04x, not a NaN", q);
}

Test(dtype, f16_decode_all) {
    for (uint32_t h = 0; h < 0x10000; h++) {
        float got = f16_to_f32((uint16_t)h);
        double want = f16_ref((uint16_t)h);
        if (isnan(want)) {
            cr_assert(isnan(got), "f16_to_f32(0x%04x): expected NaN, got %a", h, (double)got);
            continue;
        }
        cr_assert((double)got == want && !signbit(got) == !signbit(want),
                  "f16_to_f32(0x%04x): expected %a, got %a", h, want, (double)got);
    }
}

Test(dtype, f16_known_patterns) {
    static const struct {
        float f;
        uint16_t h;
    } cases[] = {
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {0.5f, 0x3800},
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {65504.0f, 0x7bff},                 /* largest finite */
        {65519.99f, 0x7bff},                /* just under the tie with 65536 */
        {65520.0f, 0x7c00},                 /* tie rounds to even: infinity */
        {1e6f, 0x7c00},
        {-1e6f, 0xfc00},
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
        {0x1p-14f, 0x0400},                 /* smallest normal */
        {0x1p-24f, 0x0001},                 /* smallest subnormal */
        {1023 * 0x1p-24f, 0x03ff},          /* largest subnormal */
        {0x1p-25f, 0x0000},                 /* tie between 0 and 1 unit: even is 0 */
        {3 * 0x1p-25f, 0x0002},             /* tie between 1 and 2 units: 2 */
        {0x1p-25f + 0x1p-40f, 0x0001},
        {-3 * 0x1p-25f, 0x8002},
        {1.0f + 0x1p-11f, 0x3c00},          /* tie, even mantissa kept */
        {1.0f + 3 * 0x1p-11f, 0x3c02},      /* tie, rounds up to even */
        {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01},
        {2047 * 0x1p-10f + 0x1p-11f, 0x4000}, /* tie, carries into the exponent: 2.0 */
        {0.1f, 0x2e66},
        {3.14159265f, 0x4248},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = f32_to_f16(cases[i].f);
        cr_assert_eq(got, cases[i].h, "f32_to_f16(%a): expected 0x%04x, got 0x%04x",
                     (double)cases[i].f, cases[i].h, got);
    }
    uint16_t q = f32_to_f16(NAN);
    cr_assert((q & 0x7c00) == 0x7c00 && (q & 0x3ff), "f32_to_f16(NaN) gave 0x%04x, not a NaN", q);
    q = f32_to_f16(-NAN);
    cr_assert((q & 0x7c00) == 0x7c00 && (q & 0x3ff), "f32_to_f16(-NaN) gave 0x%04x", q);
}

/* Every finite f16 survives f32 and back; each midpoint between neighbours
 * (exact in f32: 12 significant bits) rounds to the even one, and the floats
 * just beside it to the nearer one. */
Test(dtype, f16_round_trip_and_every_midpoint) {
    for (uint32_t h = 0; h < 0x10000; h++) {
        if (((h >> 10) & 0x1f) == 0x1f) continue;
        uint16_t back = f32_to_f16(f16_to_f32((uint16_t)h));
        cr_assert_eq(back, h, "f16 round trip 0x%04x: expected 0x%04x, got 0x%04x", h, h, back);
    }
    for (uint32_t sign = 0; sign < 2; sign++) {
        for (uint32_t m = 0; m < 0x7c00; m++) {
            uint32_t h = (sign << 15) | m;
            double lo = f16_ref((uint16_t)h);
            double hi = m + 1 == 0x7c00 ? (sign ? -65536.0 : 65536.0) : f16_ref((uint16_t)(h + 1));
            float mid = (float)((lo + hi) / 2);
            cr_assert_eq((double)mid, (lo + hi) / 2, "midpoint of 0x%04x not exact", h);
            uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            uint16_t got = f32_to_f16(mid);
            cr_assert_eq(got, even, "f32_to_f16(%a) tie: expected 0x%04x, got 0x%04x",
                         (double)mid, even, got);
            float below = nextafterf(mid, (float)lo), above = nextafterf(mid, (float)hi);
            got = f32_to_f16(below);
            cr_assert_eq(got, h, "f32_to_f16(%a) below tie: expected 0x%04x, got 0x%04x",
                         (double)below, h, got);
            got = f32_to_f16(above);
            cr_assert_eq(got, h + 1, "f32_to_f16(%a) above tie: expected 0x%04x, got 0x%04x",
                         (double)above, h + 1, got);
        }
    }
}

Test(dtype, f8e4m3_all_codes) {
    for (unsigned b = 0; b < 256; b++) {
        float got = f8e4m3_to_f32((uint8_t)b);
        double want = f8_ref(b);
        if (isnan(want)) {
            cr_assert(isnan(got), "f8e4m3_to_f32(0x%02x): expected NaN, got %a", b, (double)got);
            continue;
        }
        cr_assert((double)got == want && !signbit(got) == !signbit(want),
                  "f8e4m3_to_f32(0x%02x): expected %a, got %a", b, want, (double)got);
    }
    /* Landmarks of the "fn" variant used by DeepSeek-V3. */
    cr_assert_eq(f8e4m3_to_f32(0x7e), 448.0f, "0x7e: expected 448, got %g",
                 (double)f8e4m3_to_f32(0x7e));
    cr_assert_eq(f8e4m3_to_f32(0xfe), -448.0f, "0xfe: expected -448, got %g",
                 (double)f8e4m3_to_f32(0xfe));
    cr_assert(isnan(f8e4m3_to_f32(0x7f)), "0x7f must be NaN");
    cr_assert(isnan(f8e4m3_to_f32(0xff)), "0xff must be NaN");
    cr_assert(!isinf(f8e4m3_to_f32(0x78)), "0x78 must be finite (256), no infinities");
    cr_assert_eq(f8e4m3_to_f32(0x78), 256.0f, "0x78: expected 256, got %g",
                 (double)f8e4m3_to_f32(0x78));
    cr_assert_eq(f8e4m3_to_f32(0x38), 1.0f, "0x38: expected 1");
    cr_assert_eq(f8e4m3_to_f32(0x08), 0x1p-6f, "0x08: expected 2^-6 (smallest normal)");
    cr_assert_eq(f8e4m3_to_f32(0x01), 0x1p-9f, "0x01: expected 2^-9 (smallest subnormal)");
    cr_assert_eq(f8e4m3_to_f32(0x07), 7 * 0x1p-9f, "0x07: expected 7*2^-9");
    cr_assert(f8e4m3_to_f32(0x80) == 0.0f && signbit(f8e4m3_to_f32(0x80)), "0x80 must be -0");
}

Test(dtype, to_f32_bulk_matches_scalar) {
    uint16_t h[512];
    uint8_t b[256];
    float f[512], out[512];
    for (int i = 0; i < 512; i++) {
        h[i] = (uint16_t)(i * 131 + 7);
        f[i] = (float)i * 0.37f - 50.0f;
    }
    for (int i = 0; i < 256; i++) b[i] = (uint8_t)i;

    dtype_to_f32(out, f, DTYPE_F32, 512);
    cr_assert(memcmp(out, f, sizeof f) == 0, "F32 copy differs");
    dtype_to_f32(out, h, DTYPE_BF16, 512);
    for (int i = 0; i < 512; i++)
        cr_assert_eq(bits_of(out[i]), bits_of(bf16_to_f32(h[i])),
                     "BF16[%d]: expected 0x%08x, got 0x%08x", i, bits_of(bf16_to_f32(h[i])),
                     bits_of(out[i]));
    dtype_to_f32(out, h, DTYPE_F16, 512);
    for (int i = 0; i < 512; i++)
        cr_assert_eq(bits_of(out[i]), bits_of(f16_to_f32(h[i])),
                     "F16[%d]: expected 0x%08x, got 0x%08x", i, bits_of(f16_to_f32(h[i])),
                     bits_of(out[i]));
    dtype_to_f32(out, b, DTYPE_F8_E4M3, 256);
    for (int i = 0; i < 256; i++)
        cr_assert_eq(bits_of(out[i]), bits_of(f8e4m3_to_f32(b[i])),
                     "F8[%d]: expected 0x%08x, got 0x%08x", i, bits_of(f8e4m3_to_f32(b[i])),
                     bits_of(out[i]));
}
