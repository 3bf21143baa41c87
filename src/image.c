/* image.c: codecs and resizing (see image.h). */
#include "image.h"
#include "codecs.h"
#include "meta.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <turbojpeg.h>

#define STBI_NO_HDR
#define STBI_NO_STDIO
#include <stb_image.h>
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>
#include <stb_image_resize.h>

const char *sf_format_name(enum sf_format f)
{
    static const char *n[] = { "unknown", "JPEG", "PNG", "BMP", "GIF", "TGA", "PSD", "PNM", "WebP", "TIFF",
                               "HEIC", "AVIF" };
    return (unsigned)f < sizeof n / sizeof *n ? n[f] : "unknown";
}

enum sf_format sf_format_for_output(const char *path)
{
    char ext[16];
    sf_path_ext(path, ext, sizeof ext);
    if (!strcmp(ext, "jpg") || !strcmp(ext, "jpeg"))
        return SF_FMT_JPEG;
    if (!strcmp(ext, "png"))
        return SF_FMT_PNG;
    if (!strcmp(ext, "bmp"))
        return SF_FMT_BMP;
    if (!strcmp(ext, "tga"))
        return SF_FMT_TGA;
    if (!strcmp(ext, "webp"))
        return SF_FMT_WEBP;
    if (!strcmp(ext, "tif") || !strcmp(ext, "tiff"))
        return SF_FMT_TIFF;
    if (!strcmp(ext, "heic") || !strcmp(ext, "heif"))
        return SF_FMT_HEIC;
    if (!strcmp(ext, "avif"))
        return SF_FMT_AVIF;
    return SF_FMT_UNKNOWN;
}

int sf_format_lossy(enum sf_format f)
{
    return f == SF_FMT_JPEG || f == SF_FMT_WEBP || f == SF_FMT_HEIC || f == SF_FMT_AVIF;
}

int sf_format_writable(enum sf_format f)
{
    return f == SF_FMT_JPEG || f == SF_FMT_PNG || f == SF_FMT_BMP || f == SF_FMT_TGA || f == SF_FMT_WEBP ||
           f == SF_FMT_TIFF || f == SF_FMT_HEIC || f == SF_FMT_AVIF;
}

static enum sf_format sniff(const uint8_t *d, size_t n)
{
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF)
        return SF_FMT_JPEG;
    if (n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8))
        return SF_FMT_PNG;
    if (n >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6)))
        return SF_FMT_GIF;
    if (n >= 2 && d[0] == 'B' && d[1] == 'M')
        return SF_FMT_BMP;
    if (n >= 4 && !memcmp(d, "8BPS", 4))
        return SF_FMT_PSD;
    if (n >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '6'))
        return SF_FMT_PNM;
    if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4))
        return SF_FMT_WEBP;
    if (n >= 4 && (!memcmp(d, "II*\0", 4) || !memcmp(d, "MM\0*", 4) || !memcmp(d, "II+\0", 4) ||
                   !memcmp(d, "MM\0+", 4)))
        return SF_FMT_TIFF;
    if (n >= 12 && !memcmp(d + 4, "ftyp", 4))
        return sf_heif_sniff(d, n);
    return SF_FMT_UNKNOWN;  /* TGA has no magic: stb decides */
}


/* Whether a JPEG segment header (FF, marker, 2-byte length that counts
 * itself) lies whole at offset i. */
static int jpeg_segment(const uint8_t *d, size_t n, size_t i, unsigned *marker, size_t *seg)
{
    if (i + 4 > n || d[i] != 0xFF)
        return 0;
    *marker = d[i + 1];
    *seg = (size_t)d[i + 2] << 8 | d[i + 3];
    return *seg >= 2 && i + 2 + *seg <= n;
}

/* Whether the JPEG's end-of-image marker is there: the first FF D9 after
 * the first scan's header (entropy-coded data never holds FF D9).  A file
 * cut short is refused before any pixel buffer is allocated. */
static int jpeg_complete(const uint8_t *d, size_t n)
{
    size_t i = 2, seg;
    unsigned m;
    const uint8_t *p;

    while (jpeg_segment(d, n, i, &m, &seg) && m != 0xDA)
        i += 2 + seg;
    for (p = d + (i < n ? i : n); (p = memchr(p, 0xFF, (size_t)(d + n - p))) && p + 1 < d + n; p++)
        if (p[1] == 0xD9)
            return 1;
    return 0;
}

/* The EXIF orientation (1..8) of a JPEG, or 1 when it has none.  Walks the
 * segments up to the first scan; every offset is bounds-checked, so a
 * damaged APP1 only means "no orientation". */
static int jpeg_orientation(const uint8_t *d, size_t n)
{
    size_t i = 2, seg;
    unsigned marker;

    for (; jpeg_segment(d, n, i, &marker, &seg) && marker != 0xDA; i += 2 + seg) {
        const uint8_t *t = d + i + 10;                  /* the TIFF header */
        size_t tn = seg - 8, ifd, cnt;
        int le;

        if (marker != 0xE1 || seg < 2 + 6 + 8 || memcmp(d + i + 4, "Exif\0\0", 6))
            continue;
        le = t[0] == 'I' && t[1] == 'I';
#define RD16(p) (le ? (unsigned)(p)[0] | (unsigned)(p)[1] << 8 : (unsigned)(p)[0] << 8 | (unsigned)(p)[1])
#define RD32(p) (le ? (size_t)(p)[0] | (size_t)(p)[1] << 8 | (size_t)(p)[2] << 16 | (size_t)(p)[3] << 24 \
                    : (size_t)(p)[0] << 24 | (size_t)(p)[1] << 16 | (size_t)(p)[2] << 8 | (size_t)(p)[3])
        if ((!le && !(t[0] == 'M' && t[1] == 'M')) || RD16(t + 2) != 42 || (ifd = RD32(t + 4)) > tn - 2)
            return 1;
        cnt = RD16(t + ifd);
        for (size_t e = 0; e < cnt && ifd + 2 + 12 * (e + 1) <= tn; e++) {
            const uint8_t *en = t + ifd + 2 + 12 * e;
            if (RD16(en) == 0x0112 && RD16(en + 2) == 3) {      /* Orientation, SHORT */
                unsigned o = RD16(en + 8);
                return o >= 1 && o <= 8 ? (int)o : 1;
            }
        }
        return 1;
#undef RD16
#undef RD32
    }
    return 1;
}

