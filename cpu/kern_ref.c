/* kern_ref.c: the portable kernels, in plain C.  They are the oracle that
 * every vector kernel is tested against (tests/unit.c, at every level the
 * machine runs) and the fallback on CPUs with none of our instruction sets
 * (STYLEFS_CPU_ISA=generic forces them).  Written for clarity: direct
 * sums, no blocking. */
#include "cpu.h"

#define KT(name) ref_##name
#include "kern_tmpl.h"

/* ---- layer 0's input as zero-bordered floats ---------------------------
 * buf[r][4 + x][c] = rgb[r - 4][x][c] for r in 0..h+8, zero around: 4
 * pixels of border each side and 12 more on the right for vector kernels
 * that read whole blocks. */
size_t sf_conv0_fbuf_pw(int w) { return (size_t)w + 20; }
size_t sf_conv0_fbuf_bytes(int h, int w) { return ((size_t)h + 8) * sf_conv0_fbuf_pw(w) * 3 * sizeof(float); }

void sf_conv0_fbuf_prep(const uint8_t *rgb, int h, int w, void *buf, int r0, int r1)
{
    size_t pw = sf_conv0_fbuf_pw(w);

    for (int r = r0; r < r1; r++) {
        float *d = (float *)buf + (size_t)r * pw * 3;
        int y = r - 4;
        memset(d, 0, pw * 3 * sizeof *d);
        if (y < 0 || y >= h)
            continue;
        for (size_t i = 0; i < (size_t)w * 3; i++)
            d[12 + i] = rgb[(size_t)y * w * 3 + i];
    }
}

void sf_conv0_fweights(const float *w, void *wq) { memcpy(wq, w, 9 * 9 * 3 * 32 * sizeof(float)); }

static void ref_conv0_rows(const void *buf, int h, int w, const void *wq, float *out, int cb, int y0, int y1)
{
    const float *in = buf, *wt = wq;
    size_t pw = sf_conv0_fbuf_pw(w), hw = (size_t)h * w;

    for (int y = y0; y < y1; y++)
        for (int x = 0; x < w; x++) {
            float acc[32] = { 0 };
            for (int ky = 0; ky < 9; ky++)
                for (int kx = 0; kx < 9; kx++)
                    for (int ci = 0; ci < 3; ci++) {
                        float v = in[((size_t)(y + ky) * pw + x + kx) * 3 + ci];
                        const float *wk = wt + ((ky * 9 + kx) * 3 + ci) * 32;
                        for (int co = 0; co < 32; co++)
                            acc[co] += v * wk[co];
                    }
            for (int co = 0; co < 32; co++)
                out[sf_at(cb, hw, (size_t)y * w + x, co)] = acc[co];
        }
}

/* ---- layer 15 ------------------------------------------------------------ */
void sf_oc_fweights(const float *w, void *wt)
{
    float *o = wt;
    for (int ky = 0; ky < 9; ky++)
        for (int kx = 0; kx < 9; kx++)
            for (int ci = 0; ci < 32; ci++)
                for (int co = 0; co < 3; co++)
                    o[((ci * 9 + ky) * 9 + kx) * 3 + co] = w[((ky * 9 + kx) * 32 + ci) * 3 + co];
}

static size_t ref_oc_band(int w4) { return 0; }

static void ref_oc_rows(const float *in, int h4, int w4, int cb, const float *na, const float *nb,
                        const void *wtv, float *out, float *band, int y0, int y1)
{
    const float *wt = wtv;
    size_t hw = (size_t)h4 * w4;

    for (int y = y0; y < y1; y++)
        for (int x = 0; x < w4; x++) {
            float acc[3] = { 0, 0, 0 };
            for (int ci = 0; ci < 32; ci++)
                for (int ky = 0; ky < 9; ky++) {
                    int yy = y + ky - 4;
                    if (yy < 0 || yy >= h4)
                        continue;
                    for (int kx = 0; kx < 9; kx++) {
                        int xx = x + kx - 4;
                        if (xx < 0 || xx >= w4)
                            continue;
                        float v = in[sf_at(cb, hw, (size_t)yy * w4 + xx, ci)] * na[ci] + nb[ci];
                        v = v > 0 ? v : 0;
                        const float *wk = wt + ((ci * 9 + ky) * 9 + kx) * 3;
                        acc[0] += v * wk[0];
                        acc[1] += v * wk[1];
                        acc[2] += v * wk[2];
                    }
                }
            for (int co = 0; co < 3; co++)
                out[((size_t)y * w4 + x) * 3 + co] = acc[co];
        }
}

/* ---- 3x3 layers ---------------------------------------------------------
 * Input row and column of tap (ky, kx) for output (oy, ox), or -1 when the
 * tap falls outside the input (zero padding) or, for the transposed
 * convolution, on no input pixel. */
static inline int tap_in(int o, int k, int stride, int deconv, int pad, int n)
{
    int i;
    if (deconv) {
        if (o < k || ((o - k) & 1))
            return -1;
        i = (o - k) / 2;
    } else {
        i = o * stride + k - pad;
    }
    return i >= 0 && i < n ? i : -1;
}

static void ref_conv3_rows(const float *in, const float *wt, float *out, const struct sf_conv3_shape *s, int y0,
                           int y1)
{
    for (int oy = y0; oy < y1; oy++)
        for (int ox = 0; ox < s->wout; ox++) {
            float *o = out + ((size_t)oy * s->wout + ox) * s->cout;
            for (int co = 0; co < s->cout; co++)
                o[co] = 0;
            for (int ky = 0; ky < 3; ky++) {
                int iy = tap_in(oy, ky, s->stride, s->deconv, s->pt, s->hin);
                if (iy < 0)
                    continue;
                for (int kx = 0; kx < 3; kx++) {
                    int ix = tap_in(ox, kx, s->stride, s->deconv, s->pl, s->win);
                    if (ix < 0)
                        continue;
                    const float *px = in + ((size_t)iy * s->win + ix) * s->cin;
                    const float *w = wt + (size_t)(ky * 3 + kx) * s->cin * s->cout;
                    for (int ci = 0; ci < s->cin; ci++)
                        for (int co = 0; co < s->cout; co++)
                            o[co] += px[ci] * w[(size_t)ci * s->cout + co];
                }
            }
        }
}

void sf_kern_ref(struct sf_cpu_kernels *k)
{
    k->conv0_name = "conv0 generic (float32)";
    k->conv0_buf_bytes = sf_conv0_fbuf_bytes;
    k->conv0_prep = sf_conv0_fbuf_prep;
    k->conv0_wbytes = 9 * 9 * 3 * 32 * sizeof(float);
    k->conv0_weights = sf_conv0_fweights;
    k->conv0_rows = ref_conv0_rows;
    k->oc_name = "outconv generic (float32)";
    k->oc_band = ref_oc_band;
    k->oc_wbytes = 32 * 9 * 9 * 3 * sizeof(float);
    k->oc_weights = sf_oc_fweights;
    k->oc_rows = ref_oc_rows;
    k->conv3_name = "conv3x3 generic (float32)";
    k->conv3_rows = ref_conv3_rows;
    ref_fill_elementwise(k, "generic");
}
