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

/* Layer 0's int16 input pairs and weights (cpu.h; the kernels are in
 * kern_avx2.c and kern_avx512_vnni.c).  A row: the 4-word border, w
 * pixels, room for the last 12-pixel step and its 8 taps' reach. */
size_t sf_conv0_pairs_pw(int w) { return (size_t)(w + 8 + 12 + 8 + 15) / 16 * 16; }
size_t sf_conv0_pairs_bytes(int h, int w) { return 3 * ((size_t)h + 8) * sf_conv0_pairs_pw(w) * sizeof(int32_t); }

void sf_conv0_pairs_prep(const uint8_t *rgb, int h0, int w0, void *buf, int r0, int r1)
{
    size_t pw = sf_conv0_pairs_pw(w0), rows = (size_t)h0 + 8;

    for (int r = r0; r < r1; r++) {
        int y = r - 4;
        for (int ci = 0; ci < 3; ci++) {
            int32_t *d = (int32_t *)buf + ((size_t)ci * rows + r) * pw;
            memset(d, 0, pw * sizeof *d);
            if (y < 0 || y >= h0)
                continue;
            const uint8_t *src = rgb + (size_t)y * w0 * 3 + ci;
            for (int x = 0; x < w0; x++)
                d[4 + x] = src[3 * x] | (x + 1 < w0 ? (int32_t)src[3 * x + 3] << 16 : 0);
            d[3] = (int32_t)src[0] << 16;                       /* (0, v[y][0]) */
        }
    }
}

/* Layer 0's weights, stored [ky][kx][ci][co], as int16 pairs and scales
 * (per output channel: 32767 / its largest |w|). */
void sf_conv0_pairs_weights(const float *w, void *wqv)
{
    int32_t *wq = wqv;
    float *ws = (float *)(wq + SF_C0_PAIRS);

    for (int co = 0; co < 32; co++) {
        float mx = 0;
        for (int t = 0; t < 81 * 3; t++)
            mx = fabsf(w[t * 32 + co]) > mx ? fabsf(w[t * 32 + co]) : mx;
        float scale = mx > 0 ? 32767.0f / mx : 1.0f;
        ws[co] = 1.0f / scale;
        for (int ci = 0; ci < 3; ci++)
            for (int ky = 0; ky < 9; ky++)
                for (int k = 0; k < 5; k++) {
                    int32_t q[2];
                    for (int j = 0; j < 2; j++) {
                        int kx = 2 * k + j;
                        q[j] = kx < 9 ? (int32_t)lrintf(w[((ky * 9 + kx) * 3 + ci) * 32 + co] * scale) : 0;
                    }
                    wq[((ci * 9 + ky) * 5 + k) * 32 + co] = (q[0] & 0xffff) | (int32_t)((uint32_t)q[1] << 16);
                }
    }
}

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

int sf_oc_band_row(void *band, size_t r, size_t rows, size_t pw, int planes, int lpad, int w4, int y, int h4)
{
    uint32_t *d0 = (uint32_t *)band + r * pw;
    size_t cstride = rows * pw;
    int inside = y >= 0 && y < h4;

    for (int c = 0; c < planes; c++) {
        if (!inside) {
            memset(d0 + c * cstride, 0, pw * sizeof *d0);
            continue;
        }
        memset(d0 + c * cstride, 0, (size_t)lpad * sizeof *d0);
        memset(d0 + c * cstride + lpad + w4, 0, (pw - (size_t)lpad - (size_t)w4) * sizeof *d0);
    }
    return inside;
}

void sf_kern_set_conv0_f32(struct sf_cpu_kernels *k, const char *name, sf_conv0_rows_fn rows)
{
    k->conv0_name = name;
    k->conv0_buf_bytes = sf_conv0_fbuf_bytes;
    k->conv0_prep = sf_conv0_fbuf_prep;
    k->conv0_wbytes = 9 * 9 * 3 * 32 * sizeof(float);
    k->conv0_weights = sf_conv0_fweights;
    k->conv0_rows = rows;
    k->conv0_int16 = 0;
}

void sf_kern_set_conv0_int16(struct sf_cpu_kernels *k, const char *name, sf_conv0_rows_fn rows)
{
    k->conv0_name = name;
    k->conv0_buf_bytes = sf_conv0_pairs_bytes;
    k->conv0_prep = sf_conv0_pairs_prep;
    k->conv0_wbytes = SF_C0_PAIRS_WBYTES;
    k->conv0_weights = sf_conv0_pairs_weights;
    k->conv0_rows = rows;
    k->conv0_int16 = 1;
}

