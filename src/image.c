/* image.c: codecs and resizing (see image.h). */
#include "image.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#define STBI_NO_HDR
#define STBI_NO_STDIO
#include <stb_image.h>
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>
#include <stb_image_resize.h>

const char *sf_format_name(enum sf_format f)
{
    static const char *n[] = { "unknown", "JPEG", "PNG", "BMP", "GIF", "TGA", "PSD", "PNM" };
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
    return SF_FMT_UNKNOWN;
}

int sf_format_writable(enum sf_format f)
{
    return f == SF_FMT_JPEG || f == SF_FMT_PNG || f == SF_FMT_BMP || f == SF_FMT_TGA;
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
    return SF_FMT_UNKNOWN;  /* TGA has no magic: stb decides */
}

static int jpeg_header(const uint8_t *data, size_t len, int *w, int *h, int *cs)
{
    tjhandle tj = tjInitDecompress();
    int sub, rc;

    if (!tj)
        return -ENOMEM;
    rc = tjDecompressHeader3(tj, data, (unsigned long)len, w, h, &sub, cs);
    tjDestroy(tj);
    return rc ? -EINVAL : 0;
}

int sf_image_probe(const uint8_t *data, size_t len, enum sf_format *fmt, int *w, int *h,
                   char *why, size_t whylen)
{
    enum sf_format f = sniff(data, len);
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
    *fmt = f;
    return 0;
}

void sf_image_free(struct sf_image *img)
{
    free(img->rgb);
    free(img->alpha);
    img->rgb = img->alpha = NULL;
}

static int decode_jpeg(const uint8_t *data, size_t len, struct sf_image *img, char *why, size_t whylen)
{
    tjhandle tj = tjInitDecompress();
    int w, h, sub, cs, rc = 0, pf;
    size_t n;
    uint8_t *buf = NULL;

    if (!tj)
        return -ENOMEM;
    if (tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &sub, &cs)) {
        snprintf(why, whylen, "corrupt JPEG header");
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
    img->rgb = malloc(n * 3);
    img->alpha = malloc(n);
    if (!img->rgb || !img->alpha) {
        stbi_image_free(px);
        sf_image_free(img);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(img->rgb + 3 * i, px + 4 * i, 3);
        img->alpha[i] = px[4 * i + 3];
    }
    stbi_image_free(px);
    return 0;
}

int sf_image_decode(const uint8_t *data, size_t len, uint64_t max_pixels,
                    struct sf_image *img, char *why, size_t whylen)
{
    enum sf_format f;
    int w, h, rc;

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
    if (f == SF_FMT_JPEG)
        return decode_jpeg(data, len, img, why, whylen);
    return decode_stb(data, len, f, img, why, whylen);
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
    rgb = malloc((size_t)nw * nh * 3);
    if (img->alpha)
        alpha = malloc((size_t)nw * nh);
    if (!rgb || (img->alpha && !alpha)) {
        free(rgb);
        free(alpha);
        return -ENOMEM;
    }
    /* sRGB-aware, Mitchell filter when shrinking (stb's default). */
    if (!stbir_resize_uint8_srgb(img->rgb, img->w, img->h, 0, rgb, nw, nh, 0, 3,
                                 STBIR_ALPHA_CHANNEL_NONE, 0) ||
        (alpha && !stbir_resize_uint8(img->alpha, img->w, img->h, 0, alpha, nw, nh, 0, 1))) {
        free(rgb);
        free(alpha);
        return -ENOMEM;
    }
    free(img->rgb);
    free(img->alpha);
    img->rgb = rgb;
    img->alpha = alpha;
    img->w = nw;
    img->h = nh;
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
    if (fmt == SF_FMT_PNG)
        ok = stbi_write_png_to_func(mem_write, &m, img->w, img->h, comp, px, img->w * comp);
    else if (fmt == SF_FMT_BMP)
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
