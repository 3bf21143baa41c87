/* mkimg.c: writes deterministic synthetic test images (never photos),
 * including the unusual and hostile ones the hardening tests feed stylefs.
 *
 * usage: mkimg W H OUT [--alpha] [--gray] [--depth16] [--seed N] [--quality Q]
 *                      [--palette] [--exif N] [--cmyk] [--bomb] [--claim]
 * The format follows OUT's extension: ppm (P6), pgm, png, jpg, bmp, tga, gif.
 *   --depth16  a 16-bit PNG (hand-made chunks around stb's zlib)
 *   --palette  the picture quantized to a 6x6x6 cube: an indexed PNG
 *              (colour type 3); a .gif gets the same pixels as its first
 *              frame and a second, different frame (animated GIF)
 *   --exif N   a JPEG whose stored pixels are turned so that EXIF
 *              orientation N (1..8, also written) shows the W x H picture
 *   --cmyk     an Adobe CMYK JPEG (inverted ink) of the picture
 *   --bomb     a W x H grey PNG of zeros, deflated as it is written
 *   --claim    a PNG whose header says W x H over a 100-byte body */
#include "image.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <zlib.h>

unsigned char *stbi_zlib_compress(unsigned char *data, int data_len, int *out_len, int quality);

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static void chunk(FILE *f, const char *type, const uint8_t *d, uint32_t n)
{
    uint8_t h[8];
    uint32_t crc;
    be32(h, n);
    memcpy(h + 4, type, 4);
    fwrite(h, 1, 8, f);
    fwrite(d, 1, n, f);
    crc = (uint32_t)crc32(0, (const Bytef *)type, 4);
    if (n)                  /* (zlib restarts the crc when given NULL) */
        crc = (uint32_t)crc32(crc, d, n);
    be32(h, crc);
    fwrite(h, 1, 4, f);
}

static FILE *png_start(const char *path, int w, int h, int depth, int type)
{
    uint8_t ihdr[13];
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    be32(ihdr, (uint32_t)w);
    be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = (uint8_t)depth;
    ihdr[9] = (uint8_t)type;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    chunk(f, "IHDR", ihdr, 13);
    return f;
}

/* --bomb and --claim: rows of zeros deflated as they go, so a 20000 x 20000
 * file never needs its 400 MB in memory.  claim: only 100 raw bytes. */
static int write_png_zeros(const char *path, int w, int h, int claim)
{
    FILE *f = png_start(path, w, h, 8, 0);
    uint8_t *row = calloc((size_t)w + 1, 1), out[65536];
    z_stream z = { 0 };
    int rows = claim ? 0 : h, flush;

    if (!f || !row || deflateInit(&z, 9) != Z_OK)
        return 1;
    for (int y = 0; y <= rows; y++) {
        z.next_in = row;
        z.avail_in = claim ? 100 : (uInt)w + 1;
        flush = (claim || y == rows - 1) ? Z_FINISH : Z_NO_FLUSH;
        if (y == rows && !claim)
            break;
        do {
            z.next_out = out;
            z.avail_out = sizeof out;
            deflate(&z, flush);
            if (sizeof out - z.avail_out)
                chunk(f, "IDAT", out, (uint32_t)(sizeof out - z.avail_out));
        } while (z.avail_out == 0);
        if (claim)
            break;
    }
    deflateEnd(&z);
    free(row);
    chunk(f, "IEND", NULL, 0);
    return fclose(f) != 0;
}

/* 6x6x6 cube index of an RGB pixel, and the cube's palette. */
static uint8_t cube_index(const uint8_t *p)
{
    return (uint8_t)(36 * ((p[0] + 25) / 51) + 6 * ((p[1] + 25) / 51) + (p[2] + 25) / 51);
}

static void cube_palette(uint8_t pal[216 * 3])
{
    for (int i = 0; i < 216; i++) {
        pal[3 * i] = (uint8_t)(51 * (i / 36));
        pal[3 * i + 1] = (uint8_t)(51 * (i / 6 % 6));
        pal[3 * i + 2] = (uint8_t)(51 * (i % 6));
    }
}

static int write_png_palette(const char *path, int w, int h, const uint8_t *rgb)
{
    size_t row = (size_t)w + 1;
    uint8_t *raw = calloc(row, (size_t)h), pal[216 * 3], *z;
    int zlen;
    FILE *f = png_start(path, w, h, 8, 3);

    if (!f || !raw)
        return 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            raw[y * row + 1 + x] = cube_index(rgb + 3 * ((size_t)y * w + x));
    cube_palette(pal);
    chunk(f, "PLTE", pal, sizeof pal);
    z = stbi_zlib_compress(raw, (int)(row * h), &zlen, 6);
    chunk(f, "IDAT", z, (uint32_t)zlen);
    chunk(f, "IEND", NULL, 0);
    free(raw);
    free(z);
    return fclose(f) != 0;
}