void sf_kern_set_oc_f32(struct sf_cpu_kernels *k, const char *name, sf_oc_band_fn band, sf_oc_rows_fn rows)
{
    k->oc_name = name;
    k->oc_band = band;
    k->oc_wbytes = 32 * 9 * 9 * 3 * sizeof(float);
    k->oc_weights = sf_oc_fweights;
    k->oc_rows = rows;
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

/* ---- 3x3 layers --------------------------------------------------------- */
static void ref_conv3_rows(const float *in, const float *wt, float *out, const struct sf_conv3_shape *s, int y0,
                           int y1)
{
    for (int oy = y0; oy < y1; oy++)
        for (int ox = 0; ox < s->wout; ox++) {
            float *o = out + ((size_t)oy * s->wout + ox) * s->cout;
            for (int co = 0; co < s->cout; co++)
                o[co] = 0;
            for (int ky = 0; ky < 3; ky++) {
                int iy = sf_tap_in(oy, ky, s->stride, s->deconv, s->pt, s->hin);
                if (iy < 0)
                    continue;
                for (int kx = 0; kx < 3; kx++) {
                    int ix = sf_tap_in(ox, kx, s->stride, s->deconv, s->pl, s->win);
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

static void ref_wino_tiles(const float *in, int h, int w, int cb, const float *U, float *out, float *scratch,
                           int t0, int t1, const float *pre_a, const float *pre_b, double *sum, double *sq);

void sf_kern_ref(struct sf_cpu_kernels *k)
{
    sf_kern_set_conv0_f32(k, "conv0 generic (float32)", ref_conv0_rows);
    sf_kern_set_oc_f32(k, "outconv generic (float32)", ref_oc_band, ref_oc_rows);
    k->conv3_name = "conv3x3 generic (float32)";
    k->conv3_rows = ref_conv3_rows;
    k->wino_name = "winograd generic (float32)";
    k->wino_cb = 0;             /* any */
    k->wino_tiles = ref_wino_tiles;
    ref_fill_elementwise(k, "generic");
}

/* ---- Winograd F(6x6, 3x3) for the residual convolutions -----------------
 * V = Bt d B, U = G g Gt, Y = At (U . V) A, for correlation (what CNNs call
 * convolution), with the points 0, +-1, +-2, +-1/2 and infinity (the
 * matrices of Lavin and Gray (2015) for m = 6, as ncnn and others scale
 * them). */
static const float wBt[8][8] = {
    { 1, 0, -5.25f, 0, 5.25f, 0, -1, 0 },       { 0, 1, 1, -4.25f, -4.25f, 1, 1, 0 },
    { 0, -1, 1, 4.25f, -4.25f, -1, 1, 0 },      { 0, 0.5f, 0.25f, -2.5f, -1.25f, 2, 1, 0 },
    { 0, -0.5f, 0.25f, 2.5f, -1.25f, -2, 1, 0 }, { 0, 2, 4, -2.5f, -5, 0.5f, 1, 0 },
    { 0, -2, 4, 2.5f, -5, -0.5f, 1, 0 },        { 0, -1, 0, 5.25f, 0, -5.25f, 0, 1 },
};
static const float wG[8][3] = {
    { 1, 0, 0 },
    { -2.f / 9, -2.f / 9, -2.f / 9 },
    { -2.f / 9, 2.f / 9, -2.f / 9 },
    { 1.f / 90, 1.f / 45, 2.f / 45 },
    { 1.f / 90, -1.f / 45, 2.f / 45 },
    { 1.f / 45, 1.f / 90, 1.f / 180 },
    { 1.f / 45, -1.f / 90, 1.f / 180 },
    { 0, 0, 1 },
};
static const float wAt[6][8] = {
    { 1, 1, 1, 1, 1, 32, 32, 0 }, { 0, 1, -1, 2, -2, 16, -16, 0 }, { 0, 1, 1, 4, 4, 8, 8, 0 },
    { 0, 1, -1, 8, -8, 4, -4, 0 }, { 0, 1, 1, 16, 16, 2, 2, 0 },  { 0, 1, -1, 32, -32, 1, -1, 1 },
};

/* U[xi][ci][co] = (G g Gt)[xi] for each (ci, co), with co innermost so
 * that every loop runs along contiguous rows (vectorized; 36 strided
 * planes written a float at a time took 25-30 ms for the 10 layers) */
void sf_wino_weights(const float *w, float *U)
{
    for (int ci = 0; ci < 128; ci++) {
        const float *g[3][3];
        float t[8][3][128];
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                g[a][b] = w + ((size_t)(a * 3 + b) * 128 + ci) * 128;
        for (int i = 0; i < 8; i++)
            for (int b = 0; b < 3; b++)
                for (int co = 0; co < 128; co++)
                    t[i][b][co] = wG[i][0] * g[0][b][co] + wG[i][1] * g[1][b][co] + wG[i][2] * g[2][b][co];
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++) {
                float *u = U + ((size_t)(i * 8 + j) * 128 + ci) * 128;
                for (int co = 0; co < 128; co++)
                    u[co] = t[i][0][co] * wG[j][0] + t[i][1][co] * wG[j][1] + t[i][2][co] * wG[j][2];
            }
    }
}

/* Per tile, per channel: the 8x8 window (zero outside; in bounds, the
 * pre-op applied), V; the 64 products; per tile, per output channel: M
 * back to the 6x6 outputs, each added to the sums in double.  V and M
 * are [SF_WINO_TB][64][128], tiles SF_WINO_TS floats apart, as the
 * vector kernels' are. */
static void ref_wino_tiles(const float *in, int h, int w, int cb, const float *U, float *out, float *scratch,
                           int t0, int t1, const float *pre_a, const float *pre_b, double *sum, double *sq)
{
    int ntx = (w + 5) / 6;
    size_t hw = (size_t)h * w, TS = SF_WINO_TS;
    float *V = scratch, *M = scratch + SF_WINO_TB * TS;

    for (int t = t0; t < t1; t++) {
        int y0 = (t / ntx) * 6 - 1, x0 = (t % ntx) * 6 - 1;
        for (int c = 0; c < 128; c++) {
            float d[8][8], u[8][8];
            for (int r = 0; r < 8; r++)
                for (int q = 0; q < 8; q++) {
                    int y = y0 + r, x = x0 + q;
                    d[r][q] = y >= 0 && y < h && x >= 0 && x < w ? in[sf_at(cb, hw, (size_t)y * w + x, c)] : 0;
                    if (pre_a && y >= 0 && y < h && x >= 0 && x < w) {
                        float v = d[r][q] * pre_a[c] + pre_b[c];
                        d[r][q] = v > 0 ? v : 0;
                    }
                }
            for (int i = 0; i < 8; i++)
                for (int q = 0; q < 8; q++) {
                    u[i][q] = 0;
                    for (int k = 0; k < 8; k++)
                        u[i][q] += wBt[i][k] * d[k][q];
                }
            for (int i = 0; i < 8; i++)
                for (int j = 0; j < 8; j++) {
                    float v = 0;
                    for (int k = 0; k < 8; k++)
                        v += u[i][k] * wBt[j][k];
                    V[(size_t)(t - t0) * TS + (size_t)(i * 8 + j) * 128 + c] = v;
                }
        }
    }
    for (int t = t0; t < t1; t++)
        for (int xi = 0; xi < SF_WINO_P; xi++)
            for (int co = 0; co < 128; co++) {
                float s = 0;
                for (int c = 0; c < 128; c++)
                    s += V[(size_t)(t - t0) * TS + (size_t)xi * 128 + c] * U[((size_t)xi * 128 + c) * 128 + co];
                M[(size_t)(t - t0) * TS + (size_t)xi * 128 + co] = s;
            }
    for (int t = t0; t < t1; t++) {
        int y0 = (t / ntx) * 6, x0 = (t % ntx) * 6;
        for (int co = 0; co < 128; co++) {
            float m[8][8], u[6][8];
            for (int i = 0; i < SF_WINO_P; i++)
                m[i / 8][i % 8] = M[(size_t)(t - t0) * TS + (size_t)i * 128 + co];
            for (int i = 0; i < 6; i++)
                for (int q = 0; q < 8; q++) {
                    u[i][q] = 0;
                    for (int k = 0; k < 8; k++)
                        u[i][q] += wAt[i][k] * m[k][q];
                }
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) {
                    float v = 0;
                    for (int k = 0; k < 8; k++)
                        v += u[i][k] * wAt[j][k];
                    if (y0 + i < h && x0 + j < w) {
                        out[sf_at(cb, hw, (size_t)(y0 + i) * w + x0 + j, co)] = v;
                        if (sum) {
                            sum[co] += v;
                            sq[co] += (double)v * v;
                        }
                    }
                }
        }
    }
}