static uint32_t rd_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A P5/P6 header: magic, width, height, maxval (with # comments between),
 * then one whitespace.  Returns where the samples start, with the three
 * numbers in v[], or 0 when a number is missing or has more than 7 digits
 * (stb's own parser overflows an int on long ones: make fuzz). */
static size_t pnm_header(const uint8_t *d, size_t n, uint32_t v[3])
{
    size_t i = 2;

    for (int field = 0; field < 3; field++) {
        int digits = 0;
        while (i < n && (d[i] == ' ' || (d[i] >= '\t' && d[i] <= '\r') || d[i] == '#'))
            if (d[i++] == '#')
                while (i < n && d[i] != '\n')
                    i++;
        for (v[field] = 0; i < n && d[i] >= '0' && d[i] <= '9'; i++, digits++)
            v[field] = v[field] * 10 + (uint32_t)(d[i] - '0');
        if (!digits || digits > 7)
            return 0;
    }
    return i + 1;
}

static int jpeg_header(const uint8_t *data, size_t len, int *w, int *h, int *cs)
{
    tjhandle tj = tjInitDecompress();
    int sub, rc;

    if (!tj)
        return -ENOMEM;
    /* A tables-only stream "succeeds" without a size (found by make
     * fuzz): start from 0 so that it is refused as having none. */
    *w = *h = 0;
    rc = tjDecompressHeader3(tj, data, (unsigned long)len, w, h, &sub, cs);
    tjDestroy(tj);
    return rc ? -EINVAL : 0;
}

int sf_image_probe(const uint8_t *data, size_t len, enum sf_format *fmt, int *w, int *h,
                   char *why, size_t whylen)
{
    enum sf_format f = sniff(data, len);
    uint32_t pnm[3];
    int comp, cs;

    if (len == 0) {
        snprintf(why, whylen, "empty file");
        return -EINVAL;
    }
    if (f == SF_FMT_JPEG) {
        if (jpeg_header(data, len, w, h, &cs)) {
            snprintf(why, whylen, "corrupt JPEG header");
            return -EINVAL;
        }
    } else if (f == SF_FMT_PNG && len >= 24 && !memcmp(data + 12, "IHDR", 4)) {
        /* straight from IHDR: stb refuses sizes it cannot allocate with a
         * vague message, and the caller's max_pixels check says it better */
        uint32_t pw = rd_be32(data + 16), ph = rd_be32(data + 20);
        *w = pw > INT32_MAX ? 0 : (int)pw;
        *h = ph > INT32_MAX ? 0 : (int)ph;
    } else if (f == SF_FMT_WEBP || f == SF_FMT_TIFF) {
        if ((f == SF_FMT_WEBP ? sf_webp_probe : sf_tiff_probe)(data, len, w, h)) {
            snprintf(why, whylen, "corrupt %s header", sf_format_name(f));
            return -EINVAL;
        }
    } else if (f == SF_FMT_HEIC || f == SF_FMT_AVIF) {
        int rc = sf_heif_probe(data, len, w, h, why, whylen);
        if (rc)
            return rc;
    } else if (f == SF_FMT_PNM) {
        if (!pnm_header(data, len, pnm) || !pnm[2] || pnm[2] > 65535) {
            snprintf(why, whylen, "corrupt PNM header");
            return -EINVAL;
        }
        *w = (int)pnm[0];
        *h = (int)pnm[1];
    } else if (!stbi_info_from_memory(data, (int)(len > INT32_MAX ? INT32_MAX : len), w, h, &comp)) {
        if (f == SF_FMT_UNKNOWN)
            snprintf(why, whylen, "not an image in a format stylefs reads");
        else
            snprintf(why, whylen, "corrupt %s header (%s)", sf_format_name(f), stbi_failure_reason());
        return -EINVAL;
    } else if (f == SF_FMT_UNKNOWN) {
        f = SF_FMT_TGA;
    }
    if (*w <= 0 || *h <= 0) {
        snprintf(why, whylen, "%s header gives no size", sf_format_name(f));
        return -EINVAL;
    }
    if (f == SF_FMT_JPEG && jpeg_orientation(data, len) >= 5) {
        int t = *w;
        *w = *h;
        *h = t;
    }
    *fmt = f;
    return 0;
}

void sf_image_free(struct sf_image *img)
{
    sf_meta_free(&img->meta);
    free(img->rgb);
    free(img->alpha);
    img->rgb = img->alpha = NULL;
}

/* Decode a JPEG whose header probe read as pw x ph (as stored). */
static int decode_jpeg(const uint8_t *data, size_t len, int pw, int ph, struct sf_image *img,
                       char *why, size_t whylen)
{
    tjhandle tj = tjInitDecompress();
    int w = 0, h = 0, sub, cs, rc = 0, pf;
    size_t n;
    uint8_t *buf = NULL;

    if (!tj)
        return -ENOMEM;
    if (tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &sub, &cs) || w != pw || h != ph) {
        snprintf(why, whylen, "corrupt JPEG header");
        rc = -EINVAL;
        goto out;
    }
    if (!jpeg_complete(data, len)) {
        snprintf(why, whylen, "JPEG: truncated (no end-of-image marker)");
        rc = -EINVAL;
        goto out;
    }
    n = (size_t)w * h;
    pf = (cs == TJCS_CMYK || cs == TJCS_YCCK) ? TJPF_CMYK : TJPF_RGB;
    buf = malloc(n * (pf == TJPF_CMYK ? 4 : 3));
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    /* TJFLAG_STOPONWARNING: a truncated or damaged stream is an error, not
     * a picture with a grey bottom. */
    if (tjDecompress2(tj, data, (unsigned long)len, buf, w, 0, h, pf,
                      TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING)) {
        snprintf(why, whylen, "JPEG: %s", tjGetErrorStr2(tj));
        rc = -EINVAL;
        goto out;
    }
    if (pf == TJPF_CMYK) {
        /* Adobe CMYK/YCCK JPEGs store inverted ink: R = C * K / 255. */
        uint8_t *rgb = malloc(n * 3);
        if (!rgb) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            unsigned k = buf[4 * i + 3];
            for (int c = 0; c < 3; c++)
                rgb[3 * i + c] = (uint8_t)((buf[4 * i + c] * k + 127) / 255);
        }
        free(buf);
        buf = rgb;
    }
    img->w = w;
    img->h = h;
    img->rgb = buf;
    img->alpha = NULL;
    buf = NULL;
out:
    free(buf);
    tjDestroy(tj);
    return rc;
}

