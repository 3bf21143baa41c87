/* gallery.c: a contact sheet of one photo in every style.
 *
 * usage: gallery OUT.png TILE_SIDE IMAGE... [-- IMAGE...]...
 * Each IMAGE (the original first, then its styled versions, e.g. read
 * from a mount's styled/<style>/ folders or written by `stylefs stylize`)
 * is fitted into a TILE_SIDE square tile, labelled below with its file's
 * name without the extension ("wave@50"); tiles go in rows of up to 5 on a
 * dark background with a 8-pixel gutter, and "--" starts a new row.  Decoding, downscaling and the PNG
 * (or JPEG, by OUT's name) encoding are stylefs's own (src/image.c).
 * `make gallery` builds it and writes build/gallery.png. */
#include "image.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A 5x7 pixel font: a-z, 0-9 and "@+-_.%" (upper case drawn as lower);
 * each glyph is 7 rows of 5 bits, the high bit leftmost. */
static const char g_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789@+-_.%";
static const uint8_t g_font[][7] = {
    {0x00,0x0E,0x01,0x0F,0x11,0x0F,0x00}, {0x10,0x10,0x1E,0x11,0x11,0x1E,0x00}, {0x00,0x0E,0x10,0x10,0x10,0x0E,0x00},
    {0x01,0x01,0x0F,0x11,0x11,0x0F,0x00}, {0x00,0x0E,0x11,0x1F,0x10,0x0E,0x00}, {0x06,0x08,0x1C,0x08,0x08,0x08,0x00},
    {0x00,0x0F,0x11,0x11,0x0F,0x01,0x0E}, {0x10,0x10,0x1E,0x11,0x11,0x11,0x00}, {0x04,0x00,0x0C,0x04,0x04,0x0E,0x00},
    {0x02,0x00,0x06,0x02,0x02,0x12,0x0C}, {0x10,0x12,0x14,0x18,0x14,0x12,0x00}, {0x0C,0x04,0x04,0x04,0x04,0x0E,0x00},
    {0x00,0x1A,0x15,0x15,0x15,0x15,0x00}, {0x00,0x1E,0x11,0x11,0x11,0x11,0x00}, {0x00,0x0E,0x11,0x11,0x11,0x0E,0x00},
    {0x00,0x1E,0x11,0x11,0x1E,0x10,0x10}, {0x00,0x0F,0x11,0x11,0x0F,0x01,0x01}, {0x00,0x16,0x19,0x10,0x10,0x10,0x00},
    {0x00,0x0F,0x10,0x0E,0x01,0x1E,0x00}, {0x08,0x1C,0x08,0x08,0x09,0x06,0x00}, {0x00,0x11,0x11,0x11,0x13,0x0D,0x00},
    {0x00,0x11,0x11,0x11,0x0A,0x04,0x00}, {0x00,0x11,0x15,0x15,0x15,0x0A,0x00}, {0x00,0x11,0x0A,0x04,0x0A,0x11,0x00},
    {0x00,0x11,0x11,0x11,0x0F,0x01,0x0E}, {0x00,0x1F,0x02,0x04,0x08,0x1F,0x00},
    {0x0E,0x11,0x13,0x15,0x19,0x11,0x0E}, {0x04,0x0C,0x04,0x04,0x04,0x04,0x0E}, {0x0E,0x11,0x01,0x02,0x04,0x08,0x1F},
    {0x1F,0x02,0x04,0x02,0x01,0x11,0x0E}, {0x02,0x06,0x0A,0x12,0x1F,0x02,0x02}, {0x1F,0x10,0x1E,0x01,0x01,0x11,0x0E},
    {0x06,0x08,0x10,0x1E,0x11,0x11,0x0E}, {0x1F,0x01,0x02,0x04,0x08,0x08,0x08}, {0x0E,0x11,0x11,0x0E,0x11,0x11,0x0E},
    {0x0E,0x11,0x11,0x0F,0x01,0x02,0x0C},
    {0x0E,0x11,0x17,0x15,0x17,0x10,0x0E}, {0x00,0x04,0x04,0x1F,0x04,0x04,0x00}, {0x00,0x00,0x00,0x1F,0x00,0x00,0x00},
    {0x00,0x00,0x00,0x00,0x00,0x00,0x1F}, {0x00,0x00,0x00,0x00,0x00,0x0C,0x0C}, {0x18,0x19,0x02,0x04,0x08,0x13,0x03},
};
#define LABEL_SCALE 2
#define LABEL_H (7 * LABEL_SCALE + 6)

