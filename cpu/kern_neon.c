/* kern_neon.c: kernels for aarch64 with Advanced SIMD (every 64-bit ARM
 * CPU: Apple silicon, AWS Graviton, Ampere, Raspberry Pi 4 and 5), 4
 * floats a vector, 32 vector registers.
 *
 * - conv0 (layer 0, 9x9 3->32): 4 output pixels x 16 channels (16
 *   accumulators) per step, each tap's pixel broadcast from memory.
 * - outconv (layer 15, 9x9 32->3): vectorized over width from a planar
 *   band [ci][row][x] filled with layer 14's norm and ReLU applied; 16
 *   output pixels x 3 channels (12 accumulators) per step.
 * - conv3 (layers 1-14 where oneDNN has only reference kernels, which is
 *   Debian's oneDNN on every ARM CPU without SVE): 4 output pixels x 16
 *   channels (16 accumulators); 4 input channels of each pixel are loaded
 *   as one vector and used lane by lane (fmla by element), so per 4 input
 *   channels 4 loads of pixels and 16 of weights feed 64 FMAs.  Pixels
 *   near the border, whose taps leave the image, take a one-pixel path.
 *   Transposed convolutions run per output phase (even and odd columns),
 *   so that the 4 pixels of a step share their taps.
 * The element-wise kernels are kern_tmpl.h, vectorized by the compiler. */
#include "cpu.h"

#include <arm_neon.h>

#define KT(name) neon_##name
#define KT_NREG 32
#include "kern_tmpl.h"

/* ---- layer 0 ------------------------------------------------------------ */
#define C0_P 4

static void neon_conv0_rows(const void *buf, int h, int w, const void *wq, float *out, int cb, int y0, int y1)
{
    const float *in = buf, *wt = wq;
    size_t pw = sf_conv0_fbuf_pw(w), hw = (size_t)h * w;

    for (int y = y0; y < y1; y++)
        for (int x0 = 0; x0 < w; x0 += C0_P)
            for (int half = 0; half < 2; half++) {
                float32x4_t a[C0_P][4];
                for (int p = 0; p < C0_P; p++)
                    for (int j = 0; j < 4; j++)
                        a[p][j] = vdupq_n_f32(0);
                for (int ky = 0; ky < 9; ky++) {
                    const float *row = in + ((size_t)(y + ky) * pw + x0) * 3;
                    const float *wk = wt + ky * 9 * 3 * 32 + half * 16;
                    for (int t = 0; t < 27; t++, wk += 32) {    /* t = kx * 3 + ci */
                        float32x4_t w0 = vld1q_f32(wk), w1 = vld1q_f32(wk + 4), w2 = vld1q_f32(wk + 8),
                                    w3 = vld1q_f32(wk + 12);
                        for (int p = 0; p < C0_P; p++) {
                            float v = row[t + 3 * p];
                            a[p][0] = vfmaq_n_f32(a[p][0], w0, v);
                            a[p][1] = vfmaq_n_f32(a[p][1], w1, v);
                            a[p][2] = vfmaq_n_f32(a[p][2], w2, v);
                            a[p][3] = vfmaq_n_f32(a[p][3], w3, v);
                        }
                    }
                }
                int n = w - x0 < C0_P ? w - x0 : C0_P;
                for (int p = 0; p < n; p++)
                    for (int j = 0; j < 4; j++) {
                        int c0 = half * 16 + j * 4;     /* 4 channels stay in one block (cb >= 8) */
                        vst1q_f32(out + sf_at(cb, hw, (size_t)y * w + x0 + p, c0), a[p][j]);
                    }
            }
}

/* ---- layer 15 ----------------------------------------------------------- */
#define OC_VX 16    /* output pixels per step */
#define OC_LPAD 4

static size_t oc_pw(int w4) { return (size_t)((w4 + OC_VX - 1) / OC_VX * OC_VX + OC_LPAD + 8); }
static size_t neon_oc_band(int w4) { return (size_t)32 * (SF_OC_ROWS + 8) * oc_pw(w4); }