static uint32_t rd_le(const uint8_t *p, int bytes)
{
    uint32_t v = 0;
    while (bytes--)
        v = v << 8 | p[bytes];
    return v;
}

/* stb_image reads zeros past the end of its input, so a cut file decodes
 * to a picture with a black or grey end.  This checks, from the headers,
 * that the bytes the first image needs are all there.  Returns 1 when
 * complete (or when the layout cannot be told cheaply), 0 when cut short. */
static int stb_complete(enum sf_format f, const uint8_t *d, size_t n, int w, int h)
{
    uint64_t need = 0, px = (uint64_t)w * (uint64_t)h;

    if (f == SF_FMT_PNG) {                          /* every chunk whole, up to IEND */
        size_t i = 8;
        while (i + 8 <= n && memcmp(d + i + 4, "IEND", 4)) {
            uint32_t clen = rd_be32(d + i);
            if (n < i + 12 || clen > n - i - 12)
                return 0;
            i += 12 + (size_t)clen;
        }
        return i + 8 <= n;
    } else if (f == SF_FMT_BMP && n >= 34) {
        uint32_t off = rd_le(d + 10, 4), bpp = rd_le(d + 28, 2), comp = rd_le(d + 30, 4);
        if (comp != 0 && comp != 3)
            return 1;                               /* RLE: stb refuses it anyway */
        need = off + ((uint64_t)w * bpp + 31) / 32 * 4 * (uint64_t)h;
    } else if (f == SF_FMT_TGA && n >= 18) {
        uint64_t bpp = (d[16] + 7) / 8, cmap = d[1] ? rd_le(d + 5, 2) * (uint64_t)((d[7] + 7) / 8) : 0;
        const uint8_t *p = d + 18 + d[0] + cmap, *end = d + n;
        if (d[2] < 8)                               /* raw */
            need = 18 + d[0] + cmap + px * bpp;
        else {                                      /* RLE packets */
            uint64_t got = 0;
            while (got < px) {
                if (p >= end)
                    return 0;
                got += (uint64_t)(*p & 127) + 1;
                p += 1 + (*p & 128 ? bpp : ((uint64_t)(*p & 127) + 1) * bpp);
            }
            return p <= end;
        }
    } else if (f == SF_FMT_GIF && n >= 13) {
        /* blocks up to the end of the first image's data sub-blocks */
        size_t i = 13 + (d[10] & 0x80 ? 3u << ((d[10] & 7) + 1) : 0);
        while (i < n && d[i] == 0x21) {             /* extensions */
            i += 2;
            while (i < n && d[i])
                i += 1 + (size_t)d[i];
            i++;
        }
        if (i >= n || d[i] != 0x2C || i + 10 > n)
            return i < n;                           /* stb reports what it finds */
        i += 10 + (d[i + 9] & 0x80 ? 3u << ((d[i + 9] & 7) + 1) : 0) + 1;
        while (i < n && d[i])
            i += 1 + (size_t)d[i];
        return i < n;
    } else if (f == SF_FMT_PSD && n >= 26) {
        uint64_t ch = (uint64_t)d[12] << 8 | d[13], depth = (uint64_t)d[22] << 8 | d[23];
        size_t i = 26;
        for (int sec = 0; sec < 3 && i + 4 <= n; sec++)
            i += 4 + rd_be32(d + i);
        if (i + 2 > n)
            return 0;
        if (d[i + 1] == 0)                          /* raw planes */
            need = i + 2 + px * ch * (depth / 8);
        else {                                      /* RLE: a byte count per row per channel */
            need = i + 2 + 2 * (uint64_t)h * ch;
            for (uint64_t r = 0; r < (uint64_t)h * ch && i + 2 + 2 * r + 2 <= n; r++)
                need += (uint64_t)d[i + 2 + 2 * r] << 8 | d[i + 3 + 2 * r];
        }
    }
    return need <= n;
}