/* GIF image data without compression: 8-bit literals as 9-bit codes, with a
 * clear code every 254 so that the code width never grows. */
static void gif_frame(FILE *f, int w, int h, const uint8_t *idx)
{
    uint8_t block[256];
    uint32_t acc = 0;
    int bits = 0, nb = 0;
    size_t n = (size_t)w * h;

#define GIF_PUT(code) do {                                           \
        acc |= (uint32_t)(code) << bits; bits += 9;                  \
        while (bits >= 8) {                                          \
            block[1 + nb++] = (uint8_t)acc; acc >>= 8; bits -= 8;    \
            if (nb == 255) { block[0] = 255; fwrite(block, 1, 256, f); nb = 0; } \
        }                                                            \
    } while (0)
    fputc(0x2C, f);                                             /* image descriptor */
    fputc(0, f); fputc(0, f); fputc(0, f); fputc(0, f);
    fputc(w & 255, f); fputc(w >> 8, f); fputc(h & 255, f); fputc(h >> 8, f);
    fputc(0, f);
    fputc(8, f);                                                /* LZW minimum code size */
    for (size_t i = 0; i < n; i++) {
        if (i % 254 == 0)
            GIF_PUT(256);
        GIF_PUT(idx[i]);
    }
    GIF_PUT(257);
    if (bits)
        GIF_PUT(0);
    if (nb) {
        block[0] = (uint8_t)nb;
        fwrite(block, 1, (size_t)nb + 1, f);
    }
    fputc(0, f);
#undef GIF_PUT
}

/* An animated GIF: frame 1 is the picture in the cube's colours, frame 2
 * the same picture mirrored, so that a reader of the wrong frame shows. */
static int write_gif_anim(const char *path, int w, int h, const uint8_t *rgb)
{
    uint8_t pal[256 * 3] = { 0 }, *idx = malloc((size_t)w * h), *idx2 = malloc((size_t)w * h);
    static const uint8_t gce[] = { 0x21, 0xF9, 4, 0, 10, 0, 0, 0 };
    FILE *f = fopen(path, "wb");

    if (!f || !idx || !idx2)
        return 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            idx[(size_t)y * w + x] = cube_index(rgb + 3 * ((size_t)y * w + x));
            idx2[(size_t)y * w + (w - 1 - x)] = (uint8_t)(215 - idx[(size_t)y * w + x]);
        }
    cube_palette(pal);
    fwrite("GIF89a", 1, 6, f);
    fputc(w & 255, f); fputc(w >> 8, f); fputc(h & 255, f); fputc(h >> 8, f);
    fputc(0xF7, f); fputc(0, f); fputc(0, f);                  /* 256-entry global table */
    fwrite(pal, 1, sizeof pal, f);
    fwrite("\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00", 1, 19, f);   /* loop forever */
    fwrite(gce, 1, sizeof gce, f);
    gif_frame(f, w, h, idx);
    fwrite(gce, 1, sizeof gce, f);
    gif_frame(f, w, h, idx2);
    fputc(0x3B, f);
    free(idx);
    free(idx2);
    return fclose(f) != 0;
}

/* --exif: the stored image is the shown one turned back.  Stored pixel
 * (sx, sy) = (ax*x + bx*y + cx, ay*x + by*y + cy) of shown (x, y), where
 * the shown image is W x H and the stored one H x W for 5..8. */