/* Draw text centred at (cx, y) in light grey, cut to width w. */
static void draw_label(struct sf_image *s, int cx, int y, int w, const char *text)
{
    int n = (int)strlen(text), adv = 6 * LABEL_SCALE;

    if (n * adv > w)
        n = w / adv;
    for (int i = 0; i < n; i++) {
        char ch = (char)(text[i] >= 'A' && text[i] <= 'Z' ? text[i] - 'A' + 'a' : text[i]);
        const char *at = strchr(g_chars, ch);
        int x0 = cx - n * adv / 2 + i * adv;
        if (!at || !ch)
            continue;
        for (int r = 0; r < 7; r++)
            for (int c = 0; c < 5; c++)
                if (g_font[at - g_chars][r] & (0x10 >> c))
                    for (int dy = 0; dy < LABEL_SCALE; dy++)
                        for (int dx = 0; dx < LABEL_SCALE; dx++) {
                            int px = x0 + c * LABEL_SCALE + dx, py = y + r * LABEL_SCALE + dy;
                            if (px >= 0 && px < s->w && py >= 0 && py < s->h)
                                memset(s->rgb + ((size_t)py * s->w + px) * 3, 220, 3);
                        }
    }
}

/* A tile's label: the file's name without folders and extension. */
static void label_of(const char *path, char *out, size_t len)
{
    const char *b = strrchr(path, '/'), *dot;
    b = b ? b + 1 : path;
    dot = strrchr(b, '.');
    snprintf(out, len, "%.*s", (int)(dot && dot > b ? dot - b : (ptrdiff_t)strlen(b)), b);
}

int main(int argc, char **argv)
{
    int side, n = argc - 3, cols, rows, gut = 8;
    struct sf_image sheet = { 0 };
    enum sf_format fmt;
    uint8_t *out;
    size_t outlen;
    char why[256];

    if (argc < 4 || (side = atoi(argv[2])) < 16 || side > 4096) {
        fprintf(stderr, "usage: gallery OUT.png TILE_SIDE IMAGE...\n");
        return 2;
    }
    if ((fmt = sf_format_for_output(argv[1])) == SF_FMT_UNKNOWN) {
        fprintf(stderr, "gallery: %s: write .png or .jpg\n", argv[1]);
        return 2;
    }
    /* the grid: up to 5 a row, "--" starts a new one */
    int *col = calloc((size_t)n, sizeof *col), *row = calloc((size_t)n, sizeof *row), c = 0, r = 0, tiles = 0;
    if (!col || !row)
        return 1;
    cols = 1;
    for (int i = 0; i < n; i++) {
        if (!strcmp(argv[3 + i], "--")) {
            col[i] = -1;
            if (c) {
                c = 0;
                r++;
            }
            continue;
        }
        if (c == 5) {
            c = 0;
            r++;
        }
        col[i] = c++;
        row[i] = r;
        cols = c > cols ? c : cols;
        tiles++;
    }
    rows = r + (c > 0);
    sheet.w = cols * (side + gut) + gut;
    sheet.h = rows * (side + LABEL_H + gut) + gut;
    sheet.rgb = malloc((size_t)sheet.w * sheet.h * 3);
    if (!sheet.rgb)
        return 1;
    memset(sheet.rgb, 32, (size_t)sheet.w * sheet.h * 3);
    for (int i = 0; i < n; i++) {
        struct sf_image t;
        uint8_t *d;
        size_t len;
        if (col[i] < 0)
            continue;
        if (sf_read_file(argv[3 + i], 1 << 30, &d, &len) ||
            sf_image_decode(d, len, 100000000, &t, why, sizeof why) || sf_image_fit(&t, side)) {
            fprintf(stderr, "gallery: %s: cannot read\n", argv[3 + i]);
            return 1;
        }
        free(d);
        int x0 = gut + col[i] * (side + gut) + (side - t.w) / 2;
        int y0 = gut + row[i] * (side + LABEL_H + gut) + (side - t.h) / 2;
        char label[256];
        for (int y = 0; y < t.h; y++)
            memcpy(sheet.rgb + ((size_t)(y0 + y) * sheet.w + x0) * 3, t.rgb + (size_t)y * t.w * 3,
                   (size_t)t.w * 3);
        label_of(argv[3 + i], label, sizeof label);
        draw_label(&sheet, gut + col[i] * (side + gut) + side / 2, gut + row[i] * (side + LABEL_H + gut) + side + 4,
                   side, label);
        sf_image_free(&t);
    }
    free(col);
    free(row);
    if (sf_image_encode(&sheet, fmt, 90, &out, &outlen, why, sizeof why) ||
        sf_write_file_atomic(argv[1], out, outlen)) {
        fprintf(stderr, "gallery: %s: %s\n", argv[1], why);
        return 1;
    }
    printf("%s: %dx%d, %d tiles\n", argv[1], sheet.w, sheet.h, tiles);
    free(out);
    free(sheet.rgb);
    return 0;
}