/* The planes of a w x h image: RGB, and alpha when with_alpha (else NULL).
 * Returns 0, or -ENOMEM with nothing allocated. */
static int planes_alloc(int w, int h, int with_alpha, uint8_t **rgb, uint8_t **alpha)
{
    *rgb = malloc((size_t)w * h * 3);
    *alpha = with_alpha ? malloc((size_t)w * h) : NULL;
    if (*rgb && (!with_alpha || *alpha))
        return 0;
    free(*rgb);
    free(*alpha);
    return -ENOMEM;
}

/* Put new w x h planes into img, freeing the old ones. */
static void planes_replace(struct sf_image *img, uint8_t *rgb, uint8_t *alpha, int w, int h)
{
    free(img->rgb);
    free(img->alpha);
    img->rgb = rgb;
    img->alpha = alpha;
    img->w = w;
    img->h = h;
}

/* Turn a stored image into the way viewers show it, for EXIF orientation
 * o: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
 * 7 transverse, 8 rotate 90 counter-clockwise.  For 5..8 width and height
 * swap.  Shown pixel (x, y) takes stored pixel (sx, sy) below.
 * Returns 0 or -ENOMEM (img unchanged). */
static int orient(struct sf_image *img, int o)
{
    int w = img->w, h = img->h, swap = o >= 5, dw = swap ? h : w, dh = swap ? w : h;
    uint8_t *rgb, *alpha;

    if (o <= 1 || o > 8)
        return 0;
    if (planes_alloc(w, h, img->alpha != NULL, &rgb, &alpha))
        return -ENOMEM;
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++) {
            int sx, sy;
            switch (o) {
            case 2: sx = w - 1 - x; sy = y; break;
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;
            case 4: sx = x; sy = h - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = h - 1 - x; break;
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;
            default: sx = w - 1 - y; sy = x; break;     /* 8 */
            }
            size_t s = (size_t)sy * w + sx, dpx = (size_t)y * dw + x;
            memcpy(rgb + 3 * dpx, img->rgb + 3 * s, 3);
            if (alpha)
                alpha[dpx] = img->alpha[s];
        }
    planes_replace(img, rgb, alpha, dw, dh);
    return 0;
}

/* Binary PNM (P5 gray, P6 RGB), 8 or 16 bits per sample, scaled from
 * maxval to 0..255.  Our own: stb 2.27 ignores maxval, and overruns its
 * buffer on 16-bit files (make fuzz). */
static int decode_pnm(const uint8_t *data, size_t len, struct sf_image *img, char *why, size_t whylen)
{
    uint32_t v[3];
    size_t start = pnm_header(data, len, v), n = (size_t)v[0] * v[1];
    int ch = data[1] == '6' ? 3 : 1, bytes = v[2] > 255 ? 2 : 1;
    const uint8_t *p = data + start;

    if (!start || !v[2] || v[2] > 65535) {
        snprintf(why, whylen, "corrupt PNM header");
        return -EINVAL;
    }
    if (start > len || (len - start) / ((size_t)ch * bytes) < n) {
        snprintf(why, whylen, "PNM: truncated (the file ends before the image data does)");
        return -EINVAL;
    }
    if (planes_alloc((int)v[0], (int)v[1], 0, &img->rgb, &img->alpha))
        return -ENOMEM;
    img->w = (int)v[0];
    img->h = (int)v[1];
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            size_t k = (i * ch + (ch == 3 ? c : 0)) * bytes;
            uint32_t smp = bytes == 2 ? (uint32_t)p[k] << 8 | p[k + 1] : p[k];
            if (smp > v[2])
                smp = v[2];
            img->rgb[3 * i + c] = (uint8_t)((smp * 255u + v[2] / 2) / v[2]);
        }
    return 0;
}

static int decode_stb(const uint8_t *data, size_t len, enum sf_format f, struct sf_image *img,
                      char *why, size_t whylen)
{
    int w, h, comp, want;
    uint8_t *px;
    size_t n;

    if (!stbi_info_from_memory(data, (int)len, &w, &h, &comp)) {
        snprintf(why, whylen, "corrupt %s header", sf_format_name(f));
        return -EINVAL;
    }
    if (!stb_complete(f, data, len, w, h)) {
        snprintf(why, whylen, "%s: truncated (the file ends before the image data does)", sf_format_name(f));
        return -EINVAL;
    }
    want = (comp == 2 || comp == 4) ? 4 : 3;
    px = stbi_load_from_memory(data, (int)len, &w, &h, &comp, want);
    if (!px) {
        const char *r = stbi_failure_reason();
        snprintf(why, whylen, "%s: %s", sf_format_name(f), r ? r : "cannot decode");
        return strstr(r ? r : "", "outofmem") ? -ENOMEM : -EINVAL;
    }
    n = (size_t)w * h;
    img->w = w;
    img->h = h;
    img->alpha = NULL;
    if (want == 3) {
        img->rgb = px;
        return 0;
    }
    if (f == SF_FMT_GIF) {
        /* stb gives GIFs 4 channels always; keep alpha only if one is used */
        size_t i = 0;
        while (i < n && px[4 * i + 3] == 255)
            i++;
        want = i == n ? 3 : 4;
    }
    img->rgb = malloc(n * 3);
    img->alpha = want == 4 ? malloc(n) : NULL;
    if (!img->rgb || (want == 4 && !img->alpha)) {
        stbi_image_free(px);
        sf_image_free(img);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(img->rgb + 3 * i, px + 4 * i, 3);
        if (img->alpha)
            img->alpha[i] = px[4 * i + 3];
    }
    stbi_image_free(px);
    return 0;
}