static void neon_oc_rows(const float *in, int h4, int w4, int cb, const float *na, const float *nb,
                         const void *wtv, float *out, float *band, int y0, int y1)
{
    const float *wt = wtv;
    size_t pw = oc_pw(w4), rows = (size_t)(y1 - y0) + 8, cstride = rows * pw, hw = (size_t)h4 * w4;

    for (size_t r = 0; r < rows; r++) {
        int y = y0 - 4 + (int)r;
        float *d0 = band + r * pw;
        if (!sf_oc_band_row(band, r, rows, pw, 32, OC_LPAD, w4, y, h4))
            continue;
        size_t p0 = (size_t)y * w4;
        for (int c0 = 0; c0 < 32; c0 += 4) {
            float32x4_t ga = vld1q_f32(na + c0), gb = vld1q_f32(nb + c0), zero = vdupq_n_f32(0);
            const float *src = in + sf_at(cb, hw, p0, c0);
            for (int x = 0; x + 4 <= w4; x += 4) {      /* w4 is a multiple of 4 */
                float32x4x4_t t;
                for (int j = 0; j < 4; j++)
                    t.val[j] = vmaxq_f32(vfmaq_f32(gb, vld1q_f32(src + (size_t)(x + j) * cb), ga), zero);
                /* 4x4 transpose: t.val[j][c] (pixel j, channel c) -> channel rows */
                float32x4_t a0 = vtrn1q_f32(t.val[0], t.val[1]), a1 = vtrn2q_f32(t.val[0], t.val[1]);
                float32x4_t a2 = vtrn1q_f32(t.val[2], t.val[3]), a3 = vtrn2q_f32(t.val[2], t.val[3]);
                float32x4_t r0 = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(a0), vreinterpretq_f64_f32(a2)));
                float32x4_t r1 = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(a1), vreinterpretq_f64_f32(a3)));
                float32x4_t r2 = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(a0), vreinterpretq_f64_f32(a2)));
                float32x4_t r3 = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(a1), vreinterpretq_f64_f32(a3)));
                vst1q_f32(d0 + (size_t)(c0 + 0) * cstride + OC_LPAD + x, r0);
                vst1q_f32(d0 + (size_t)(c0 + 1) * cstride + OC_LPAD + x, r1);
                vst1q_f32(d0 + (size_t)(c0 + 2) * cstride + OC_LPAD + x, r2);
                vst1q_f32(d0 + (size_t)(c0 + 3) * cstride + OC_LPAD + x, r3);
            }
        }
    }
    for (int y = y0; y < y1; y++) {
        size_t r0 = (size_t)(y - y0);
        for (int x0 = 0; x0 < w4; x0 += OC_VX) {
            float32x4_t p[3][4];
            for (int co = 0; co < 3; co++)
                for (int j = 0; j < 4; j++)
                    p[co][j] = vdupq_n_f32(0);
            for (int ci = 0; ci < 32; ci++)
                for (int ky = 0; ky < 9; ky++) {
                    const float *row = band + ((size_t)ci * rows + r0 + ky) * pw + OC_LPAD - 4 + x0;
                    const float *wk = wt + ((ci * 9 + ky) * 9) * 3;
                    for (int kx = 0; kx < 9; kx++, wk += 3) {
                        float32x4_t a0 = vld1q_f32(row + kx), a1 = vld1q_f32(row + kx + 4),
                                    a2 = vld1q_f32(row + kx + 8), a3 = vld1q_f32(row + kx + 12);
                        for (int co = 0; co < 3; co++) {
                            p[co][0] = vfmaq_n_f32(p[co][0], a0, wk[co]);
                            p[co][1] = vfmaq_n_f32(p[co][1], a1, wk[co]);
                            p[co][2] = vfmaq_n_f32(p[co][2], a2, wk[co]);
                            p[co][3] = vfmaq_n_f32(p[co][3], a3, wk[co]);
                        }
                    }
                }
            float acc[3][OC_VX];
            for (int co = 0; co < 3; co++)
                for (int j = 0; j < 4; j++)
                    vst1q_f32(acc[co] + 4 * j, p[co][j]);
            int n = w4 - x0 < OC_VX ? w4 - x0 : OC_VX;
            float *o = out + ((size_t)y * w4 + x0) * 3;
            for (int i = 0; i < n; i++)
                for (int co = 0; co < 3; co++)
                    o[i * 3 + co] = acc[co][i];
        }
    }
}

/* ---- 3x3 layers ---------------------------------------------------------- */
/* P output pixels (ox[0..P-1]) x 16 channels from co0; tap kx of pixel j
 * reads input column ix[kx][j] (< 0: none, then for every j). */