static int write_jpeg_exif(const char *path, int w, int h, const uint8_t *rgb, int o, int quality)
{
    static const int8_t t[9][6] = {         /* ax bx ay by, flip sx, flip sy */
        { 0 }, { 1, 0, 0, 1, 0, 0 }, { 1, 0, 0, 1, 1, 0 }, { 1, 0, 0, 1, 1, 1 },
        { 1, 0, 0, 1, 0, 1 }, { 0, 1, 1, 0, 0, 0 }, { 0, 1, 1, 0, 0, 1 },
        { 0, 1, 1, 0, 1, 1 }, { 0, 1, 1, 0, 1, 0 },
    };
    int sw = o >= 5 ? h : w, sh = o >= 5 ? w : h;
    uint8_t *st = malloc((size_t)w * h * 3), app1[36];
    struct sf_image img = { .w = sw, .h = sh, .rgb = st };
    uint8_t *jpg;
    size_t jl;
    char why[256];
    FILE *f;
    int le = o & 1;                         /* both byte orders get used */

    if (!st)
        return 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int sx = t[o][0] * x + t[o][1] * y, sy = t[o][2] * x + t[o][3] * y;
            if (t[o][4]) sx = sw - 1 - sx;
            if (t[o][5]) sy = sh - 1 - sy;
            memcpy(st + 3 * ((size_t)sy * sw + sx), rgb + 3 * ((size_t)y * w + x), 3);
        }
    if (sf_image_encode(&img, SF_FMT_JPEG, quality, &jpg, &jl, why, sizeof why))
        return 1;
    memcpy(app1, "\xFF\xE1\x00\x22" "Exif\0\0", 10);
    memcpy(app1 + 10, le ? "II\x2A\x00\x08\x00\x00\x00" : "MM\x00\x2A\x00\x00\x00\x08", 8);
    memcpy(app1 + 18, le ? "\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00"
                         : "\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01", 10);
    app1[28] = le ? (uint8_t)o : 0;
    app1[29] = le ? 0 : (uint8_t)o;
    memset(app1 + 30, 0, 6);                /* value padding, then no next IFD */
    f = fopen(path, "wb");
    if (!f)
        return 1;
    fwrite(jpg, 1, 2, f);                   /* SOI */
    fwrite(app1, 1, sizeof app1, f);
    fwrite(jpg + 2, 1, jl - 2, f);
    free(jpg);
    free(st);
    return fclose(f) != 0;
}

/* --cmyk: Adobe CMYK stores inverted ink; R = C' * K' / 255 gives back
 * the picture. */
static int write_jpeg_cmyk(const char *path, int w, int h, const uint8_t *rgb, int quality)
{
    size_t n = (size_t)w * h;
    uint8_t *cmyk = malloc(n * 4);
    unsigned char *jb = NULL;
    unsigned long jl = 0;
    tjhandle tj = tjInitCompress();
    int rc;

    if (!cmyk || !tj)
        return 1;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgb + 3 * i;
        unsigned k = p[0] > p[1] ? p[0] : p[1];
        k = k > p[2] ? k : p[2];
        for (int c = 0; c < 3; c++)
            cmyk[4 * i + c] = (uint8_t)(k ? (p[c] * 255 + k / 2) / k : 0);
        cmyk[4 * i + 3] = (uint8_t)k;
    }
    rc = tjCompress2(tj, cmyk, w, 0, h, TJPF_CMYK, &jb, &jl, TJSAMP_444, quality, 0) ||
         sf_write_file_atomic(path, jb, jl) != 0;
    tjFree(jb);
    tjDestroy(tj);
    free(cmyk);
    return rc;
}

static int write_png16(const char *path, int w, int h, int comp, const uint16_t *px)
{
    size_t row = (size_t)w * comp * 2 + 1;
    uint8_t *raw = malloc(row * h), *z;
    int zlen;
    FILE *f = png_start(path, w, h, 16, comp == 1 ? 0 : comp == 2 ? 4 : comp == 3 ? 2 : 6);

    if (!f || !raw)
        return 1;
    for (int y = 0; y < h; y++) {
        raw[y * row] = 0;
        for (int i = 0; i < w * comp; i++) {
            uint16_t v = px[(size_t)y * w * comp + i];
            raw[y * row + 1 + 2 * i] = (uint8_t)(v >> 8);
            raw[y * row + 2 + 2 * i] = (uint8_t)v;
        }
    }
    z = stbi_zlib_compress(raw, (int)(row * h), &zlen, 6);
    chunk(f, "IDAT", z, (uint32_t)zlen);
    chunk(f, "IEND", NULL, 0);
    free(raw);
    free(z);
    return fclose(f) != 0;
}