/* ---- PNG metadata ------------------------------------------------------------
 *
 * A PNG chunk (PNG 3rd edition): length u32 BE (of the data), type (4
 * ASCII bytes), data, CRC-32 u32 BE of type and data.  Ours, all before
 * IDAT:
 *   eXIf  the EXIF block itself (TIFF-structured, "II" or "MM" first);
 *   iCCP  profile name (1-79 bytes), NUL, compression method 0, then the
 *         ICC profile zlib-compressed;
 *   iTXt  keyword "XML:com.adobe.xmp", NUL, compression flag (0 or 1),
 *         method 0, language tag, NUL, translated keyword, NUL, then the
 *         XMP packet as UTF-8 (zlib-compressed when the flag is 1).
 * A malformed or oversized block is left out; only memory fails. */

#define PNG_META_MAX (16u << 20)    /* the largest block kept, inflated */

/* Inflate a zlib stream into a malloc'd block of at most PNG_META_MAX.
 * 0 with *out NULL when it does not inflate; -ENOMEM. */
static int png_inflate(const uint8_t *z, size_t n, uint8_t **out, size_t *outlen)
{
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    size_t cap = n * 4 + 1024, got;
    int rc = 0;

    *out = NULL;
    if (!d)
        return -ENOMEM;
    for (;;) {
        uint8_t *b = malloc(cap < PNG_META_MAX ? cap : PNG_META_MAX);
        enum libdeflate_result r;
        if (!b) {
            rc = -ENOMEM;
            break;
        }
        r = libdeflate_zlib_decompress(d, z, n, b, cap < PNG_META_MAX ? cap : PNG_META_MAX, &got);
        if (r == LIBDEFLATE_SUCCESS) {
            *out = b;
            *outlen = got;
            break;
        }
        free(b);
        if (r != LIBDEFLATE_INSUFFICIENT_SPACE || cap >= PNG_META_MAX)
            break;                  /* damaged, or too large: left out */
        cap *= 4;
    }
    libdeflate_free_decompressor(d);
    return rc;
}

static int png_keep(uint8_t **dst, size_t *dlen, const uint8_t *p, size_t n)
{
    if (*dst || !n || n > PNG_META_MAX)
        return 0;                   /* the first of each kind */
    if (!(*dst = malloc(n)))
        return -ENOMEM;
    memcpy(*dst, p, n);
    *dlen = n;
    return 0;
}

static int png_meta_read(const uint8_t *d, size_t n, struct sf_meta *m)
{
    static const char xmp_kw[] = "XML:com.adobe.xmp";
    size_t i = 8;
    int rc = 0;

    while (!rc && i + 12 <= n) {
        uint32_t clen = rd_be32(d + i);
        const uint8_t *t = d + i + 4, *p = d + i + 8, *end;
        if (clen > n - i - 12 || !memcmp(t, "IDAT", 4))
            break;
        end = p + clen;
        if (!memcmp(t, "eXIf", 4) && clen >= 8 && (!memcmp(p, "II", 2) || !memcmp(p, "MM", 2))) {
            rc = png_keep(&m->exif, &m->exif_len, p, clen);
        } else if (!memcmp(t, "iCCP", 4) && !m->icc) {
            const uint8_t *z = memchr(p, 0, clen);
            if (z && z + 2 < end && z[1] == 0)
                rc = png_inflate(z + 2, (size_t)(end - z - 2), &m->icc, &m->icc_len);
        } else if (!memcmp(t, "iTXt", 4) && !m->xmp && clen > sizeof xmp_kw + 2 &&
                   !memcmp(p, xmp_kw, sizeof xmp_kw)) {
            const uint8_t *q = p + sizeof xmp_kw, *lang, *tk;
            int zflag = q[0];
            if (q + 2 < end && (lang = memchr(q + 2, 0, (size_t)(end - q - 2))) &&
                (tk = memchr(lang + 1, 0, (size_t)(end - lang - 1)))) {
                tk++;
                if (zflag == 0)
                    rc = png_keep(&m->xmp, &m->xmp_len, tk, (size_t)(end - tk));
                else if (zflag == 1 && q[1] == 0)
                    rc = png_inflate(tk, (size_t)(end - tk), &m->xmp, &m->xmp_len);
            }
        }
        i += 12 + (size_t)clen;
    }
    if (rc)
        sf_meta_free(m);
    return rc;
}

/* The decoded image is turned as shown: its EXIF must say so, and lose
 * the source's thumbnail (meta.h); EXIF that does not read is dropped. */
static void meta_for_copy(struct sf_image *img)
{
    if (img->meta.exif && sf_exif_for_copy(img->meta.exif, img->meta.exif_len)) {
        free(img->meta.exif);
        img->meta.exif = NULL;
        img->meta.exif_len = 0;
    }
}

int sf_image_decode(const uint8_t *data, size_t len, uint64_t max_pixels,
                    struct sf_image *img, char *why, size_t whylen)
{
    enum sf_format f;
    int w = 0, h = 0, rc, o;