#define C3_P 4
static inline void c3_block(const float *in, const float *wt, float *out, const struct sf_conv3_shape *s, int oy,
                            const int *iys, const int ox[C3_P], int ix[3][C3_P], int np, int co0)
{
    float32x4_t a[C3_P][4];
    size_t cs = (size_t)s->cout;

    for (int j = 0; j < C3_P; j++)
        for (int q = 0; q < 4; q++)
            a[j][q] = vdupq_n_f32(0);
    for (int ky = 0; ky < 3; ky++) {
        if (iys[ky] < 0)
            continue;
        for (int kx = 0; kx < 3; kx++) {
            if (ix[kx][0] < 0)
                continue;
            const float *px[C3_P];
            for (int j = 0; j < C3_P; j++)
                px[j] = in + ((size_t)iys[ky] * s->win + ix[kx][j < np ? j : 0]) * s->cin;
            const float *w = wt + (size_t)(ky * 3 + kx) * s->cin * cs + co0;
            for (int ci = 0; ci < s->cin; ci += 4, w += 4 * cs) {
                float32x4_t x0 = vld1q_f32(px[0] + ci), x1 = vld1q_f32(px[1] + ci), x2 = vld1q_f32(px[2] + ci),
                            x3 = vld1q_f32(px[3] + ci);
#define C3_LANE(L)                                                                                   \
    {                                                                                                \
        const float *wl = w + (L) * cs;                                                              \
        float32x4_t w0 = vld1q_f32(wl), w1 = vld1q_f32(wl + 4), w2 = vld1q_f32(wl + 8), w3 = vld1q_f32(wl + 12); \
        a[0][0] = vfmaq_laneq_f32(a[0][0], w0, x0, L); a[0][1] = vfmaq_laneq_f32(a[0][1], w1, x0, L);     \
        a[0][2] = vfmaq_laneq_f32(a[0][2], w2, x0, L); a[0][3] = vfmaq_laneq_f32(a[0][3], w3, x0, L);     \
        a[1][0] = vfmaq_laneq_f32(a[1][0], w0, x1, L); a[1][1] = vfmaq_laneq_f32(a[1][1], w1, x1, L);     \
        a[1][2] = vfmaq_laneq_f32(a[1][2], w2, x1, L); a[1][3] = vfmaq_laneq_f32(a[1][3], w3, x1, L);     \
        a[2][0] = vfmaq_laneq_f32(a[2][0], w0, x2, L); a[2][1] = vfmaq_laneq_f32(a[2][1], w1, x2, L);     \
        a[2][2] = vfmaq_laneq_f32(a[2][2], w2, x2, L); a[2][3] = vfmaq_laneq_f32(a[2][3], w3, x2, L);     \
        a[3][0] = vfmaq_laneq_f32(a[3][0], w0, x3, L); a[3][1] = vfmaq_laneq_f32(a[3][1], w1, x3, L);     \
        a[3][2] = vfmaq_laneq_f32(a[3][2], w2, x3, L); a[3][3] = vfmaq_laneq_f32(a[3][3], w3, x3, L);     \
    }
                C3_LANE(0) C3_LANE(1) C3_LANE(2) C3_LANE(3)
#undef C3_LANE
            }
        }
    }
    for (int j = 0; j < np; j++)
        for (int q = 0; q < 4; q++)
            vst1q_f32(out + ((size_t)oy * s->wout + ox[j]) * cs + co0 + 4 * q, a[j][q]);
}

static void neon_conv3_rows(const float *in, const float *wt, float *out, const struct sf_conv3_shape *s, int y0,
                            int y1)
{
    int ostep = s->deconv ? 2 : 1;

    for (int oy = y0; oy < y1; oy++) {
        int iys[3];
        for (int ky = 0; ky < 3; ky++)
            iys[ky] = sf_tap_in(oy, ky, s->stride, s->deconv, s->pt, s->hin);
        for (int phase = 0; phase < ostep; phase++)
            for (int ox0 = phase; ox0 < s->wout; ox0 += C3_P * ostep) {
                int ox[C3_P], ix[3][C3_P], np = 0, whole = 1;
                for (int j = 0; j < C3_P && ox0 + j * ostep < s->wout; j++, np++)
                    ox[j] = ox0 + j * ostep;
                /* the block shares its taps when every pixel has the same
                 * valid ones (always in a phase of a transposed conv, and
                 * away from the border of a conv) */
                for (int kx = 0; kx < 3; kx++)
                    for (int j = 0; j < np; j++) {
                        ix[kx][j] = sf_tap_in(ox[j], kx, s->stride, s->deconv, s->pl, s->win);
                        if ((ix[kx][j] < 0) != (ix[kx][0] < 0))
                            whole = 0;
                    }
                if (whole) {
                    for (int co0 = 0; co0 < s->cout; co0 += 16)
                        c3_block(in, wt, out, s, oy, iys, ox, ix, np, co0);
                } else {
                    for (int j = 0; j < np; j++) {   /* one pixel at a time */
                        int ox1[C3_P] = { ox[j] }, ix1[3][C3_P];
                        for (int kx = 0; kx < 3; kx++)
                            ix1[kx][0] = ix[kx][j];
                        for (int co0 = 0; co0 < s->cout; co0 += 16)
                            c3_block(in, wt, out, s, oy, iys, ox1, ix1, 1, co0);
                    }
                }
            }
    }
}

void sf_kern_neon(struct sf_cpu_kernels *k)
{
    sf_kern_set_conv0_f32(k, "conv0 neon (float32)", neon_conv0_rows);
    sf_kern_set_oc_f32(k, "outconv neon (float32)", neon_oc_band, neon_oc_rows);
    k->conv3_name = "conv3x3 neon (float32)";
    k->conv3_rows = neon_conv3_rows;
    neon_fill_elementwise(k, "neon");
}
