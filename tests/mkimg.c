/* mkimg.c: writes deterministic synthetic test images (never photos).
 *
 * usage: mkimg W H OUT [--alpha] [--gray] [--depth16] [--seed N] [--quality Q]
 * The format follows OUT's extension: ppm (P6), png, jpg, bmp, tga, gif-less.
 * --depth16 writes a 16-bit PNG (hand-made chunks around stb's zlib). */
#include "image.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned char *stbi_zlib_compress(unsigned char *data, int data_len, int *out_len, int quality);

static uint32_t crc_table[256];

static uint32_t crc32_buf(uint32_t crc, const uint8_t *p, size_t n)
{
    if (!crc_table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            crc_table[i] = c;
        }
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

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
    crc = crc32_buf(crc32_buf(0, (const uint8_t *)type, 4), d, n);
    be32(h, crc);
    fwrite(h, 1, 4, f);
}

static int write_png16(const char *path, int w, int h, int comp, const uint16_t *px)
{
    size_t row = (size_t)w * comp * 2 + 1;
    uint8_t *raw = malloc(row * h), ihdr[13];
    int zlen;
    uint8_t *z;
    FILE *f;

    for (int y = 0; y < h; y++) {
        raw[y * row] = 0;
        for (int i = 0; i < w * comp; i++) {
            uint16_t v = px[(size_t)y * w * comp + i];
            raw[y * row + 1 + 2 * i] = (uint8_t)(v >> 8);
            raw[y * row + 2 + 2 * i] = (uint8_t)v;
        }
    }
    z = stbi_zlib_compress(raw, (int)(row * h), &zlen, 6);
    be32(ihdr, (uint32_t)w);
    be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 16;
    ihdr[9] = comp == 1 ? 0 : comp == 2 ? 4 : comp == 3 ? 2 : 6;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    f = fopen(path, "wb");
    if (!f)
        return 1;
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    chunk(f, "IHDR", ihdr, 13);
    chunk(f, "IDAT", z, (uint32_t)zlen);
    chunk(f, "IEND", NULL, 0);
    free(raw);
    free(z);
    return fclose(f) != 0;
}

int main(int argc, char **argv)
{
    int w, h, alpha = 0, gray = 0, d16 = 0, seed = 1, quality = 90;
    char ext[16], why[256];
    uint64_t v;

    if (argc < 4 || sf_parse_u64(argv[1], 1, 100000, &v))
        return fprintf(stderr, "usage: mkimg W H OUT [--alpha] [--gray] [--depth16] [--seed N]\n"), 2;
    w = (int)v;
    if (sf_parse_u64(argv[2], 1, 100000, &v))
        return 2;
    h = (int)v;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--alpha")) alpha = 1;
        else if (!strcmp(argv[i], "--gray")) gray = 1;
        else if (!strcmp(argv[i], "--depth16")) d16 = 1;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc && !sf_parse_u64(argv[++i], 0, 1 << 30, &v)) seed = (int)v;
        else if (!strcmp(argv[i], "--quality") && i + 1 < argc && !sf_parse_u64(argv[++i], 1, 100, &v)) quality = (int)v;
        else return fprintf(stderr, "mkimg: bad option %s\n", argv[i]), 2;
    }
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
        struct sf_image img = { w, h, malloc(n * 3), NULL };
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