    memset(img, 0, sizeof *img);
    if (len > INT32_MAX) {
        snprintf(why, whylen, "file larger than 2 GiB");
        return -EFBIG;
    }
    rc = sf_image_probe(data, len, &f, &w, &h, why, whylen);
    if (rc)
        return rc;
    if ((uint64_t)w * (uint64_t)h > max_pixels) {
        snprintf(why, whylen, "%dx%d is %.1f megapixels, over the limit of %.1f (max_pixels)",
                 w, h, (double)w * h / 1e6, (double)max_pixels / 1e6);
        return -EFBIG;
    }
    if (f == SF_FMT_PNM)
        return decode_pnm(data, len, img, why, whylen);
    if (f == SF_FMT_WEBP || f == SF_FMT_HEIC || f == SF_FMT_AVIF) {
        rc = f == SF_FMT_WEBP ? sf_webp_decode(data, len, img, why, whylen)
                              : sf_heif_decode(data, len, img, why, whylen);
        meta_for_copy(img);
        return rc;
    }
    if (f == SF_FMT_TIFF) {
        if ((rc = sf_tiff_decode(data, len, img, &o, why, whylen)))
            return rc;
        if ((rc = orient(img, o))) {
            snprintf(why, whylen, "out of memory");
            sf_image_free(img);
        }
        meta_for_copy(img);
        return rc;
    }
    if (f == SF_FMT_PNG) {
        if ((rc = decode_stb(data, len, f, img, why, whylen)))
            return rc;
        if ((rc = png_meta_read(data, len, &img->meta))) {
            snprintf(why, whylen, "out of memory");
            sf_image_free(img);
            return rc;
        }
        meta_for_copy(img);
        return 0;
    }
    if (f != SF_FMT_JPEG)
        return decode_stb(data, len, f, img, why, whylen);
    o = jpeg_orientation(data, len);
    rc = decode_jpeg(data, len, o >= 5 ? h : w, o >= 5 ? w : h, img, why, whylen);
    if (!rc && ((rc = orient(img, o)) || (rc = sf_meta_from_jpeg(data, len, &img->meta)))) {
        snprintf(why, whylen, "out of memory");
        sf_image_free(img);
    }
    meta_for_copy(img);
    return rc;
}

int sf_image_fit(struct sf_image *img, int max_side)
{
    int side = img->w > img->h ? img->w : img->h, nw, nh;
    uint8_t *rgb, *alpha = NULL;

    if (max_side <= 0 || side <= max_side)
        return 0;
    nw = (int)((double)img->w * max_side / side + 0.5);
    nh = (int)((double)img->h * max_side / side + 0.5);
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    if (planes_alloc(nw, nh, img->alpha != NULL, &rgb, &alpha))
        return -ENOMEM;
    /* sRGB-aware, Mitchell filter when shrinking (stb's default). */
    if (!stbir_resize_uint8_srgb(img->rgb, img->w, img->h, 0, rgb, nw, nh, 0, 3,
                                 STBIR_ALPHA_CHANNEL_NONE, 0) ||
        (alpha && !stbir_resize_uint8(img->alpha, img->w, img->h, 0, alpha, nw, nh, 0, 1))) {
        free(rgb);
        free(alpha);
        return -ENOMEM;
    }
    planes_replace(img, rgb, alpha, nw, nh);
    return 0;
}

struct membuf {
    uint8_t *p;
    size_t n, cap;
    int failed;
};

static void mem_write(void *ctx, void *data, int size)
{
    struct membuf *m = ctx;
    if (m->failed || size <= 0)
        return;
    if (m->n + (size_t)size > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        uint8_t *np;
        while (cap < m->n + (size_t)size)
            cap *= 2;
        np = realloc(m->p, cap);
        if (!np) {
            m->failed = 1;
            return;
        }
        m->p = np;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, (size_t)size);
    m->n += (size_t)size;
}

/* ---- PNG writer --------------------------------------------------------------
 * Our own, for speed: stb's writer tried all five filters per row in scalar
 * code and needed a zlib hook; at 1 MP it took about 120 ms of which this
 * takes about 30.  Each row gets the filter with the smallest sum of
 * absolute (signed) residuals, libpng's heuristic, computed in vector loops;
 * the filtered rows are deflated by libdeflate at level SF_PNG_LEVEL, which
 * at 1 was faster than zlib's level 1 and smaller than its level 3 on
 * styled images.  Output: signature, IHDR (8-bit RGB or RGBA), one IDAT
 * holding the whole zlib stream, IEND. */
#define SF_PNG_LEVEL 1

static inline uint8_t paeth(int a, int b, int c)
{
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    return (uint8_t)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

/* Predictor of filter f (1 Sub, 2 Up, 3 Average, 4 Paeth; 0 None) from the
 * left (a), up (b) and up-left (c) bytes. */
static inline uint8_t png_pred(int f, int a, int b, int c)
{
    return (uint8_t)(f == 0 ? 0 : f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) >> 1 : paeth(a, b, c));
}

/* Filter one row r (stride bytes, bpp per pixel) against the row above u
 * (zeros for the first row) into dst: the filter byte, then the residuals. */