int main(int argc, char **argv)
{
    int w, h, alpha = 0, gray = 0, d16 = 0, seed = 1, quality = 90, palette = 0, exif = 0;
    int cmyk = 0, bomb = 0, claim = 0;
    char ext[16], why[256];
    uint64_t v;

    if (argc < 4 || sf_parse_u64(argv[1], 1, 65535, &v))
        return fprintf(stderr, "usage: mkimg W H OUT [--alpha] [--gray] [--depth16] [--seed N]\n"), 2;
    w = (int)v;
    if (sf_parse_u64(argv[2], 1, 65535, &v))
        return 2;
    h = (int)v;

    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--alpha")) alpha = 1;
        else if (!strcmp(argv[i], "--gray")) gray = 1;
        else if (!strcmp(argv[i], "--depth16")) d16 = 1;
        else if (!strcmp(argv[i], "--palette")) palette = 1;
        else if (!strcmp(argv[i], "--cmyk")) cmyk = 1;
        else if (!strcmp(argv[i], "--bomb")) bomb = 1;
        else if (!strcmp(argv[i], "--claim")) claim = 1;
        else if (!strcmp(argv[i], "--exif") && i + 1 < argc && !sf_parse_u64(argv[++i], 1, 8, &v)) exif = (int)v;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc && !sf_parse_u64(argv[++i], 0, 1 << 30, &v)) seed = (int)v;
        else if (!strcmp(argv[i], "--quality") && i + 1 < argc && !sf_parse_u64(argv[++i], 1, 100, &v)) quality = (int)v;
        else return fprintf(stderr, "mkimg: bad option %s\n", argv[i]), 2;
    }
    if (bomb || claim)
        return write_png_zeros(argv[3], w, h, claim);
    int comp = (gray ? 1 : 3) + alpha;
    size_t n = (size_t)w * h;
    uint16_t *p16 = malloc(n * comp * sizeof *p16);
    uint8_t *p8 = malloc(n * comp);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double fx = (double)x / w, fy = (double)y / h;
            double r = 0.5 + 0.5 * sin(6.0 * fx + seed), g = fy,
                   b = 0.5 + 0.5 * cos(9.0 * fx * fy + 2.0 * seed);
            double cx = fx - 0.5, cy = fy - 0.45;
            if (cx * cx + cy * cy < 0.06) { r = 0.9; g = 0.8 - fy * 0.5; b = 0.2; }
            if (((x / 7) + (y / 5) + seed) % 11 == 0) { r *= 0.5; g *= 0.5; }
            double ch[4] = { r, g, b, fx };
            size_t o = ((size_t)y * w + x) * comp;
            if (gray) {
                ch[0] = 0.3 * r + 0.59 * g + 0.11 * b;
                ch[1] = fx;
            }
            for (int c = 0; c < comp; c++) {
                double val = ch[c] < 0 ? 0 : ch[c] > 1 ? 1 : ch[c];
                p16[o + c] = (uint16_t)(val * 65535 + 0.5);
                p8[o + c] = (uint8_t)(val * 255 + 0.5);
            }
        }
    sf_path_ext(argv[3], ext, sizeof ext);
    if (palette || exif || cmyk || !strcmp(ext, "gif")) {
        uint8_t *rgb = malloc(n * 3);
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 3; c++)
                rgb[3 * i + c] = p8[i * comp + (gray ? 0 : c)];
        if (!strcmp(ext, "gif"))
            return write_gif_anim(argv[3], w, h, rgb);
        if (palette)
            return write_png_palette(argv[3], w, h, rgb);
        if (cmyk)
            return write_jpeg_cmyk(argv[3], w, h, rgb, quality);
        return write_jpeg_exif(argv[3], w, h, rgb, exif, quality);
    }
    if (d16)
        return write_png16(argv[3], w, h, comp, p16);
    if (!strcmp(ext, "ppm") || !strcmp(ext, "pgm")) {
        FILE *f = fopen(argv[3], "wb");
        if (!f || alpha)
            return 1;
        fprintf(f, "P%d\n%d %d\n255\n", gray ? 5 : 6, w, h);
        fwrite(p8, 1, n * comp, f);
        return fclose(f) != 0;
    }
    {
        struct sf_image img = { .w = w, .h = h, .rgb = malloc(n * 3) };
        uint8_t *out;
        size_t outlen;
        if (alpha)
            img.alpha = malloc(n);
        for (size_t i = 0; i < n; i++) {
            for (int c = 0; c < 3; c++)
                img.rgb[3 * i + c] = p8[i * comp + (gray ? 0 : c)];
            if (alpha)
                img.alpha[i] = p8[i * comp + comp - 1];
        }
        if (gray && !strcmp(ext, "png")) {
            /* true grayscale PNG: stb writes the comp it is given */
            extern unsigned char *stbi_write_png_to_mem(const unsigned char *, int, int, int, int, int *);
            int len;
            unsigned char *png = stbi_write_png_to_mem(p8, w * comp, w, h, comp, &len);
            return !png || sf_write_file_atomic(argv[3], png, (size_t)len) != 0;
        }
        if (sf_image_encode(&img, sf_format_for_output(argv[3]), quality, &out, &outlen, why, sizeof why))
            return fprintf(stderr, "mkimg: %s\n", why), 1;
        return sf_write_file_atomic(argv[3], out, outlen) != 0;
    }
}