static void png_filter_row(const uint8_t *r, const uint8_t *u, size_t stride, int bpp, uint8_t *dst)
{
    unsigned s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    unsigned best;
    int f = 0;

    for (size_t i = 0; i < (size_t)bpp; i++) {
        s0 += (unsigned)abs((int8_t)r[i]);
        s1 += (unsigned)abs((int8_t)r[i]);
        s2 += (unsigned)abs((int8_t)(r[i] - u[i]));
        s3 += (unsigned)abs((int8_t)(r[i] - (u[i] >> 1)));
        s4 += (unsigned)abs((int8_t)(r[i] - u[i]));
    }
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4)
    for (size_t i = bpp; i < stride; i++) {
        int x = r[i], a = r[i - bpp], b = u[i], c = u[i - bpp];
        s0 += (unsigned)abs((int8_t)x);
        s1 += (unsigned)abs((int8_t)(x - a));
        s2 += (unsigned)abs((int8_t)(x - b));
        s3 += (unsigned)abs((int8_t)(x - ((a + b) >> 1)));
        s4 += (unsigned)abs((int8_t)(x - paeth(a, b, c)));
    }
    best = s0;
    if (s1 < best) best = s1, f = 1;
    if (s2 < best) best = s2, f = 2;
    if (s3 < best) best = s3, f = 3;
    if (s4 < best) best = s4, f = 4;
    dst[0] = (uint8_t)f;
    dst++;
    for (size_t i = 0; i < (size_t)bpp; i++)
        dst[i] = (uint8_t)(r[i] - png_pred(f, 0, u[i], 0));
    if (f == 4) {
#pragma omp simd
        for (size_t i = bpp; i < stride; i++)
            dst[i] = (uint8_t)(r[i] - paeth(r[i - bpp], u[i], u[i - bpp]));
    } else {
#pragma omp simd
        for (size_t i = bpp; i < stride; i++)
            dst[i] = (uint8_t)(r[i] - png_pred(f, r[i - bpp], u[i], 0));
    }
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Close the chunk whose length and type start at c, with n data bytes. */
static uint8_t *png_chunk_end(uint8_t *c, size_t n)
{
    put_be32(c, (uint32_t)n);
    put_be32(c + 8 + n, (uint32_t)libdeflate_crc32(0, c + 4, n + 4));
    return c + 12 + n;
}

/* px: h rows of w*comp bytes (comp 3 or 4), with meta's blocks (see PNG
 * metadata above; a block too large for a chunk is left out).  Returns 0,
 * -ENOMEM or -EIO. */
static int png_encode(const uint8_t *px, int w, int h, int comp, const struct sf_meta *meta, uint8_t **out,
                      size_t *outlen)
{
    static const char icc_name[] = "ICC profile", xmp_kw[] = "XML:com.adobe.xmp";
    size_t stride = (size_t)w * comp, raw = (stride + 1) * h, bound, zn, extra = 0;
    struct libdeflate_compressor *z = libdeflate_alloc_compressor(SF_PNG_LEVEL);
    uint8_t *filt = malloc(raw), *zero = calloc(1, stride), *o = NULL, *c;
    int rc = -ENOMEM;

    if (!z || !filt || !zero)
        goto out_free;
    if (meta->exif_len && meta->exif_len < INT32_MAX)
        extra += 12 + meta->exif_len;
    if (meta->icc_len && meta->icc_len < PNG_META_MAX)
        extra += 12 + sizeof icc_name + 1 + libdeflate_zlib_compress_bound(z, meta->icc_len);
    if (meta->xmp_len && meta->xmp_len < INT32_MAX)
        extra += 12 + sizeof xmp_kw + 4 + meta->xmp_len;
#pragma omp parallel for schedule(static) if (raw > (1u << 20))
    for (int y = 0; y < h; y++)
        png_filter_row(px + y * stride, y ? px + (y - 1) * stride : zero, stride, comp,
                       filt + y * (stride + 1));
    bound = libdeflate_zlib_compress_bound(z, raw);
    if (!(o = malloc(8 + 25 + extra + 12 + bound + 12)))
        goto out_free;
    memcpy(o, "\x89PNG\r\n\x1a\n", 8);
    c = o + 8;
    memcpy(c + 4, "IHDR", 4);
    put_be32(c + 8, (uint32_t)w);
    put_be32(c + 12, (uint32_t)h);
    memcpy(c + 16, (const uint8_t[]){ 8, comp == 4 ? 6 : 2, 0, 0, 0 }, 5);
    c = png_chunk_end(c, 13);
    if (meta->icc_len && meta->icc_len < PNG_META_MAX) {
        size_t k;
        memcpy(c + 4, "iCCP", 4);
        memcpy(c + 8, icc_name, sizeof icc_name);       /* and its NUL */
        c[8 + sizeof icc_name] = 0;                     /* deflate */
        k = libdeflate_zlib_compress(z, meta->icc, meta->icc_len, c + 9 + sizeof icc_name,
                                     libdeflate_zlib_compress_bound(z, meta->icc_len));
        if (k)
            c = png_chunk_end(c, sizeof icc_name + 1 + k);
    }
    if (meta->exif_len && meta->exif_len < INT32_MAX) {
        memcpy(c + 4, "eXIf", 4);
        memcpy(c + 8, meta->exif, meta->exif_len);
        c = png_chunk_end(c, meta->exif_len);
    }
    if (meta->xmp_len && meta->xmp_len < INT32_MAX) {
        memcpy(c + 4, "iTXt", 4);
        memcpy(c + 8, xmp_kw, sizeof xmp_kw);          /* and its NUL */
        memcpy(c + 8 + sizeof xmp_kw, "\0\0\0\0", 4);    /* uncompressed, no language, no translation */
        memcpy(c + 12 + sizeof xmp_kw, meta->xmp, meta->xmp_len);
        c = png_chunk_end(c, sizeof xmp_kw + 4 + meta->xmp_len);
    }
    memcpy(c + 4, "IDAT", 4);
    if (!(zn = libdeflate_zlib_compress(z, filt, raw, c + 8, bound))) {
        rc = -EIO;
        goto out_free;
    }
    c = png_chunk_end(c, zn);
    memcpy(c + 4, "IEND", 4);
    c = png_chunk_end(c, 0);
    *outlen = (size_t)(c - o);
    *out = o;
    o = NULL;
    rc = 0;
out_free:
    free(o);
    free(zero);
    free(filt);
    if (z)
        libdeflate_free_compressor(z);
    return rc;
}

int sf_image_encode(const struct sf_image *img, enum sf_format fmt, int quality,
                    uint8_t **out, size_t *outlen, char *why, size_t whylen)
{
    size_t n = (size_t)img->w * img->h;
    const uint8_t *px = img->rgb;
    uint8_t *rgba = NULL;
    int comp = 3, ok;
    struct membuf m = { 0 };

    if (fmt == SF_FMT_JPEG) {
        tjhandle tj = tjInitCompress();
        unsigned char *jb = NULL;
        unsigned long jl = 0;
        /* ImageMagick's rule: full chroma at quality 90 and above. */
        int sub = quality >= 90 ? TJSAMP_444 : TJSAMP_420;
        if (!tj)
            return -ENOMEM;
        if (tjCompress2(tj, img->rgb, img->w, 0, img->h, TJPF_RGB, &jb, &jl, sub, quality,
                        TJFLAG_ACCURATEDCT)) {
            snprintf(why, whylen, "JPEG encode: %s", tjGetErrorStr2(tj));
            tjDestroy(tj);
            tjFree(jb);
            return -EIO;
        }
        tjDestroy(tj);
        /* hand back a malloc'd copy so that callers free() every format alike */
        *out = malloc(jl);
        if (!*out) {
            tjFree(jb);
            return -ENOMEM;
        }
        memcpy(*out, jb, jl);
        *outlen = jl;
        tjFree(jb);
        if (sf_meta_into_jpeg(out, outlen, &img->meta)) {
            free(*out);
            *out = NULL;
            return -ENOMEM;
        }
        return 0;
    }
    if (!sf_format_writable(fmt)) {
        snprintf(why, whylen, "cannot write %s", sf_format_name(fmt));
        return -EINVAL;
    }
    if (img->alpha) {
        rgba = malloc(n * 4);
        if (!rgba)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            memcpy(rgba + 4 * i, img->rgb + 3 * i, 3);
            rgba[4 * i + 3] = img->alpha[i];
        }
        px = rgba;
        comp = 4;
    }
    if (fmt == SF_FMT_PNG) {
        int rc = png_encode(px, img->w, img->h, comp, &img->meta, out, outlen);
        free(rgba);
        if (rc)
            snprintf(why, whylen, "PNG encode failed");
        return rc;
    }
    if (fmt == SF_FMT_WEBP || fmt == SF_FMT_TIFF || fmt == SF_FMT_HEIC || fmt == SF_FMT_AVIF) {
        int rc = fmt == SF_FMT_WEBP ? sf_webp_encode(px, comp, img->w, img->h, quality, &img->meta, out, outlen,
                                                     why, whylen)
               : fmt == SF_FMT_TIFF ? sf_tiff_encode(px, comp, img->w, img->h, &img->meta, out, outlen, why, whylen)
               : sf_heif_encode(px, comp, img->w, img->h, fmt == SF_FMT_AVIF, quality, &img->meta, out, outlen,
                                why, whylen);
        free(rgba);
        return rc;
    }
    if (fmt == SF_FMT_BMP)
        ok = stbi_write_bmp_to_func(mem_write, &m, img->w, img->h, comp, px);
    else
        ok = stbi_write_tga_to_func(mem_write, &m, img->w, img->h, comp, px);
    free(rgba);
    if (!ok || m.failed) {
        free(m.p);
        snprintf(why, whylen, "%s encode failed", sf_format_name(fmt));
        return m.failed ? -ENOMEM : -EIO;
    }
    *out = m.p;
    *outlen = m.n;
    return 0;
}

/* ---- the naming rules (image.h) ---------------------------------------------- */

static const char *const img_exts[] = { "jpg", "jpeg", "png", "bmp", "tga", "webp", "tif", "tiff", "heic", "heif",
                                        "avif", "gif", "psd", "ppm", "pgm", "pnm" };
#define WRITABLE_EXTS 11    /* the first ones: formats stylefs writes */

/* 1: a format stylefs writes, 2: one it only reads, 0: not an image */
static int source_kind(const char *name)
{
    char ext[16];
    sf_path_ext(name, ext, sizeof ext);
    for (size_t i = 0; i < sizeof img_exts / sizeof *img_exts; i++)
        if (!strcmp(ext, img_exts[i]))
            return i < WRITABLE_EXTS ? 1 : 2;
    return 0;
}

int sf_served_name(const char *src, char *out, size_t outlen, enum sf_format *fmt)
{
    int kind = source_kind(src);

    if (!kind)
        return 0;
    if (out && snprintf(out, outlen, "%s%s", src, kind == 2 ? ".png" : "") >= (int)outlen)
        return -ENAMETOOLONG;
    if (fmt)
        *fmt = kind == 1 ? sf_format_for_output(src) : SF_FMT_PNG;
    return 1;
}

int sf_source_names(const char *served, char names[2][PATH_MAX], enum sf_format fmts[2])
{
    size_t len = strlen(served);
    int n = 0;

    if (len >= PATH_MAX)
        return 0;
    if (source_kind(served) == 1) {           /* served under its own name */
        memcpy(names[n], served, len + 1);
        fmts[n++] = sf_format_for_output(served);
    }
    if (len > 4 && !strcasecmp(served + len - 4, ".png")) {    /* NAME.gif.png -> NAME.gif */
        memcpy(names[n], served, len - 4);
        names[n][len - 4] = '\0';
        if (source_kind(names[n]) == 2)
            fmts[n++] = SF_FMT_PNG;
    }
    return n;
}
